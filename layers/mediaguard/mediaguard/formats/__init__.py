"""Container formats, read and rewritten at the byte level.

One module per container: ``jpeg`` (segments), ``png`` (chunks, APNG), ``gif``
(blocks), ``webp`` (RIFF chunks), ``tiff`` (the IFD chain), ``isobmff`` (``ftyp``
brands and top-level boxes, shared by HEIF and MP4/MOV) and ``webm`` (the EBML
header). Each owns the signature that sniffs it, the walk over its structure and,
for JPEG and PNG, the lossless rewrite that drops blocks. Everything here is pure
bytes: no Pillow, no AWS, no imports from other mediaguard areas but
:mod:`mediaguard.errors`. What to accept, which limits apply and what counts as a
polyglot stay with the readers in :mod:`mediaguard.ingress`.

Walkers come in two strictnesses. ``strict`` walks (sanitizing, frame checks)
raise :class:`~mediaguard.errors.CorruptMediaError` on a structure cut short;
tolerant walks (provenance, which must read what is there and never raise for bad
media) stop quietly at the first block they cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stripped:
    """A container rewritten without some of its blocks, losslessly: what is kept is
    copied byte for byte."""

    data: bytes
    # (name, payload) of every block dropped, in file order; names are the stable
    # strings recorded as "removed" (e.g. "exif", "tEXt").
    removed: list[tuple[str, bytes]]
    trailing: bytes  # bytes after the container's end marker, dropped too
