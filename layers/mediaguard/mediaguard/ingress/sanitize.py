"""Metadata removal that keeps what the picture needs to look right.

JPEG and PNG are rewritten at the container level (segments / chunks, by
:mod:`mediaguard.formats`), so pixels are bit-identical and a 12 MP JPEG costs
milliseconds instead of a re-encode.
WebP and GIF are re-encoded by Pillow without their metadata, keeping every
frame, each frame's duration and the loop count; a lossless WebP stays lossless.

What is served is always something every browser displays, so two kinds change
format (``Sanitized.kind`` is the served kind, not the sniffed one):

* TIFF -> PNG, lossless. Only Safari displays TIFF; PNG holds the same 8/16-bit
  greyscale, RGB and alpha. Page one is served; further pages are dropped (and
  listed). CMYK/LAB are converted to sRGB through their ICC profile when they
  have one.
* HEIC/HEIF -> JPEG at quality 92 (PNG when the image has alpha). Only Safari
  displays HEIC. libheif applies the container's rotation/mirror (irot/imir) on
  decode, so the picture is already upright. The primary image is served;
  burst frames, thumbnails, depth and gain maps are dropped. 10-bit HDR becomes
  8-bit SDR; keeping HDR would mean serving HEIF or AVIF.

EXIF orientation is applied before the EXIF goes (JPEG, PNG, WebP, TIFF): without
it the picture would display turned.

Kept on purpose: the ICC profile (APP2 ICC_PROFILE, PNG iCCP, WebP ICCP, carried
into converted output) and the colour chunks, because dropping them shifts
colours on wide-gamut phone photos (Display P3 shown as sRGB looks washed
out); the JFIF header and Adobe APP14 marker, because decoders need them to read
CMYK/YCCK JPEGs correctly. An ICC profile holds device colour data, not who or
where; everything else that can (EXIF with GPS and serials, XMP, IPTC,
comments, maker notes, C2PA/JUMBF, thumbnails, trailing bytes) goes.

Polyglots are refused, not stripped (:class:`PolyglotError`): when the trailing
data or a metadata block of an image carries another format's file -- a ZIP
(local header at the start of the trailer, or an end-of-central-directory record
that ends the file exactly, which is what a ZIP reader looks for), PDF, RAR, 7z,
HTML/script/PHP/JSP markup, an ELF/PE/Java executable, a shell script -- or a
GIF's header opens a JavaScript comment (``GIF89a/*``). Stripping would make the
served copy harmless, but an upload built to be two things at once is an attack,
and the platform wants it rejected, kept as evidence and visible in the audit
trail rather than quietly cleaned. Benign trailers stay benign: a motion photo's
MP4, MPF secondary JPEGs and padding are stripped and listed as trailing data.
Long markers (5+ bytes) are searched anywhere in those regions; short ones (ZIP,
ELF, Java, MZ/PE, ``#!``) only where a reader expects them, so compressed data
that happens to contain ``PK\\x03\\x04`` does not reject a photo.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from PIL import Image, ImageCms, ImageOps

from mediaguard.errors import CorruptMediaError, PolyglotError, TooManyFramesError
from mediaguard.formats import Stripped, isobmff, jpeg, png, webp
from mediaguard.ingress.media import (
    GIF,
    HEIF,
    JPEG,
    PNG,
    TIFF,
    WEBP,
    MediaKind,
    check_frames,
    load_rgb,
    open_image,
    to_8bit,
    walk_gif,
)
from mediaguard.settings import get_settings

_EXIF_ORIENTATION = 0x0112
HEIF_JPEG_QUALITY = 92  # visually lossless for phone photos; HEIC's own default is ~50-80
WEBP_QUALITY = 90
# What a decoder raises on hostile bytes; turned into CorruptMediaError at the rim.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, RuntimeError, struct.error, IndexError)


@dataclass
class Sanitized:
    data: bytes
    kind: MediaKind  # the served kind: HEIF becomes JPEG/PNG, TIFF becomes PNG
    method: str  # "jpeg-segments" | "png-chunks" | "reencode"
    removed: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sanitize(
    data: bytes,
    kind: MediaKind,
    *,
    max_pixels: int,
    max_frames: int | None = None,
    max_total_pixels: int | None = None,
    max_side: int | None = None,
) -> Sanitized:
    """Strip metadata from ``data`` (already sniffed as ``kind``), after checking every
    frame against the limits and refusing polyglots. Limits left as None come from
    :func:`~mediaguard.settings.get_settings`.

    Example::

        clean = sanitize(open("photo.jpg", "rb").read(), JPEG, max_pixels=50_000_000)
        clean.removed  # ['exif', 'xmp', 'comment']
    """
    if max_frames is None or max_total_pixels is None or max_side is None:
        settings = get_settings()
        max_frames = max_frames or settings.max_frames
        max_total_pixels = max_total_pixels or settings.max_total_pixels
        max_side = max_side or settings.max_side
    frames = check_frames(
        data, kind, max_pixels=max_pixels, max_frames=max_frames, max_total_pixels=max_total_pixels,
        max_side=max_side,
    )
    img = open_image(data, max_pixels, kind=kind, max_side=max_side)
    width, height = img.size
    if kind is JPEG:
        stripped = jpeg.strip_metadata(data)
        # JUMBF and MPF are signed binary structures (forensics reads them), not markup carriers.
        suspect = [payload for name, payload in stripped.removed if name not in jpeg.SIGNED_BLOCKS]
        out, removed, trailing = stripped.data, _removed_names(stripped), stripped.trailing
        _refuse_polyglot(data, suspect, trailing)
        orientation = _orientation(img)
        if orientation in (None, 1):
            return Sanitized(out, kind, "jpeg-segments", removed, width, height)
        # Rotation can't be applied losslessly here; re-encode upright, once, at high quality.
        removed = removed + [f"orientation={orientation} (applied)"]
        upright = _decode(lambda: ImageOps.exif_transpose(load_rgb(img)))
        out = _encode(upright, "JPEG", icc=img.info.get("icc_profile"), quality=95)
        return Sanitized(out, kind, "reencode", removed, *upright.size)
    if kind is PNG:
        stripped = png.strip_metadata(data)
        suspect = [_readable_text(name.encode("latin-1"), payload) for name, payload in stripped.removed]
        out, removed, trailing = stripped.data, _removed_names(stripped), stripped.trailing
        _refuse_polyglot(data, suspect, trailing)
        # Pillow's PNG getexif() decodes every pixel to look for an eXIf chunk after the
        # image data; the chunk walk already knows whether there is one.
        orientation = _orientation(img) if "eXIf" in removed else None
        if orientation in (None, 1) or frames.count > 1:
            return Sanitized(out, kind, "png-chunks", removed, width, height)
        upright = _decode(lambda: _transpose(img, orientation))
        out = _encode(upright, "PNG", icc=img.info.get("icc_profile"))
        return Sanitized(out, kind, "reencode", removed + [f"orientation={orientation} (applied)"], *upright.size)
    if kind is GIF:
        structure = walk_gif(data, max_pixels=max_pixels, max_frames=max_frames, max_side=max_side)
        if data[6:8] == b"/*":
            raise PolyglotError("the GIF header opens a JavaScript comment")
        _refuse_polyglot(data, [payload for _, payload in structure.extensions], data[structure.end :])
        return _reencode_gif(img, data, structure.end, width, height)
    if kind is WEBP:
        return _reencode_webp(img, data, width, height)
    if kind is TIFF:
        # TIFF has no end marker and its pixels may be raw bytes, so the blocks checked are
        # the tag values and the first KB (where a PDF or HTML reader looks).
        _refuse_polyglot(data, [data[:1024], *_tiff_tag_blocks(img)], b"")
        return _convert_tiff(img, frames.count)
    if kind is HEIF:
        n_images = getattr(img, "n_frames", 1)
        if n_images > max_frames:
            raise TooManyFramesError(f"the HEIF holds {n_images} images (limit {max_frames})")
        end = isobmff.boxes_end(data)
        blocks = [data[:1024], *(img.info.get(key) or b"" for key in ("exif", "xmp"))]
        _refuse_polyglot(data, blocks, data[end:])
        sanitized = _convert_heif(img, n_images)
        if end < len(data):
            sanitized.removed.append(f"trailing-data:{len(data) - end}B")
        return sanitized
    raise CorruptMediaError(f"no sanitizer for {kind.name}")


def _decode(fn):
    try:
        return fn()
    except _DECODE_ERRORS as exc:
        raise CorruptMediaError("the image data is truncated or corrupt") from exc


def _orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(_EXIF_ORIENTATION)
    except _DECODE_ERRORS:
        return None


def _transpose(img: Image.Image, orientation: int | None) -> Image.Image:
    """``img`` turned as its EXIF orientation says, without touching ``img.info``."""
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation or 1)
    img.load()
    return img.transpose(method) if method is not None else img.copy()


# --- polyglots ----------------------------------------------------------------

# Markers of 5+ bytes: searched anywhere in the trailing data and metadata blocks.
_POLYGLOT_MARKERS = re.compile(
    rb"<script|<html|<body|<iframe|<svg[\s>]|<\?php|<jsp:|%PDF-|Rar!\x1a\x07"
    rb"|7z\xbc\xaf\x27\x1c|This program cannot be run in DOS mode",
    re.IGNORECASE,
)
# Short signatures: only where a reader looks for them, at the start of the trailer.
_LEADING_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08", b"\x7fELF", b"\xca\xfe\xba\xbe", b"#!/")


def _refuse_polyglot(data: bytes, blocks: Iterable[bytes], trailing: bytes) -> None:
    """Raise PolyglotError when ``data`` is also another format's file (see module docstring)."""
    stripped = trailing.lstrip(b"\x00")
    if stripped.startswith(_LEADING_SIGNATURES) or (stripped.startswith(b"MZ") and b"PE\x00\x00" in stripped[:1024]):
        raise PolyglotError("data after the image is another file")
    if _ends_with_zip_directory(data):
        raise PolyglotError("the file is also a ZIP archive")
    for block in (trailing, *blocks):
        match = _POLYGLOT_MARKERS.search(block)
        if match:
            raise PolyglotError(f"the image carries {match.group(0)[:12]!r} markup or a document")


