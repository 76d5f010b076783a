"""imagehash's pHash and dHash (64 bits each): computed and recorded, not matched."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from mediaguard.signals import lanczos
from mediaguard.signals.base import HexHashSignal, bits_to_hex

# numpy and Pillow load on the first hash, not on import: models imports this registry,
# and the stages that only move records (start, score, failure) must not pay for them.
if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


@lru_cache(maxsize=1)
def _dct32() -> np.ndarray:
    return _dct_matrix(32)


def _grey(img: Image.Image) -> Image.Image:
    # imagehash converts to "L" first; an image already in "L" is used as it is.
    return img if img.mode == "L" else img.convert("L")


def _dct_matrix(n: int) -> np.ndarray:
    # Unnormalised DCT-II, the same transform as scipy.fftpack.dct(type=2, norm=None).
    import numpy as np
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))




class PHashSignal(HexHashSignal):
    """imagehash's pHash (64 bits) without scipy: scipy alone is 143 MB of a 250 MB
    Lambda budget. A test proves it bit-identical to ``imagehash.phash``.

    Not matched (``matched = False``): see the package docstring. ``match_threshold``
    (10 bits, the distance imagehash users commonly take as "same picture") says what a
    match would be for someone comparing recorded values by hand; no bank uses it.
    """

    name = "phash"
    content_types = ("photo",)
    bits = 64
    match_threshold = 10
    matched = False
    examples = ("c3973c6b9c3c3c63", "c2924c5532bddfc8")  # the second: skimage's astronaut
    record_fields = {"phash": (str, ...)}
    item_fields = ("phash",)
    input_mode = "L"

    @classmethod
    def hash_image(cls, rgb: Image.Image) -> tuple[str, int | None]:
        import numpy as np
        pixels = lanczos.resize(np.asarray(_grey(rgb)), (32, 32))  # == .resize((32, 32), LANCZOS)
        dct32 = _dct32()
        dct = dct32 @ pixels @ dct32.T
        low = dct[:8, :8]
        return bits_to_hex(low > np.median(low)), None


class DHashSignal(HexHashSignal):
    """imagehash's difference hash (64 bits): cheap, and robust to brightness shifts.
    Not matched, like :class:`PHashSignal`."""

    name = "dhash"
    content_types = ("photo",)
    bits = 64
    match_threshold = 10
    matched = False
    examples = ("0e2e6c6c6c2c0c0c", "cd8dd91d897293a7")  # the second: skimage's astronaut
    record_fields = {"dhash": (str, ...)}
    item_fields = ("dhash",)
    input_mode = "L"

    @classmethod
    def hash_image(cls, rgb: Image.Image) -> tuple[str, int | None]:
        import numpy as np
        pixels = lanczos.resize(np.asarray(_grey(rgb)), (9, 8))  # == .resize((9, 8), LANCZOS)
        return bits_to_hex(pixels[:, 1:] > pixels[:, :-1]), None
