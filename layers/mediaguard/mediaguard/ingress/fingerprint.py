"""The fingerprints of one decoded still, as an upload stores them.

What each kind is (validation, hashing, comparison, thresholds) lives in
:mod:`mediaguard.signals`; this module only runs every kind the registry computes
from a still, so the sanitize stage, the edge and bank imports fingerprint alike.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from mediaguard.signals import STILL_KINDS


def fingerprint(rgb: Image.Image) -> dict[str, Any]:
    """Every still fingerprint kind of one decoded image, plus PDQ's quality and its eight
    dihedral variants (``pdq_dihedral``, index 0 == ``pdq``) computed in the same pass.

    >>> fp = fingerprint(Image.new("RGB", (64, 64), "white"))
    >>> sorted(fp)
    ['dhash', 'pdq', 'pdq_dihedral', 'pdq_quality', 'phash']
    """
    out: dict[str, Any] = {}
    views = {"RGB": rgb}  # one conversion per mode (pHash and dHash share one greyscale)
    for signal in STILL_KINDS:
        mode = signal.input_mode
        if mode not in views:
            views[mode] = rgb.convert(mode)
        out.update(signal.record(views[mode]))
    return out
