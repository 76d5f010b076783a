"""Meta's PDQ: a 256-bit perceptual hash of a still plus a 0-100 quality."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mediaguard.signals import pdqnative
from mediaguard.signals.base import HexHashSignal, bits_to_hex

# numpy and Pillow load on the first hash, not on import: models imports this registry,
# and the stages that only move records (start, score, failure) must not pay for them.
if TYPE_CHECKING:
    from PIL import Image


class PdqSignal(HexHashSignal):
    """PDQ, with the eight dihedral variants (rotations/mirrors) computed in the same pass.

    Thresholds (industry practice, FIELD-NOTES "Matching practice"; Meta and StopNCII):
    two hashes match at Hamming distance <= :attr:`match_threshold` (31), and a hash
    whose quality is below :attr:`min_quality` (50) is too unreliable to match or index.
    A bank may set a stricter distance of its own.
    """

    name = "pdq"
    content_types = ("photo",)
    bits = 256
    match_threshold = 31
    min_quality = 50
    index = "mediaguard.analysis.index:PdqIndex"
    examples = (
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
        "2d6b1af3a956c529e79ca3d2526fa834d4196c81cedd04de0a26b855fc99b724",  # skimage's astronaut
    )
    # pdq_dihedral: the eight rotations/mirrors, in pdqhash's order (original, rotated
    # 90/180/270 counter-clockwise, flipped top-bottom, left-right, transposed,
    # transversed); index 0 is ``pdq``. Empty in payloads written before it existed.
    record_fields: ClassVar[dict[str, tuple[Any, Any]]] = {
        "pdq": (str, ...), "pdq_quality": (int, ...), "pdq_dihedral": (list[str], [])}
    item_fields = ("pdq", "pdq_quality")
    DIHEDRAL_VARIANTS = 8

    @classmethod
    def usable(cls, quality: int | None) -> bool:
        """Whether a hash of this quality may be matched; None (not reported) counts as usable."""
        return quality is None or quality >= cls.min_quality

    @classmethod
    def hash_image(cls, rgb: Image.Image) -> tuple[str, int | None]:
        if pdqnative.available():
            return pdqnative.hash_image(rgb)
        import numpy as np
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
        bank finds it; pdqhash derives them from the same DCT, for ~1 ms more than one hash.
        Computed by :mod:`~mediaguard.signals.pdqnative` (the same C++, 4 ms less, GIL released).
        """
        if pdqnative.available():
            return pdqnative.hash_dihedral(rgb)
        import numpy as np
        import pdqhash

        vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))
        return [bits_to_hex(v) for v in vectors], int(quality)

    @classmethod
    def record(cls, rgb: Image.Image) -> dict[str, Any]:
        variants, quality = cls.hash_dihedral(rgb)
        return {"pdq": variants[0], "pdq_quality": quality, "pdq_dihedral": variants}

    @classmethod
    def check_record(cls, record: dict[str, Any]) -> None:
        # Stored variants must be this PDQ's ([]: written before they existed).
        variants = record.get("pdq_dihedral")
        if variants and (len(variants) != cls.DIHEDRAL_VARIANTS or variants[0] != record.get("pdq")):
            raise ValueError("pdq_dihedral holds 8 hashes and starts with pdq")
