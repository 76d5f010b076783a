"""Benchmark inputs made from real photos shipped by scikit-image."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo_12mp_jpeg(seed: int = 7) -> bytes:
    """A 4000x3000 (12 MP) JPEG: a real photo upscaled, with sensor-like noise so the
    encoder and decoder do realistic work, and EXIF as a phone would write it."""
    from skimage import data

    img = Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    noisy = np.clip(np.asarray(img, dtype=np.int16) + rng.normal(0, 6, (3000, 4000, 3)), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "BenchCam", "BenchCam 12"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def photo_1080p_png() -> bytes:
    from skimage import data

    img = Image.fromarray(data.coffee()).resize((1920, 1080), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
