"""WebP: the RIFF chunk walk and the frame headers of an animation.

``RIFF`` + little-endian size + ``WEBP``, then chunks of four-letter code,
little-endian size and payload, each padded to an even size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from mediaguard.errors import CorruptMediaError

# Chunks a WebP needs to display as it did; everything else is someone's data.
PICTURE_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})


def matches(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def riff_end(data: bytes) -> int:
    """Where the RIFF container ends, as its header declares; bytes after it are trailing data."""
    if len(data) < 12:
        raise CorruptMediaError("the WebP header is truncated")
    return 8 + struct.unpack("<I", data[4:8])[0]


def chunks(data: bytes, *, strict: bool = True) -> Iterator[tuple[bytes, int, int]]:
    """(fourcc, payload_start, payload_end) of each top-level chunk.

    ``strict`` stops at the size the RIFF header declares and raises
    :class:`CorruptMediaError` when the file or a chunk is cut short. Tolerant walks
    go on to the end of the bytes (trailing data included) and may yield a
    ``payload_end`` past it; slicing clamps.
    """
    if strict:
        end_of_riff = riff_end(data)
        if end_of_riff > len(data):
            raise CorruptMediaError("the WebP is truncated")
    else:
        end_of_riff = len(data)
    pos = 12
    while pos + 8 <= end_of_riff:
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size
        if strict and end > end_of_riff:
            raise CorruptMediaError("a WebP chunk runs past the end of the file")
        yield fourcc, pos + 8, end
        pos = end + (size & 1)  # chunks are padded to even sizes


def canvas_size(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Canvas width and height from a VP8X payload, None when it is too short."""
    if end - start < 10:
        return None
    return _uint24_plus_one(data, start + 4), _uint24_plus_one(data, start + 7)


def frame_size(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Width and height of one animation frame from its ANMF payload, None when too short."""
    if end - start < 12:
        return None
    return _uint24_plus_one(data, start + 6), _uint24_plus_one(data, start + 9)


def _uint24_plus_one(data: bytes, pos: int) -> int:
    # WebP stores canvas and frame sizes minus one, in 24 bits, so none can be zero.
    return 1 + int.from_bytes(data[pos : pos + 3], "little")


def is_lossless(data: bytes, fourcc: bytes, start: int) -> bool:
    """Whether a chunk holds VP8L (lossless) image data, directly or as an animation frame."""
    return fourcc == b"VP8L" or (fourcc == b"ANMF" and b"VP8L" in data[start + 16 : start + 24])
