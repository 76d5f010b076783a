"""Sniffing and guarded decoding of still and animated images.

The real type comes from magic bytes, never from the file name or the declared
content type, and every decode goes through the same limits. Accepted kinds:
JPEG, PNG (and APNG), WebP (and animated), GIF (and animated), HEIC/HEIF
(``pillow-heif``) and classic TIFF.

Refused on purpose, as ``UnsupportedMediaError``:

* AVIF (``ftyp`` brands ``avif``/``avis``), although browsers display it: it is not
  in the accepted list of the ingress issue, ``pillow-heif`` 1.x no longer decodes
  it, and Pillow's own AVIF plugin is one more AV1 decoder exposed to hostile
  bytes with no tests of ours behind it. Adding it is one kind here plus a
  re-encode branch in ``sanitize``.
* BigTIFF (``II+``/``MM+``): 64-bit offsets exist for files beyond 4 GB, far over
  the upload limit, so a small BigTIFF is only ever a curiosity or an attack.
* ISO-BMFF files that are not HEIF (MP4, MOV, CR3, JPEG XL in a box): video is the
  next issue's job.

The limits, all checked from headers and container structure (walked by
:mod:`mediaguard.formats`) before any pixel is decoded (:func:`check_frames`): pixels per frame, pixels across all frames
(what re-encoding an animation actually decodes), the longest side, and the
number of frames. A 10,000-frame GIF is refused after walking ``max_frames + 1``
image descriptors, without decoding one of them.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from mediaguard.errors import (
    ContentTypeMismatchError,
    CorruptMediaError,
    DecompressionBombError,
    DimensionsTooLargeError,
    EmptyMediaError,
    MediaTooLargeError,
    TooManyFramesError,
    UnsupportedMediaError,
)
from mediaguard.formats import gif, isobmff, jpeg, png, tiff, webp
from mediaguard.ingress.kinds import GIF, HEIF, JPEG, PNG, SERVED_KINDS, STILL_KINDS, TIFF, WEBP, MediaKind  # noqa: F401


def sniff(data: bytes) -> MediaKind:
    """Return the media kind named by the magic bytes.

    >>> sniff(b"\\xff\\xd8\\xff\\xe0" + b"0" * 8).name
    'jpeg'
    >>> sniff(b"\\x00\\x00\\x00\\x18ftypheic\\x00\\x00\\x00\\x00mif1heic").name
    'heif'
    """
    if not data:
        raise EmptyMediaError("the upload is empty")
    if jpeg.matches(data):
        return JPEG
    if png.matches(data):
        return PNG
    if webp.matches(data):
        return WEBP
    if gif.matches(data):
        return GIF
    if tiff.matches(data):
        return TIFF
    if tiff.is_bigtiff(data):
        raise UnsupportedMediaError("BigTIFF is not accepted; classic TIFF is")
    brands = isobmff.ftyp_brands(data)
    if brands is not None:
        if brands & isobmff.AVIF_BRANDS:
            raise UnsupportedMediaError("AVIF is not accepted yet")
        if brands & isobmff.HEIF_BRANDS:
            return HEIF
    # Reached by anything no sniff accepted (video and audio are sniffed first): the message
    # names every accepted type, so a Matroska or AMR file is not told it is a bad image.
    raise UnsupportedMediaError("the file is not a supported type (images: JPEG, PNG, WebP, GIF, HEIC/HEIF, TIFF; "
                                "video: MP4, MOV, WebM; audio: MP3, AAC/M4A, Ogg, WAV, FLAC, WebM)")


def check_declared(kind: MediaKind, declared: str | None) -> None:
    """Refuse an upload whose declared content type disagrees with its bytes."""
    if not declared:
        return
    declared_type = declared.split(";")[0].strip().lower()
    if declared_type not in (kind.content_type, *kind.aliases, "application/octet-stream"):
        raise ContentTypeMismatchError(f"declared {declared!r} but the bytes are {kind.content_type}")


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise MediaTooLargeError(f"{len(data)} bytes exceeds the {max_bytes}-byte limit")


_heif_lock = threading.Lock()
_heif_registered = False


def _register_heif() -> None:
    """Register pillow-heif's opener once, on the first HEIF seen: cold starts that
    never meet a HEIC do not pay for loading libheif."""
    global _heif_registered
    if _heif_registered:
        return
    with _heif_lock:
        if not _heif_registered:
            from pillow_heif import register_heif_opener

            # Thumbnails, depth maps and auxiliary images are never served; not parsing
            # them keeps libheif's work (and exposure) to the primary image.
            register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
            _heif_registered = True


def open_image(
    data: bytes, max_pixels: int, *, kind: MediaKind | None = None, max_side: int | None = None
) -> Image.Image:
    """Open (lazily) and check dimensions before any pixel is decoded.

    Only the Pillow plugin of the sniffed kind may open the bytes. Pillow's own
    bomb check only warns below 2x its limit, so the limit is enforced here from
    the header, which costs nothing.
    """
    kind = kind or sniff(data)
    if kind is HEIF:
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[kind.pillow_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBombError("the image declares more pixels than allowed") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise CorruptMediaError("the image header cannot be read") from exc
    width, height = img.size
    check_dimensions(width, height, max_pixels=max_pixels, max_side=max_side)
    return img


def check_dimensions(width: int, height: int, *, max_pixels: int, max_side: int | None = None) -> None:
    """Refuse a frame with no pixels, too many pixels, or a side longer than ``max_side``."""
    if width <= 0 or height <= 0:
        raise CorruptMediaError("the image has no pixels")
    if width * height > max_pixels:
        raise DecompressionBombError(f"{width}x{height} exceeds the {max_pixels}-pixel limit")
    if max_side is not None and max(width, height) > max_side:
        raise DimensionsTooLargeError(f"{width}x{height} has a side longer than {max_side} px")


# --- frame structure, read without decoding ------------------------------------


@dataclass(frozen=True)
class Frames:
    """What the container says about its frames: how many, and the canvas they are
    composited onto (each decoded frame of an animation is a full canvas)."""

    count: int
    width: int
    height: int


def check_frames(
    data: bytes, kind: MediaKind, *, max_pixels: int, max_frames: int, max_total_pixels: int,
    max_side: int | None = None,
) -> Frames:
    """Count frames and check every frame's size from the container alone.

    Raises :class:`TooManyFramesError` after at most ``max_frames + 1`` frame
    headers, :class:`DecompressionBombError` when one frame or all frames together
    exceed the pixel limits, :class:`CorruptMediaError` when the structure is cut
    short. Example::

        check_frames(gif, GIF, max_pixels=50_000_000, max_frames=500, max_total_pixels=100_000_000)
    """
    if kind is GIF:
        frames = walk_gif(data, max_pixels=max_pixels, max_frames=max_frames, max_side=max_side).frames
    elif kind is WEBP:
        frames = _webp_frames(data, max_pixels, max_frames, max_side)
    elif kind is PNG:
        frames = _png_frames(data, max_pixels, max_frames, max_side)
    elif kind is TIFF:
        frames = _tiff_frames(data, max_frames)
    else:
        # JPEG has one frame; HEIF top-level images are counted by libheif once opened.
        frames = Frames(1, 0, 0)
    if frames.count > max_frames:
        raise TooManyFramesError(f"more than {max_frames} frames")
    if frames.count > 1 and frames.count * frames.width * frames.height > max_total_pixels:
        raise DecompressionBombError(
            f"{frames.count} frames of {frames.width}x{frames.height} exceed the {max_total_pixels}-pixel total"
        )
    return frames


@dataclass
class GifStructure:
    frames: Frames
    extensions: list[tuple[int, bytes]]  # (label, joined sub-block payload): comments, app data
    end: int  # offset just past the trailer byte; anything after it is trailing data


def walk_gif(data: bytes, *, max_pixels: int, max_frames: int, max_side: int | None = None) -> GifStructure:
    """Walk a GIF's blocks without decoding: count and size-check every image
    descriptor, collect extension payloads, find where the file really ends."""
    width, height = gif.screen_size(data)
    count, end = 0, 0
    extensions: list[tuple[int, bytes]] = []
    for block in gif.blocks(data):
        if isinstance(block, gif.Extension):
            if block.label != gif.GRAPHIC_CONTROL:
                extensions.append((block.label, block.payload))
        elif isinstance(block, gif.ImageBlock):
            count += 1
            if count > max_frames:
                raise TooManyFramesError(f"more than {max_frames} frames")
            check_dimensions(block.width, block.height, max_pixels=max_pixels, max_side=max_side)
            # Pillow grows the canvas to hold a frame that reaches past the logical screen.
            width, height = max(width, block.left + block.width), max(height, block.top + block.height)
        else:
            end = block.end
    if count == 0:
        raise CorruptMediaError("the GIF has no image")
    check_dimensions(width, height, max_pixels=max_pixels, max_side=max_side)
    return GifStructure(Frames(count, width, height), extensions, end)


def _webp_frames(data: bytes, max_pixels: int, max_frames: int, max_side: int | None) -> Frames:
    count, width, height = 0, 0, 0
    for fourcc, start, end in webp.chunks(data):
        if fourcc == b"VP8X" and (canvas := webp.canvas_size(data, start, end)) is not None:
            width, height = canvas
            check_dimensions(width, height, max_pixels=max_pixels, max_side=max_side)
        elif fourcc == b"ANMF" and (size := webp.frame_size(data, start, end)) is not None:
            count += 1
            if count > max_frames:
                raise TooManyFramesError(f"more than {max_frames} frames")
            check_dimensions(*size, max_pixels=max_pixels, max_side=max_side)
    return Frames(max(count, 1), width, height)


def _png_frames(data: bytes, max_pixels: int, max_frames: int, max_side: int | None) -> Frames:
    """APNG: acTL says how many frames, each fcTL how big; a plain PNG is one frame."""
    width, height = png.size(data)
    count, declared = 0, 1
    for chunk in png.chunks(data, strict=False):
        if chunk.type == b"acTL" and (frames := png.actl_frames(data, chunk)) is not None:
            declared = frames
            if declared > max_frames:
                raise TooManyFramesError(f"the APNG declares {declared} frames (limit {max_frames})")
        elif chunk.type == b"fcTL" and (size := png.fctl_size(data, chunk)) is not None:
            count += 1
            if count > max_frames:
                raise TooManyFramesError(f"more than {max_frames} frames")
            check_dimensions(*size, max_pixels=max_pixels, max_side=max_side)
    return Frames(max(count, declared, 1), width, height)


def _tiff_frames(data: bytes, max_frames: int) -> Frames:
    """Count the IFD chain (pages) without reading any tag values; a loop or an
    offset outside the file is corrupt. Only page one is ever decoded."""
    count = 0
    for _ in tiff.pages(data):
        count += 1
        if count > max_frames:
            raise TooManyFramesError(f"more than {max_frames} pages")
    if not count:
        raise CorruptMediaError("the TIFF has no page")
    return Frames(count, 0, 0)


# Greyscale modes deeper than 8 bits: 16-bit PNG/TIFF (I;16...), 32-bit integer, float TIFF.
DEEP_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


# Rows converted at a time: a whole-picture float copy of a 64 MP 16-bit image took 2.1 GB.
_ROWS = 512


def _rows(img: Image.Image) -> Iterator[tuple[int, np.ndarray]]:
    """The picture in blocks of rows, each as float32 with NaN and infinities as 0."""
    width, height = img.size
    for top in range(0, height, _ROWS):
        block = np.array(img.crop((0, top, width, min(height, top + _ROWS))), dtype=np.float32)
        yield top, np.nan_to_num(block, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def _extrema(img: Image.Image) -> tuple[float, float]:
    low, high = img.getextrema()
    if np.isfinite(low) and np.isfinite(high):
        return float(low), float(high)
    blocks = [(float(b.min()), float(b.max())) for _, b in _rows(img)]
    return min(low for low, _ in blocks), max(high for _, high in blocks)


def to_8bit(img: Image.Image) -> Image.Image:
    """A deep greyscale image as 8-bit ``L``, scaled to its range instead of clipped.

    Pillow's own conversion clips at 255, so a 16-bit copy of a photo became a white
    picture: PDQ quality 0 and no bank match (a re-save as 16-bit PNG walked past the
    banks), a blank image for the classifier, and a float TIFF in 0..1 served black.
    16-bit modes are divided by 257 (the exact inverse of the usual 8-to-16-bit widening);
    ``I`` and ``F`` by the range their values use: 0..1 (float), 0..255, 0..65535, else
    their own minimum to maximum (NaN and infinities count as 0). Converted in blocks of
    rows, so the memory it adds is the 8-bit result and one block.
    """
    if img.mode.startswith("I;16"):
        scale, offset = 1 / 257.0, 0.0
    else:
        low, high = _extrema(img)
        if low >= 0 and 255 < high <= 65535:
            scale, offset = 1 / 257.0, 0.0
        elif img.mode == "F" and low >= 0 and high <= 1.0:
            scale, offset = 255.0, 0.0
        elif low >= 0 and high <= 255:
            scale, offset = 1.0, 0.0
        else:
            scale, offset = (255.0 / (high - low) if high > low else 0.0), low
    out = np.empty((img.height, img.width), dtype=np.uint8)
    for top, block in _rows(img):
        block -= offset
        block *= scale
        np.rint(block, out=block)
        out[top : top + len(block)] = np.clip(block, 0, 255, out=block)
    return Image.fromarray(out, "L")


def load_rgb(img: Image.Image, *, min_side: int | None = None) -> Image.Image:
    """Decode to RGB, using JPEG draft mode when ``min_side`` allows a smaller decode.

    Draft decoding picks the largest DCT scale (1/2, 1/4, 1/8) that keeps both sides
    at or above ``min_side``: PDQ moves by ~2 bits at >= 512 px but 12-26 bits below.
    """
    try:
        if min_side and img.format == "JPEG":
            img.draft("RGB", (min_side, min_side))
        img.load()
        if img.mode in DEEP_GREY_MODES:
            # (a tRNS colour key of a 16-bit PNG names a 16-bit value: it is not carried over)
            return to_8bit(img).convert("RGB")
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            # Composite onto white so transparent pixels hash the same way they display;
            # this covers palette transparency and the tRNS colour key of RGB/L PNGs.
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        # convert() to the mode an image already has is a full copy (~1 ms at 1000x750).
        return img if img.mode == "RGB" else img.convert("RGB")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptMediaError("the image data is truncated or corrupt") from exc
