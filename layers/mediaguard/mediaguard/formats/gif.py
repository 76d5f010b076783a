"""GIF: the block walk (image descriptors, extensions, trailer), without decoding.

After the 13-byte header and the optional global colour table come blocks:
extensions (``0x21``), image descriptors (``0x2C``, each followed by LZW data in
sub-blocks) and the trailer (``0x3B``). Sub-blocks are a length byte and that many
bytes, ended by a zero length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from mediaguard.errors import CorruptMediaError

GRAPHIC_CONTROL = 0xF9  # timing and disposal of the next image: picture data, not metadata


class ImageBlock(NamedTuple):
    left: int
    top: int
    width: int
    height: int


class Extension(NamedTuple):
    label: int
    payload: bytes  # the sub-blocks joined


class Trailer(NamedTuple):
    end: int  # offset just past the trailer byte; anything after it is trailing data


def matches(data: bytes) -> bool:
    return data[:6] in (b"GIF87a", b"GIF89a")


def screen_size(data: bytes) -> tuple[int, int]:
    """Width and height of the logical screen."""
    if len(data) < 13:
        raise CorruptMediaError("the GIF header is truncated")
    return struct.unpack("<HH", data[6:10])


def blocks(data: bytes) -> Iterator[ImageBlock | Extension | Trailer]:
    """Every block in file order, ending with the :class:`Trailer`. Lazy, so a reader
    can stop after as many image descriptors as it allows. Raises
    :class:`CorruptMediaError` when the file ends before the trailer or holds an
    unknown block."""
    n = len(data)
    if n < 13:
        raise CorruptMediaError("the GIF header is truncated")
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while True:
        if pos >= n:
            raise CorruptMediaError("the GIF is truncated (no trailer)")
        block = data[pos]
        if block == 0x3B:
            yield Trailer(pos + 1)
            return
        if block == 0x21:
            if pos + 1 >= n:
                raise CorruptMediaError("the GIF is truncated")
            label = data[pos + 1]
            end = _skip_sub_blocks(data, pos + 2)
            yield Extension(label, _join_sub_blocks(data, pos + 2, end))
            pos = end
        elif block == 0x2C:
            if pos + 10 > n:
                raise CorruptMediaError("a GIF image descriptor is truncated")
            left, top, w, h, fflags = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            yield ImageBlock(left, top, w, h)
            pos += 10 + (3 << ((fflags & 7) + 1) if fflags & 0x80 else 0) + 1  # + LZW minimum code size
            pos = _skip_sub_blocks(data, pos)
        else:
            raise CorruptMediaError("the GIF has an unknown block")


def _join_sub_blocks(data: bytes, pos: int, end: int) -> bytes:
    parts = []
    while pos < end - 1:
        size = data[pos]
        parts.append(data[pos + 1 : pos + 1 + size])
        pos += 1 + size
    return b"".join(parts)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    n = len(data)
    while True:
        if pos >= n:
            raise CorruptMediaError("the GIF is truncated")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