def _tiff_tag_blocks(img: Image.Image) -> list[bytes]:
    blocks = []
    for value in getattr(img, "tag_v2", {}).values():
        if isinstance(value, bytes):
            blocks.append(value)
        elif isinstance(value, str):
            blocks.append(value.encode("utf-8", "replace"))
    return blocks


def _ends_with_zip_directory(data: bytes) -> bool:
    # A ZIP reader finds the archive from the end-of-central-directory record, which
    # ends the file exactly (22 bytes plus its comment). Requiring the exact end keeps
    # random compressed bytes from matching.
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if pos < 0 or pos + 22 > len(data):
        return False
    (comment_length,) = struct.unpack("<H", data[pos + 20 : pos + 22])
    return pos + 22 + comment_length == len(data)


# --- JPEG / PNG (rewritten by formats.jpeg / formats.png) -----------------------


def _removed_names(stripped: Stripped) -> list[str]:
    names = [name for name, _ in stripped.removed]
    if stripped.trailing:
        names.append(f"trailing-data:{len(stripped.trailing)}B")
    return names


def _readable_text(ctype: bytes, payload: bytes) -> bytes:
    """A PNG chunk's payload as a reader of it would see it: zTXt and compressed iTXt
    are inflated (at most 1 MB), so markup cannot hide behind deflate."""
    if not png.is_compressed_text(ctype, payload):
        return payload
    try:
        keyword, text = png.text(ctype, payload, salvage=True)
    except zlib.error:
        return payload
    return keyword + b"\x00" + text


