"""TIFF: the signature and the chain of image file directories (pages).

Classic TIFF only: ``II*\\0`` / ``MM\\0*``, 32-bit offsets. BigTIFF (``II+`` /
``MM\\0+``) is recognised so that it can be refused by name.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from mediaguard.errors import CorruptMediaError


def matches(data: bytes) -> bool:
    return data[:4] in (b"II*\x00", b"MM\x00*")


def is_bigtiff(data: bytes) -> bool:
    return data[:4] in (b"II+\x00", b"MM\x00+")


def pages(data: bytes) -> Iterator[int]:
    """The offset of every IFD in the chain, without reading any tag value. Lazy, so
    a reader can stop after as many pages as it allows. A loop, or an offset or a
    directory outside the file, raises :class:`CorruptMediaError`."""
    order = "<" if data[:2] == b"II" else ">"
    n = len(data)
    if n < 8:
        raise CorruptMediaError("the TIFF header is truncated")
    (offset,) = struct.unpack(order + "I", data[4:8])
    seen: set[int] = set()
    while offset:
        if offset in seen or offset + 2 > n:
            raise CorruptMediaError("the TIFF page chain is corrupt")
        seen.add(offset)
        yield offset
        (entries,) = struct.unpack(order + "H", data[offset : offset + 2])
        nxt = offset + 2 + 12 * entries
        if nxt + 4 > n:
            raise CorruptMediaError("a TIFF directory runs past the end of the file")
        (offset,) = struct.unpack(order + "I", data[nxt : nxt + 4])
