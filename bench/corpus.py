"""Pictures made from real photos that scikit-image ships (no download): the photo set,
the transformations a re-upload goes through, and the way an upload is featurized.

Shared by the benchmarks (``bench/embedding.py --calibrate``) and the tests
(``tests/conftest.py``, ``tests/unit/test_neardup.py``), so the calibration replays
exactly what the tests assert on; it lives here because bench must not import tests.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageEnhance, ImageFont

if TYPE_CHECKING:
    from mediaguard.models import Fingerprints
    from mediaguard.settings import Settings


def photo(name: str = "astronaut") -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def jpeg_bytes(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **{"quality": 90, **options})
    return buf.getvalue()


# Natural photos that scikit-image ships (grey ones too). "clock" is motion-blurred and
# flat: its PDQ quality is below 50, so only the embedding can match its copies.
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "coins", "moon",
          "immunohistochemistry", "clock")


def centre_crop(img: Image.Image, keep: float = 0.75) -> Image.Image:
    w, h = round(img.width * keep), round(img.height * keep)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


def off_centre_crop(img: Image.Image) -> Image.Image:
    """A 75 % window touching the right edge, a fifth of the way down: no banked view is framed like it."""
    w, h = round(img.width * 0.75), round(img.height * 0.75)
    left, top = img.width - w, (img.height - h) // 5
    return img.crop((left, top, left + w, top + h))


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(jpeg_bytes(img, quality=quality))).convert("RGB")


def colour(img: Image.Image) -> Image.Image:
    img = ImageEnhance.Color(img).enhance(1.6)
    img = ImageEnhance.Brightness(img).enhance(1.15)
    return ImageEnhance.Contrast(img).enhance(1.25)


def caption(img: Image.Image) -> Image.Image:
    """Meme-style white text with a black outline across the lower part."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, img.height // 10))
    draw.text((img.width * 0.05, img.height * 0.78), "SHARED 2026 lol", fill=(255, 255, 255), font=font,
              stroke_width=max(1, img.height // 150), stroke_fill=(0, 0, 0))
    return out


T = Image.Transpose
TRANSFORMS = {
    "crop": centre_crop,
    "off_centre_crop": off_centre_crop,
    "mirror": lambda i: i.transpose(T.FLIP_LEFT_RIGHT),
    "rotate_90": lambda i: i.transpose(T.ROTATE_90),
    "rotate_180": lambda i: i.transpose(T.ROTATE_180),
    "rotate_270": lambda i: i.transpose(T.ROTATE_270),
    "rotate_6": lambda i: i.rotate(6, Image.Resampling.BICUBIC),
    "jpeg_q25": lambda i: jpeg(i, 25),
    "resize_40": lambda i: i.resize((round(i.width * 0.4), round(i.height * 0.4)), Image.Resampling.BILINEAR),
    "colour": colour,
    "text": caption,
}
def fit(img: Image.Image, side: int) -> Image.Image:
    scale = side / max(img.size)
    return img if scale >= 1 else img.resize((round(img.width * scale), round(img.height * scale)),
                                             Image.Resampling.LANCZOS)


def upload_features(images: list[Image.Image], classifier, settings: Settings) -> list[tuple[Fingerprints, Image.Image]]:
    """Each image the way an upload goes: JPEG bytes through ``ingest.prepare`` (the
    fingerprints) and the sanitized copy decoded for the models (the classifier's input)."""
    # Imported here, not at the top: tests/conftest imports this module for photo() in every
    # test session, and ingest + classify add ~0.3 s of imports that most tests never use.
    from mediaguard.analysis.classify import decode_for_models
    from mediaguard.ingress.ingest import prepare

    out = []
    for img in images:
        prepared = prepare(jpeg_bytes(img), "image/jpeg", settings, forensics=False)
        out.append((prepared.fingerprints, decode_for_models(prepared.sanitized.data, settings.max_pixels)))
    return out
