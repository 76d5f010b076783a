"""ISO base media file format (ISO/IEC 14496-12): the ``ftyp`` brands that tell a
HEIF still from an MP4/MOV video, and the extent of the top-level boxes.

A box is a big-endian 32-bit size (1: a 64-bit size follows the type; 0: to the end
of the file), a four-letter type and its payload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

# HEIF brands (ISO/IEC 23008-12 and the HEVC image file format). mif1/msf1 are the
# generic structural brands; a file carrying them with an AVIF brand is AVIF.
HEIF_BRANDS = frozenset({
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2",
})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
# Brands of MP4 video (ISO/IEC 14496-12/14, Apple M4V, DASH, Sony/XAVC cameras).
MP4_BRANDS = frozenset({
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"avc1", b"M4V ", b"M4VP", b"mmp4", b"dash", b"MSNV", b"XAVC",
})
QUICKTIME_BRAND = b"qt  "
# Major brands that share MP4's compatible brands but are not video: audio books and
# songs (M4A/M4B), Canon raw (CR3).
NOT_VIDEO_MAJOR_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"crx "})
# A ``moov`` box lists every track's sample tables: a few MB for hours of media. Larger is
# not read (the file is then judged by its brands alone).
MAX_MOOV_BYTES = 16 << 20
# Real files have a handful of top-level boxes before ``moov`` (a fragmented one has it
# second). A file of tiny boxes must not cost a walk of the whole upload (8-byte ``free``
# boxes: 4.8 s per 64 MiB), so the walk gives up after this many.
MAX_TOP_LEVEL_BOXES = 1024


def ftyp_brands(data: bytes) -> set[bytes] | None:
    """Major and compatible brands of a leading ``ftyp`` box, or None when there is
    no complete one (a box cut short is not recognisable, so not accepted).

    >>> sorted(ftyp_brands(b"\\x00\\x00\\x00\\x18ftypheic\\x00\\x00\\x00\\x00mif1heic"))
    [b'heic', b'mif1']
    """
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    (size,) = struct.unpack(">I", data[:4])
    if size < 16 or size > len(data) or size > 4096 or (size - 16) % 4:
        return None
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, size, 4))
    return brands


def major_brand(data: bytes) -> bytes:
    """The major brand of a leading ``ftyp`` box (check :func:`ftyp_brands` first)."""
    return data[8:12]


def boxes_end(data: bytes) -> int:
    """Where the last complete top-level box ends; bytes after it belong to no box."""
    pos, n = 0, len(data)
    while pos + 8 <= n:
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        if size == 1 and pos + 16 <= n:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
        elif size == 0:  # the box runs to the end of the file
            return n
        if size < 8 or pos + size > n:
            return pos
        pos += size
    return pos


def _box(header: bytes | memoryview, pos: int, end: int) -> tuple[bytes, int, int] | None:
    """(type, payload start, box end) of the box at ``pos`` in ``header``, or None when it is
    cut short or malformed; ``end`` is where its container ends."""
    if pos + 8 > len(header):
        return None
    size, kind = struct.unpack_from(">I4s", header, pos)
    start = pos + 8
    if size == 1:
        if pos + 16 > len(header):
            return None
        (size,) = struct.unpack_from(">Q", header, pos + 8)
        start = pos + 16
    elif size == 0:  # runs to the end of its container
        size = end - pos
    if size < start - pos or pos + size > end:
        return None
    return kind, start, pos + size


def _children(payload: memoryview, budget: list[int]) -> Iterator[tuple[bytes, memoryview]]:
    """The boxes in ``payload``, while ``budget[0]`` (shared by a whole walk) lasts."""
    pos = 0
    while budget[0] > 0 and (box := _box(payload, pos, len(payload))) is not None:
        budget[0] -= 1
        kind, start, box_end = box
        yield kind, payload[start:box_end]
        pos = box_end


def track_handlers(fh: BinaryIO) -> frozenset[bytes] | None:
    """Handler types of the tracks the top-level ``moov`` box lists (``vide``, ``soun``,
    ``subt``, ``hint``, ``meta``...), wherever the box sits (encoders write it after the
    media unless asked for "faststart"); None when there is no complete ``moov`` to read
    (or it is past :data:`MAX_TOP_LEVEL_BOXES` boxes, or larger than :data:`MAX_MOOV_BYTES`).

    This is what tells an audio-only MP4 from a video: ffmpeg, Android recorders and most
    encoders give sound-only files the same ``isom``/``mp42`` brands as video (only Apple's
    tools brand them ``M4A ``). Reads box headers and the ``moov`` box, nothing else.
    """
    fh.seek(0, 2)
    end = fh.tell()
    pos = 0
    for _ in range(MAX_TOP_LEVEL_BOXES):
        if pos + 8 > end:
            break
        fh.seek(pos)
        header = fh.read(16)
        box = _box(header, 0, end - pos)
        if box is None:
            return None
        kind, start, box_end = box
        if kind == b"moov":
            if box_end - start > MAX_MOOV_BYTES:
                return None
            fh.seek(pos + start)
            return _handlers(memoryview(fh.read(box_end - start)))
        pos += box_end
    return None


def _handlers(moov: memoryview) -> frozenset[bytes] | None:
    # A real moov holds a header and a few traks of three to six boxes each (the walk does
    # not go below mdia): a moov of thousands of tiny boxes is not read through (None).
    budget, found = [MAX_TOP_LEVEL_BOXES], set()
    for kind, trak in _children(moov, budget):
        for kind_t, mdia in _children(trak, budget) if kind == b"trak" else ():
            for kind_m, hdlr in _children(mdia, budget) if kind_t == b"mdia" else ():
                # version and flags (4 bytes), pre_defined (4), then the handler type
                if kind_m == b"hdlr" and len(hdlr) >= 12:
                    found.add(bytes(hdlr[8:12]))
    return frozenset(found) if budget[0] > 0 else None