# --- WebP / GIF -------------------------------------------------------------

_WEBP_METADATA = {b"EXIF": "exif", b"XMP ": "xmp"}


def _reencode_webp(img: Image.Image, data: bytes, width: int, height: int) -> Sanitized:
    removed: list[str] = []
    suspect: list[bytes] = []
    lossless = False
    for fourcc, start, end in webp.chunks(data):
        if fourcc in _WEBP_METADATA or fourcc not in webp.PICTURE_CHUNKS:
            removed.append(_WEBP_METADATA.get(fourcc) or fourcc.decode("latin-1").strip())
            suspect.append(data[start:end])
        elif webp.is_lossless(data, fourcc, start):
            lossless = True
    trailing = data[webp.riff_end(data) :]
    if trailing:
        removed.append(f"trailing-data:{len(trailing)}B")
    _refuse_polyglot(data, suspect, trailing)
    orientation = _orientation(img)
    icc = img.info.get("icc_profile")

    def encode() -> tuple[bytes, tuple[int, int]]:
        n = getattr(img, "n_frames", 1)
        frames, durations = [], []
        for index in range(n):
            img.seek(index)
            frames.append(_transpose(img, orientation))
            durations.append(img.info.get("duration", 0))
        options = {"lossless": lossless, "quality": 100 if lossless else WEBP_QUALITY, "method": 4}
        if icc:
            options["icc_profile"] = icc
        if n > 1:
            options.update(save_all=True, append_images=frames[1:], duration=durations, loop=img.info.get("loop", 0))
        buf = io.BytesIO()
        frames[0].save(buf, "WEBP", **options)
        return buf.getvalue(), frames[0].size

    out, size = _decode(encode)
    if orientation not in (None, 1):
        removed.append(f"orientation={orientation} (applied)")
    return Sanitized(out, WEBP, "reencode", removed, *size)


