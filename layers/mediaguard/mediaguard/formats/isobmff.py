"""ISO base media file format (ISO/IEC 14496-12): the ``ftyp`` brands that tell a
HEIF still from an MP4/MOV video, and the extent of the top-level boxes.

A box is a big-endian 32-bit size (1: a 64-bit size follows the type; 0: to the end
of the file), a four-letter type and its payload.
"""

from __future__ import annotations

import struct

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
