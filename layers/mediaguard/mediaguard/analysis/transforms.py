"""Evasion transforms for red-teaming the matchers: what an uploader does to a banked
image or video so that it stops matching (``mediaguard redteam`` runs them all).

Every transform is named with its parameters (``crop_75``, ``rotate_5``, ``jpeg_q20``)
and is deterministic: the same input bytes, seed and fillers give the same output bytes
(noise is drawn from a generator seeded by the seed and the transform's name; ffmpeg
encodes on one thread with bit-exact flags). Image transforms work on the upright
RGB picture (EXIF orientation applied, as the sanitizer does) with Pillow and numpy
and are written losslessly as PNG unless the transform *is* a re-encode. Video
transforms are ffmpeg filter chains run with the static ffmpeg of ``imageio-ffmpeg``
(the one the frames stage uses).

    >>> copy = apply(CATALOGUE["mirror"], png_bytes)            # doctest: +SKIP
    >>> copy.content_type, len(copy.data) > 0                    # doctest: +SKIP
    ('image/png', True)
"""

from __future__ import annotations

import io
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from mediaguard.ingress.media import load_rgb, open_image
from mediaguard.ingress.video import ffmpeg_exe, sniff_video

# The transforms read files the operator chose, not uploads, but a bad file should still
# fail as it would in the pipeline rather than exhaust memory: the pipeline's own default.
MAX_PIXELS = 64_000_000
VIDEO_TIMEOUT_S = 300.0

ImageFn = Callable[[Image.Image, "Context"], Image.Image]


@dataclass(frozen=True)
class Context:
    """What a transform may draw on besides its input: a seeded generator and other
    pictures (the collage's neighbours)."""

    rng: np.random.Generator
    others: Sequence[Image.Image] = ()


@dataclass(frozen=True)
class Transform:
    """One named evasion. ``media`` says what it applies to. An image transform is a
    function on the RGB picture plus the format the copy is written in; a video
    transform is an ffmpeg ``-vf`` filter chain plus x264 quality (CRF)."""

    name: str
    media: Literal["image", "video"]
    image_fn: ImageFn | None = None
    encode: tuple[str, dict] = ("PNG", {})
    video_filter: str | None = None
    crf: int = 23
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class Copy:
    """A transformed copy, ready to upload."""

    transform: str
    data: bytes
    content_type: str


# --- image transforms -------------------------------------------------------------


def _crop(keep: float, anchor: str = "centre") -> ImageFn:
    def fn(img: Image.Image, ctx: Context) -> Image.Image:
        w, h = max(1, round(img.width * keep)), max(1, round(img.height * keep))
        left, top = ((img.width - w) // 2, (img.height - h) // 2) if anchor == "centre" else (0, 0)
        return img.crop((left, top, left + w, top + h))
    return fn


def _rotate(degrees: float) -> ImageFn:
    # expand=True keeps every pixel and adds black wedges, as a phone's rotate tool does.
    return lambda img, ctx: img.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))


def _scale(factor: float, back_up: bool = False) -> ImageFn:
    def fn(img: Image.Image, ctx: Context) -> Image.Image:
        small = img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))),
                           Image.Resampling.BILINEAR)
        return small.resize(img.size, Image.Resampling.BICUBIC) if back_up else small
    return fn


def _border(share: float, colour: tuple[int, int, int]) -> ImageFn:
    return lambda img, ctx: ImageOps.expand(img, border=max(1, round(max(img.size) * share)), fill=colour)


