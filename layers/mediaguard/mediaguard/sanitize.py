"""Metadata removal that keeps what the picture needs to look right.

JPEG and PNG are rewritten at the container level (segments / chunks), so pixels
are bit-identical and a 12 MP JPEG costs milliseconds instead of a re-encode.
WebP and GIF are re-encoded by Pillow without their metadata.

Kept on purpose: the ICC profile (APP2 ICC_PROFILE, PNG iCCP) and the colour
chunks, because dropping them shifts colours on wide-gamut phone photos; the
JFIF header and Adobe APP14 marker, because decoders need them to read
CMYK/YCCK JPEGs correctly. An ICC profile holds device colour data, not who or
where; everything else that can (EXIF with GPS and serials, XMP, IPTC,
comments, maker notes, C2PA/JUMBF, thumbnails, trailing bytes) goes.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field

from PIL import Image, ImageOps

from .errors import CorruptMediaError
from .media import GIF, JPEG, PNG, WEBP, MediaKind, load_rgb, open_image

_EXIF_ORIENTATION = 0x0112


@dataclass
class Sanitized:
    data: bytes
    kind: MediaKind
    method: str  # "jpeg-segments" | "png-chunks" | "reencode"
    removed: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sanitize(data: bytes, kind: MediaKind, *, max_pixels: int) -> Sanitized:
    """Strip metadata from ``data`` (already sniffed as ``kind``).

    Example::

        clean = sanitize(open("photo.jpg", "rb").read(), JPEG, max_pixels=50_000_000)
        clean.removed  # ['exif', 'xmp', 'comment']
    """
    img = open_image(data, max_pixels)
    width, height = img.size
    if kind is JPEG:
        orientation = _orientation(img)
        if orientation in (None, 1):
            out, removed = _rewrite_jpeg(data)
            return Sanitized(out, kind, "jpeg-segments", removed, width, height)
        # Rotation can't be applied losslessly here; re-encode upright, once, at high quality.
        removed = _jpeg_removed_names(data) + [f"orientation={orientation} (applied)"]
        upright = ImageOps.exif_transpose(load_rgb(img))
        out = _encode(upright, "JPEG", icc=img.info.get("icc_profile"), quality=95)
        return Sanitized(out, kind, "reencode", removed, *upright.size)
    if kind is PNG:
        out, removed = _rewrite_png(data)
        return Sanitized(out, kind, "png-chunks", removed, width, height)
    if kind in (WEBP, GIF):
        return _reencode_animated_or_still(img, kind, width, height)
    raise CorruptMediaError(f"no sanitizer for {kind.name}")


def _orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(_EXIF_ORIENTATION)
    except (OSError, ValueError, SyntaxError, struct.error):
        return None


# --- JPEG -------------------------------------------------------------------

_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0-7 carry no length


def _segment_name(marker: int, payload: bytes) -> str | None:
    """None for segments we keep; otherwise the name recorded as removed."""
    if marker == 0xE0:
        return None if payload.startswith(b"JFIF\x00") else "jfif-extension-thumbnail"
    if marker == 0xE1:
        if payload.startswith(b"Exif\x00"):
            return "exif"
        if payload.startswith(b"http://ns.adobe.com/xap/1.0/") or payload.startswith(b"http://ns.adobe.com/xmp"):
            return "xmp"
        return "app1"
    if marker == 0xE2:
        if payload.startswith(b"ICC_PROFILE\x00"):
            return None
        return "mpf" if payload.startswith(b"MPF\x00") else "app2"
    if marker == 0xEB:
        return "c2pa-jumbf"
    if marker == 0xED:
        return "iptc"
    if marker == 0xEE:
        return None if payload.startswith(b"Adobe") else "app14"
    if 0xE3 <= marker <= 0xEF:
        return f"app{marker - 0xE0}"
    if marker == 0xFE:
        return "comment"
    return None


def _walk_jpeg(data: bytes):
    """Yield (marker, start, end, payload_start) for every segment, entropy data included
    in the SOS segment; the last yielded item is EOI. Raises on truncation."""
    n = len(data)
    pos = 2
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise CorruptMediaError("the JPEG is truncated or has a corrupt segment")
        start = pos
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise CorruptMediaError("the JPEG is truncated")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            yield marker, start, pos, pos
            return
        if marker in _STANDALONE:
            yield marker, start, pos, pos
            continue
        if pos + 2 > n:
            raise CorruptMediaError("the JPEG is truncated")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        end = pos + length
        if length < 2 or end > n:
            raise CorruptMediaError("a JPEG segment runs past the end of the file")
        if marker == 0xDA:
            # Entropy-coded data runs to the next marker that is not a stuffed 0xFF00
            # or a restart marker.
            scan = end
            while True:
                scan = data.find(b"\xff", scan)
                if scan < 0 or scan + 1 >= n:
                    raise CorruptMediaError("the JPEG scan data is truncated")
                nxt = data[scan + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    scan += 1 if nxt == 0xFF else 2
                    continue
                break
            end = scan
        yield marker, start, end, pos + 2
        pos = end


def _rewrite_jpeg(data: bytes) -> tuple[bytes, list[str]]:
    out = bytearray(b"\xff\xd8")
    removed: list[str] = []
    eoi_end = 0
    for marker, start, end, payload_start in _walk_jpeg(data):
        name = None
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            name = _segment_name(marker, data[payload_start : min(end, payload_start + 64)])
        if name is None:
            out += data[start:end]
        else:
            removed.append(name)
        eoi_end = end
    if eoi_end < len(data):
        removed.append(f"trailing-data:{len(data) - eoi_end}B")
    return bytes(out), removed


def _jpeg_removed_names(data: bytes) -> list[str]:
    return _rewrite_jpeg(data)[1]


# --- PNG --------------------------------------------------------------------

# Critical chunks plus what affects how pixels look or animate (APNG).
_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP",
    b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL", b"fdAT",
}


def _rewrite_png(data: bytes) -> tuple[bytes, list[str]]:
    out = bytearray(data[:8])
    removed: list[str] = []
    pos, n = 8, len(data)
    while True:
        if pos + 8 > n:
            raise CorruptMediaError("the PNG is truncated (no IEND chunk)")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            raise CorruptMediaError("a PNG chunk runs past the end of the file")
        if ctype in _PNG_KEEP:
            out += data[pos:end]
        else:
            removed.append(ctype.decode("latin-1"))
        pos = end
        if ctype == b"IEND":
            break
    if pos < n:
        removed.append(f"trailing-data:{n - pos}B")
    return bytes(out), removed


# --- WebP / GIF -------------------------------------------------------------


def _reencode_animated_or_still(img: Image.Image, kind: MediaKind, width: int, height: int) -> Sanitized:
    removed = sorted(k for k in ("exif", "xmp", "comment", "extension") if img.info.get(k))
    icc = img.info.get("icc_profile")
    try:
        frames = getattr(img, "n_frames", 1)
        buf = io.BytesIO()
        for key in ("exif", "xmp", "comment", "extension"):
            img.info.pop(key, None)
        if kind is GIF:
            img.save(buf, "GIF", save_all=frames > 1, optimize=False)
        else:
            img.save(buf, "WEBP", save_all=frames > 1, quality=90, method=4, icc_profile=icc or None)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptMediaError("the image data is truncated or corrupt") from exc
    return Sanitized(buf.getvalue(), kind, "reencode", removed, width, height)


def _encode(img: Image.Image, fmt: str, *, icc: bytes | None, **options) -> bytes:
    buf = io.BytesIO()
    if icc:
        options["icc_profile"] = icc
    img.save(buf, fmt, **options)
    return buf.getvalue()
