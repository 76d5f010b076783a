"""PNG: the chunk walk, APNG frame headers, text chunks and the metadata-free rewrite.

A PNG is the 8-byte signature, then chunks of big-endian length, four-letter type,
payload and CRC, ending with IEND.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import NamedTuple

from mediaguard.errors import CorruptMediaError
from mediaguard.formats import Stripped

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Critical chunks plus what affects how pixels look or animate (APNG).
PICTURE_CHUNKS = frozenset({
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP",
    b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL", b"fdAT",
})
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
MAX_TEXT = 1 << 20  # cap for inflating compressed text (a zTXt can be a zip bomb)


class Chunk(NamedTuple):
    type: bytes
    offset: int  # where the length field starts
    length: int  # the payload length the chunk declares

    @property
    def body_start(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        """Just past the CRC: where the next chunk starts."""
        return self.offset + 12 + self.length

    def body(self, data: bytes) -> bytes:
        return data[self.offset + 8 : self.offset + 8 + self.length]


def matches(data: bytes) -> bool:
    return data[:8] == SIGNATURE


def chunks(data: bytes, *, strict: bool = True) -> Iterator[Chunk]:
    """Every chunk up to and including IEND. ``strict`` raises
    :class:`CorruptMediaError` when IEND is missing or a chunk runs past the end of the
    file; otherwise the walk stops there (the last chunk yielded may be cut short)."""
    pos, n = 8, len(data)
    while True:
        if pos + 8 > n:
            if strict:
                raise CorruptMediaError("the PNG is truncated (no IEND chunk)")
            return
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunk = Chunk(data[pos + 4 : pos + 8], pos, length)
        if strict and chunk.end > n:
            raise CorruptMediaError("a PNG chunk runs past the end of the file")
        yield chunk
        if chunk.type == b"IEND":
            return
        pos = chunk.end


def size(data: bytes) -> tuple[int, int]:
    """Width and height from IHDR."""
    if len(data) < 33:
        raise CorruptMediaError("the PNG header is truncated")
    return struct.unpack(">II", data[16:24])


def actl_frames(data: bytes, chunk: Chunk) -> int | None:
    """The frame count an APNG's acTL declares, None when the chunk is too short."""
    if chunk.length < 4 or chunk.body_start + 4 > len(data):
        return None
    return struct.unpack(">I", data[chunk.body_start : chunk.body_start + 4])[0]


def fctl_size(data: bytes, chunk: Chunk) -> tuple[int, int] | None:
    """Width and height of one APNG frame (fcTL), None when the chunk is too short."""
    body = chunk.body_start
    if chunk.length < 12 or body + 12 > len(data):
        return None
    return struct.unpack(">II", data[body + 4 : body + 12])


def is_compressed_text(ctype: bytes, body: bytes) -> bool:
    """Whether a text chunk holds deflated text: a zTXt with its keyword separator, an
    iTXt whose compression flag is set."""
    _keyword, separator, rest = body.partition(b"\x00")
    if ctype == b"zTXt":
        return bool(separator)
    return ctype == b"iTXt" and bool(separator) and rest[:1] == b"\x01"


def text(ctype: bytes, body: bytes, *, salvage: bool = False) -> tuple[bytes, bytes]:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk body as a PNG reader sees it:
    compressed text inflated to at most :data:`MAX_TEXT` bytes. A bad deflate stream
    raises ``zlib.error``.

    An iTXt missing its language or translated-keyword terminator has no text by the
    spec; ``salvage`` reads what follows the last terminator present instead, as a
    lenient reader might. The polyglot check wants that reading; provenance, which
    only ever claims on well-formed evidence, does not.

    >>> text(b"tEXt", b"Software\\x00Paint")
    (b'Software', b'Paint')
    """
    keyword, _, rest = body.partition(b"\x00")
    if ctype == b"tEXt":
        return keyword, rest
    if ctype == b"zTXt":
        return keyword, _inflate(rest[1:])  # rest[0] is the compression method
    compressed = rest[:1] == b"\x01"
    fields = rest[2:].split(b"\x00", 2)  # language, translated keyword, text
    value = fields[2] if len(fields) == 3 else fields[-1] if salvage else b""
    return keyword, _inflate(value) if compressed else value


def _inflate(data: bytes) -> bytes:
    return zlib.decompressobj().decompress(data, MAX_TEXT)


def strip_metadata(data: bytes) -> Stripped:
    """The PNG with only :data:`PICTURE_CHUNKS` and nothing after IEND; kept chunks are
    copied byte for byte, CRC included. Dropped payloads are returned as stored."""
    out = bytearray(data[:8])
    removed: list[tuple[str, bytes]] = []
    end = 8
    for chunk in chunks(data):
        if chunk.type in PICTURE_CHUNKS:
            out += data[chunk.offset : chunk.end]
        else:
            removed.append((chunk.type.decode("latin-1"), chunk.body(data)))
        end = chunk.end
    return Stripped(bytes(out), removed, data[end:])
