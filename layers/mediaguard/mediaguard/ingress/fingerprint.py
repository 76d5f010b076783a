"""Fingerprint registry in the style of python-threatexchange's SignalType.

Each kind declares its name, the content it applies to, how to validate its
string form, how to hash a decoded image, how to compare two hashes and its match
threshold. Adding a kind is one class plus examples; ``tests/unit/test_fingerprint.py``
runs one shared contract over every registered kind.

Stored fingerprints must never change silently under a Pillow or numpy upgrade,
so the tests pin known values.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from PIL import Image

_HEX = re.compile(r"^[0-9a-f]+$")


def bits_to_hex(bits: np.ndarray) -> str:
    """MSB-first hex of a flat bool/0-1 array, the form hash exchanges use."""
    return np.packbits(np.asarray(bits, dtype=np.uint8).ravel()).tobytes().hex()


def hamming(a: str, b: str) -> int:
    """Hamming distance between two equal-length hex strings."""
    if len(a) != len(b):
        raise ValueError("hashes of different lengths cannot be compared")
    return (int(a, 16) ^ int(b, 16)).bit_count()


class SignalType(ABC):
    name: ClassVar[str]
    bits: ClassVar[int]
    content_types: ClassVar[tuple[str, ...]] = ("photo",)
    # Distance at or below which two hashes count as the same media.
    match_threshold: ClassVar[int]
    # (description, hash) pairs that document the string form; used by the contract test.
    examples: ClassVar[tuple[str, ...]]

    @classmethod
    def validate(cls, value: str) -> str:
        """Return the canonical (lowercase) form or raise ``ValueError``."""
        value = value.strip().lower()
        if len(value) != cls.bits // 4 or not _HEX.match(value):
            raise ValueError(f"{cls.name} hashes are {cls.bits // 4} hex characters")
        return value

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return hamming(cls.validate(a), cls.validate(b))

    @classmethod
    def matches(cls, a: str, b: str) -> bool:
        return cls.distance(a, b) <= cls.match_threshold

    @classmethod
    @abstractmethod
    def hash_image(cls, rgb: Image.Image) -> tuple[str, int | None]:
        """Hash an RGB image; returns (hex, quality or None)."""


class PdqSignal(SignalType):
    """Meta's PDQ: 256 bits plus a 0-100 quality. Match at <= 31, ignore quality < 50."""

    name = "pdq"
    bits = 256
    match_threshold = 31
    min_quality = 50
    examples = ("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",)

    @classmethod
    def hash_image(cls, rgb: Image.Image) -> tuple[str, int | None]:
        import pdqhash  # compiled extension, imported on first use only

        vector, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))
        return bits_to_hex(vector), int(quality)

    @classmethod
    def hash_dihedral(cls, rgb: Image.Image) -> tuple[list[str], int]:
        """PDQ of the image and of its seven other rotations/mirrors, from one DCT.

        Order (pdqhash's): original, rotated 90, 180 and 270 degrees counter-clockwise,
        flipped top-bottom, flipped left-right, transposed, transversed. Index 0 equals
        :meth:`hash_image`. A rotated or mirrored copy of a banked picture has one variant
        within a few bits of the banked PDQ, so matching a query's eight variants against a
        bank finds it; pdqhash derives them from the same DCT, for ~2 ms more than one hash.
        """
        import pdqhash

        vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))
        return [bits_to_hex(v) for v in vectors], int(quality)


def _dct_matrix(n: int) -> np.ndarray:
    # Unnormalised DCT-II, the same transform as scipy.fftpack.dct(type=2, norm=None).
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT32 = _dct_matrix(32)


class PHashSignal(SignalType):
    """imagehash's pHash (64 bits) without scipy: scipy alone is 143 MB of a 250 MB
    Lambda budget. A test proves it bit-identical to ``imagehash.phash``."""

    name = "phash"
    bits = 64
    match_threshold = 10
    examples = ("c3973c6b9c3c3c63",)

    @classmethod
    def hash_image(cls, rgb: Image.Image) -> tuple[str, int | None]:
        grey = rgb.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
        pixels = np.asarray(grey, dtype=np.float64)
        dct = _DCT32 @ pixels @ _DCT32.T
        low = dct[:8, :8]
        return bits_to_hex(low > np.median(low)), None


class DHashSignal(SignalType):
    """imagehash's difference hash (64 bits): cheap, and robust to brightness shifts."""

    name = "dhash"
    bits = 64
    match_threshold = 10
    examples = ("0e2e6c6c6c2c0c0c",)

    @classmethod
    def hash_image(cls, rgb: Image.Image) -> tuple[str, int | None]:
        grey = rgb.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
        pixels = np.asarray(grey)
        return bits_to_hex(pixels[:, 1:] > pixels[:, :-1]), None


REGISTRY: dict[str, type[SignalType]] = {s.name: s for s in (PdqSignal, PHashSignal, DHashSignal)}


def fingerprint(rgb: Image.Image) -> dict[str, str | int | list[str] | None]:
    """All registered fingerprints of one decoded image, plus PDQ's eight dihedral
    variants (``pdq_dihedral``, index 0 == ``pdq``) computed in the same pass.

    >>> fp = fingerprint(Image.new("RGB", (64, 64), "white"))
    >>> sorted(fp)
    ['dhash', 'pdq', 'pdq_dihedral', 'pdq_quality', 'phash']
    """
    out: dict[str, str | int | list[str] | None] = {}
    for name, signal in REGISTRY.items():
        if signal is PdqSignal:
            variants, pdq_quality = PdqSignal.hash_dihedral(rgb)
            out.update({name: variants[0], f"{name}_quality": pdq_quality, f"{name}_dihedral": variants})
            continue
        value, quality = signal.hash_image(rgb)
        out[name] = value
        if quality is not None:
            out[f"{name}_quality"] = quality
    return out