def _letterbox(img: Image.Image, ctx: Context) -> Image.Image:
    """Pad onto a black 16:9 canvas (or 9:16 for a portrait picture), as video apps do."""
    w, h = img.size
    ratio = 16 / 9 if w >= h else 9 / 16
    cw, ch = (max(w, round(h * ratio)), h) if w / h < ratio else (w, max(h, round(w / ratio)))
    canvas = Image.new("RGB", (cw, ch), (0, 0, 0))
    canvas.paste(img, ((cw - w) // 2, (ch - h) // 2))
    return canvas


def _hue(degrees: int) -> ImageFn:
    def fn(img: Image.Image, ctx: Context) -> Image.Image:
        hsv = np.asarray(img.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(degrees * 256 / 360)) % 256
        return Image.fromarray(hsv, "HSV").convert("RGB")
    return fn


def _enhance(colour: float, brightness: float, contrast: float) -> ImageFn:
    def fn(img: Image.Image, ctx: Context) -> Image.Image:
        img = ImageEnhance.Color(img).enhance(colour)
        img = ImageEnhance.Brightness(img).enhance(brightness)
        return ImageEnhance.Contrast(img).enhance(contrast)
    return fn


def _noise(sigma: float) -> ImageFn:
    def fn(img: Image.Image, ctx: Context) -> Image.Image:
        pixels = np.asarray(img, dtype=np.float32)
        noisy = pixels + ctx.rng.normal(0.0, sigma, pixels.shape).astype(np.float32)
        return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB")
    return fn


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # Pillow's bundled font (no system fonts: the output must not depend on the machine).
    return ImageFont.load_default(size=max(10, size))


def _caption(img: Image.Image, ctx: Context) -> Image.Image:
    """Meme-style white text with a black outline across the lower part."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    text, size = "WAIT FOR IT lol 2026", max(12, img.height // 9)
    while size > 10 and draw.textlength(text, font=_font(size)) > img.width * 0.9:
        size -= 2
    draw.text((img.width * 0.05, img.height * 0.76), text, fill=(255, 255, 255),
              font=_font(size), stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
    return out


def _logo(img: Image.Image, ctx: Context) -> Image.Image:
    """A half-transparent channel logo (badge + handle) in the bottom-right corner."""
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    side = max(16, min(img.size) // 5)
    x0, y0 = img.width - side - side // 4, img.height - side - side // 4
    draw.ellipse((x0, y0, x0 + side, y0 + side), fill=(230, 30, 60, 150), outline=(255, 255, 255, 200),
                 width=max(1, side // 20))
    draw.text((x0 + side // 2, y0 + side // 2), "TV", fill=(255, 255, 255, 220), font=_font(side // 2), anchor="mm")
    draw.text((x0 - side // 8, y0 + side // 2), "@reposts", fill=(255, 255, 255, 170), font=_font(side // 4),
              anchor="rm")
    return Image.alpha_composite(base, layer).convert("RGB")


def _screenshot(img: Image.Image, ctx: Context) -> Image.Image:
    """A phone screenshot of the picture in a feed: a 720x1560 screen with a status bar,
    an app bar, the picture scaled to the screen's width, action icons and a caption."""
    sw, sh = 720, 1560
    screen = Image.new("RGB", (sw, sh), (250, 250, 250))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, sw, 48), fill=(20, 20, 20))
    draw.text((24, 24), "9:41", fill=(255, 255, 255), font=_font(26), anchor="lm")
    for i in range(3):  # signal, wifi, battery
        draw.rectangle((sw - 40 - i * 34, 14, sw - 16 - i * 34, 34), fill=(255, 255, 255))
    draw.rectangle((0, 48, sw, 150), fill=(255, 255, 255))
    draw.ellipse((20, 69, 80, 129), fill=(120, 160, 220))
    draw.text((96, 99), "someone_reposts  ·  2h", fill=(30, 30, 30), font=_font(28), anchor="lm")
    scale = sw / img.width
    shown = img.resize((sw, max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    shown = shown.crop((0, 0, sw, min(shown.height, sh - 150 - 260)))
    screen.paste(shown, (0, 150))
    y = 150 + shown.height + 20
    for i in range(4):  # like, comment, share, save
        draw.ellipse((24 + i * 70, y, 72 + i * 70, y + 48), outline=(30, 30, 30), width=4)
    draw.text((24, y + 80), "1,024 likes  ·  look at this", fill=(30, 30, 30), font=_font(28))
    draw.rectangle((0, sh - 110, sw, sh), fill=(245, 245, 245))
    draw.line((0, sh - 110, sw, sh - 110), fill=(200, 200, 200), width=2)
    # Screenshots are shared downscaled (messenger apps halve them).
    return screen.resize((sw // 2, sh // 2), Image.Resampling.BILINEAR)


def filler(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A smooth seeded colour field, the collage's neighbour when there are no other pictures."""
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse, "RGB").resize(size, Image.Resampling.BICUBIC)


def _collage(cols: int, rows: int) -> ImageFn:
    def fn(img: Image.Image, ctx: Context) -> Image.Image:
        # Tiles take the input's size: the input sits top-left at full resolution, the
        # neighbours fill the other cells, with a 2 % white gutter as collage apps draw.
        tw, th = img.size
        gutter = max(2, round(max(tw, th) * 0.02))
        canvas = Image.new("RGB", (cols * tw + (cols + 1) * gutter, rows * th + (rows + 1) * gutter),
                           (255, 255, 255))
        others = list(ctx.others)
        for cell in range(cols * rows):
            if cell == 0:
                tile = img
            elif others:
                tile = ImageOps.fit(others[(cell - 1) % len(others)], (tw, th), Image.Resampling.BILINEAR)
            else:
                tile = filler((tw, th), ctx.rng)
            x, y = cell % cols, cell // cols
            canvas.paste(tile, (gutter + x * (tw + gutter), gutter + y * (th + gutter)))
        return canvas
    return fn


def _identity(img: Image.Image, ctx: Context) -> Image.Image:
    return img


def _image(name: str, fn: ImageFn, description: str, encode: tuple[str, dict] = ("PNG", {})) -> Transform:
    return Transform(name=name, media="image", image_fn=fn, encode=encode, description=description)


def _video(name: str, vf: str, description: str, crf: int = 23) -> Transform:
    return Transform(name=name, media="video", video_filter=vf, crf=crf, description=description)


_T = Image.Transpose
IMAGE_TRANSFORMS: tuple[Transform, ...] = (
    _image("jpeg_q90", _identity, "re-encode as JPEG quality 90 (the identity-like control)", ("JPEG", {"quality": 90})),
    _image("jpeg_q20", _identity, "re-encode as JPEG quality 20", ("JPEG", {"quality": 20})),
    _image("jpeg_q5", _identity, "re-encode as JPEG quality 5", ("JPEG", {"quality": 5})),
    _image("webp_q30", _identity, "re-encode as WebP quality 30", ("WEBP", {"quality": 30, "method": 4})),
    _image("crop_90", _crop(0.90), "centre crop keeping 90 % of each side"),
    _image("crop_75", _crop(0.75), "centre crop keeping 75 % of each side"),
    _image("crop_50", _crop(0.50), "centre crop keeping 50 % of each side"),
    _image("crop_75_topleft", _crop(0.75, "topleft"), "crop keeping the top-left 75 % of each side"),
    _image("mirror", lambda img, ctx: img.transpose(_T.FLIP_LEFT_RIGHT), "horizontal mirror"),
    _image("rotate_90", lambda img, ctx: img.transpose(_T.ROTATE_90), "rotate 90 degrees"),
    _image("rotate_5", _rotate(5), "rotate 5 degrees, black corners"),
    _image("rotate_15", _rotate(15), "rotate 15 degrees, black corners"),
    _image("resize_25", _scale(0.25), "downscale to 25 % of each side"),
    _image("resize_25_up", _scale(0.25, back_up=True), "downscale to 25 % and back up (detail lost)"),
    _image("upscale_200", _scale(2.0), "upscale to 200 %"),
    _image("border_10", _border(0.10, (255, 255, 255)), "white border of 10 % of the long side"),
    _image("pad_16x9", _letterbox, "letterbox onto a black 16:9 canvas"),
    _image("grayscale", lambda img, ctx: ImageOps.grayscale(img).convert("RGB"), "grey levels only"),
    _image("hue_45", _hue(45), "hue rotated by 45 degrees"),
    _image("colour_boost", _enhance(1.6, 1.15, 1.25), "saturation x1.6, brightness x1.15, contrast x1.25"),
    _image("blur_2", lambda img, ctx: img.filter(ImageFilter.GaussianBlur(2)), "Gaussian blur, radius 2 px"),
    _image("noise_10", _noise(10), "Gaussian noise, sigma 10 grey levels (seeded)"),
    _image("noise_25", _noise(25), "Gaussian noise, sigma 25 grey levels (seeded)"),
    _image("text_caption", _caption, "meme caption across the lower quarter"),
    _image("logo_corner", _logo, "half-transparent logo and handle, bottom right"),
    _image("screenshot_phone", _screenshot, "phone screenshot in a feed (UI chrome), halved"),
    _image("collage_2x1", _collage(2, 1), "side by side with another picture"),
    _image("collage_2x2", _collage(2, 2), "one cell of a 2x2 collage"),
)

# x264 on one thread with bit-exact flags: the same input gives the same bytes.
VIDEO_TRANSFORMS: tuple[Transform, ...] = (
    _video("video_fps_15", "fps=15", "frame rate changed to 15 fps"),
    _video("video_res_50", "scale=trunc(iw/4)*2:trunc(ih/4)*2", "resolution halved"),
    _video("video_crf_45", "null", "re-encoded at CRF 45 (very low quality)", crf=45),
    _video("video_mirror", "hflip", "horizontal mirror"),
    _video("video_crop_75", "crop=trunc(iw*0.375)*2:trunc(ih*0.375)*2", "centre crop keeping 75 % of each side"),
    _video("video_border_10", "pad=trunc(iw*0.6)*2:trunc(ih*0.6)*2:(ow-iw)/2:(oh-ih)/2:white",
           "white border of 10 % each side"),
)

CATALOGUE: dict[str, Transform] = {t.name: t for t in IMAGE_TRANSFORMS + VIDEO_TRANSFORMS}

_CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def media_of(data: bytes) -> Literal["image", "video"]:
    """Which transforms apply to these bytes: ``video`` for MP4/MOV/WebM, else ``image``
    (an animation's first frame)."""
    return "video" if sniff_video(data[:4096]) is not None else "image"


def decode(data: bytes) -> Image.Image:
    """The upright RGB picture a viewer sees (the first frame of an animation)."""
    return ImageOps.exif_transpose(load_rgb(open_image(data, MAX_PIXELS)))


def seeded(name: str, seed: int) -> np.random.Generator:
    """The generator a transform draws from: fixed by the seed and the transform's name."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def apply(transform: Transform, data: bytes, *, others: Sequence[Image.Image] = (), seed: int = 0) -> Copy:
    """Apply one transform to an image or video file's bytes.

    ``others`` are the pictures a collage puts beside the input (seeded colour fields
    when empty). Raises ``ValueError`` when the transform is for the other media type,
    the pipeline's typed errors for undecodable input, and ``CalledProcessError`` when
    ffmpeg fails.
    """
    if transform.media != media_of(data):
        raise ValueError(f"{transform.name} applies to {transform.media}, not to this file")
    if transform.media == "video":
        return Copy(transform.name, _apply_video(transform, data), "video/mp4")
    assert transform.image_fn is not None
    out = transform.image_fn(decode(data), Context(rng=seeded(transform.name, seed), others=others))
    fmt, options = transform.encode
    buf = io.BytesIO()
    out.convert("RGB").save(buf, fmt, **options)
    return Copy(transform.name, buf.getvalue(), _CONTENT_TYPES[fmt])


def _apply_video(transform: Transform, data: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mediaguard-redteam-") as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out.mp4"
        src.write_bytes(data)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-threads", "1",
               "-i", str(src), "-an", "-map_metadata", "-1", "-vf", transform.video_filter or "null",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", str(transform.crf), "-pix_fmt", "yuv420p",
               "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact", str(dst)]
        # The environment ffmpeg gets in the pipeline too: no credentials, a fixed locale.
        subprocess.run(cmd, check=True, capture_output=True, timeout=VIDEO_TIMEOUT_S,
                       env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
        return dst.read_bytes()