def _reencode_gif(img: Image.Image, data: bytes, end: int, width: int, height: int) -> Sanitized:
    removed = sorted(k for k in ("exif", "xmp", "comment", "extension") if img.info.get(k))
    if end < len(data):
        removed.append(f"trailing-data:{len(data) - end}B")

    def encode() -> bytes:
        frames = getattr(img, "n_frames", 1)
        buf = io.BytesIO()
        for key in ("exif", "xmp", "comment", "extension"):
            img.info.pop(key, None)
        img.save(buf, "GIF", save_all=frames > 1, optimize=False)
        return buf.getvalue()

    return Sanitized(_decode(encode), GIF, "reencode", removed, width, height)


# --- TIFF / HEIF (converted to what browsers display) -------------------------

# TIFF tags that say who, where, with what, or carry embedded blocks.
_TIFF_PRIVATE_TAGS = {
    270: "description", 271: "make", 272: "model", 305: "software", 306: "datetime", 315: "artist",
    316: "host-computer", 33432: "copyright", 700: "xmp", 33723: "iptc", 34377: "photoshop",
    34665: "exif", 34853: "gps", 37500: "maker-note", 42016: "image-unique-id",
}
# Modes PNG stores as they are; anything else is converted to (s)RGB(A).
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}


def _convert_tiff(img: Image.Image, pages: int) -> Sanitized:
    tags = getattr(img, "tag_v2", {})
    removed = sorted({name for tag, name in _TIFF_PRIVATE_TAGS.items() if tag in tags})
    if pages > 1:
        removed.append(f"pages-dropped:{pages - 1}")
    orientation = tags.get(_EXIF_ORIENTATION)

    def convert() -> tuple[Image.Image, bytes | None]:
        icc = img.info.get("icc_profile")
        img.load()
        # Pillow applies a TIFF's orientation on load and drops the tag; apply whatever is left.
        out = _transpose(img, _orientation(img))
        if out.mode not in _PNG_MODES:
            out, icc = _to_srgb(out, icc)
        return out, icc

    out, icc = _decode(convert)
    if orientation not in (None, 1):
        removed.append(f"orientation={orientation} (applied)")
    return Sanitized(_encode(out, "PNG", icc=icc, compress_level=6), PNG, "reencode", removed, *out.size)


def _to_srgb(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK/LAB/float pixels as sRGB(A). With an embedded profile the conversion is
    colour-managed and the output carries no profile (sRGB is the web's default)."""
    target = "RGBA" if "A" in img.getbands() else "RGB"
    if icc and img.mode in ("CMYK", "RGB", "LAB"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted, None
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable profile: fall back to Pillow's naive conversion
    if img.mode in ("I", "F", "I;16B", "I;16L", "I;16N"):
        # 16 bits are served as 16-bit PNG (browsers show it); float has no PNG form and is
        # scaled to 8 bits (Pillow's convert clipped a 0..1 float TIFF to black).
        return img.convert("I;16") if img.mode != "F" else to_8bit(img), None
    return img.convert(target), None


def _convert_heif(img: Image.Image, n_images: int) -> Sanitized:
    removed = sorted(key for key in ("exif", "xmp") if img.info.get(key))
    if img.info.get("metadata"):
        removed.append("heif-metadata")
    if n_images > 1:
        removed.append(f"images-dropped:{n_images - 1}")
    icc = img.info.get("icc_profile")

    def convert() -> tuple[bytes, MediaKind, tuple[int, int]]:
        img.load()
        if "A" in img.getbands():
            return _encode(img, "PNG", icc=icc), PNG, img.size
        return _encode(img.convert("RGB"), "JPEG", icc=icc, quality=HEIF_JPEG_QUALITY), JPEG, img.size

    out, served, size = _decode(convert)
    return Sanitized(out, served, "reencode", removed, *size)


def _encode(img: Image.Image, fmt: str, *, icc: bytes | None, **options) -> bytes:
    buf = io.BytesIO()
    if icc:
        options["icc_profile"] = icc
    img.save(buf, fmt, **options)
    return buf.getvalue()
