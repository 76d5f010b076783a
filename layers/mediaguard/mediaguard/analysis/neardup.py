"""Near-duplicate decision: is this upload a copy of that banked picture?

Two signals; either one suffices, and the verdict says which matched and by how much:

- **PDQ**, rotations and mirrors included: the smallest Hamming distance between any of
  the query's eight dihedral variants and the reference's PDQ is <= 31, and both hashes
  have quality >= 50 (``PdqSignal.match_threshold`` and ``min_quality``: industry
  practice, FIELD-NOTES). It survives re-encoding, resizing,
  colour edits, overlays, mirrors and quarter turns, but not crops or small rotations:
  a 75 % centre crop moves PDQ by 96-126 bits, a 6 degree rotation by 54-104.
- **Embedding**: cosine >= ``EmbeddingSignal.match_threshold`` between open_nsfw's pooled
  embeddings (``classify.OPEN_NSFW_POOL``). It carries crops, small rotations and
  pictures too flat for PDQ (quality < 50).

The reference side is embedded as several views (:func:`reference_views`: the picture
and its 80 % and 64 % centre crops, three forward passes when an entry is banked), and
the query's single embedding is compared with the closest. A crop of the original then
meets a view framed like it, at no cost per upload: in the measurement below the worst
centre-crop cosine rose from 0.85 to 0.96, the worst off-centre crop from 0.85 to 0.91.

How ``EmbeddingSignal.match_threshold`` (0.90) was chosen (``python -m bench.embedding --calibrate``):
54 pictures (11 scikit-image photos, 43 Debian desktop wallpapers, photos and vector art),
each with the 11 copies ``tests/unit/test_neardup.py`` makes, all through the upload
path. PDQ missed 215 of these 648 (every crop and small rotation, pictures with PDQ
quality < 50, some captions). Cosine to the source, with the views:

=========  ==========================  =================================================
threshold  copies PDQ missed, missed   unrelated (picture, reference) pairs >= threshold
=========  ==========================  =================================================
0.85       2                           64 of 34,344
0.90       6 (15 without the views)    18: all one pair of flat vector illustrations
0.94       22                          0
=========  ==========================  =================================================

0.90 keeps all but 6 copies (quarter turns and a q25 re-encode of pictures PDQ cannot
use, at 0.74-0.89). Above it, the only unrelated pair was two flat vector wallpapers
(0.925); the closest photos were two flower close-ups (0.875), two colour-ribbon
abstracts reached 0.894. A pooled classifier embedding says what a picture looks like,
not which picture it is, and the margin to unrelated pictures is a few hundredths: treat
an embedding match as grounds for review, not removal, and measure again on the
platform's own content (a bank may set its own threshold).

**CLIP beside it** (``ClipSignal``, signal ``clip``: the detect stage's 512-d CLIP ViT-B/16
embedding, one image per run). Same 54 pictures and 11 copies, plus a 50 % centre crop;
references as banks store them today (``featurize``: the full frame only, no views),
648 copies of which PDQ missed 215, 34,344 unrelated (copy, reference) pairs::

    rule                             missed of 215   unrelated pairs   50 % crops kept (of 54)
    open_nsfw >= 0.90 (today)             15               17                 10
    clip >= 0.90                          40              152                 29
    clip >= 0.94                          88               19                 12
    clip >= 0.95                         112                1                  3
    open_nsfw >= 0.90 or clip >= 0.94      9               32                 20
    open_nsfw >= 0.90 or clip >= 0.95     10               17                 11

Per transform, median / worst full-frame cosine to the source, CLIP vs open_nsfw: 50 %
crop 0.905/0.744 vs 0.853/0.754; 75 % crop 0.953/0.860 vs 0.941/0.851; quarter turns
0.94/0.77 vs 0.88/0.68; caption 0.724/0.592 vs 0.974/0.951 (CLIP reads the text); and
unrelated pairs reach 0.955 vs 0.923 (p99.9 0.938 vs 0.871): CLIP places two pictures
of one genre (flower close-ups, flat vector art) close. Alone, CLIP is the weaker
near-duplicate signal on this corpus; beside open_nsfw at 0.95 it catches 5 of the 15
copies open_nsfw misses and adds no unrelated pair (its one pair above 0.95 is the
vector pair open_nsfw already matches), so that is its threshold; 0.94 would double the
50 % crops kept and add 15 unrelated pairs. On the scikit-image photos (people and
objects, the unit test's corpus) CLIP's margin is wider: a 75 % crop of ``retina`` keeps
0.982 (open_nsfw 0.856), the closest unrelated photo 0.778; two different people
scored 0.52 (open_nsfw 0.67) when the detect stage was measured (FIELD-NOTES).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from mediaguard.models import Fingerprints
from mediaguard.signals import EmbeddingSignal, PdqSignal, hamming

# Centre crops banked beside the full picture (fractions of each side kept).
REFERENCE_CROPS = (0.8, 0.64)

Signal = Literal["pdq", "pdq_dihedral", "embedding"]


@dataclass(frozen=True)
class PictureSignals:
    """The signal values one picture brings to :func:`decide`, as query or as reference;
    every part is optional.

    ``embedding`` is one L2-normalised vector (D,) for a query, or a (views, D) stack for a
    reference embedded with :func:`reference_views`.
    """

    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_dihedral: Sequence[str] = ()
    embedding: np.ndarray | None = None

    @classmethod
    def of(cls, fingerprints: Fingerprints | None, embedding: np.ndarray | None = None) -> PictureSignals:
        """The signals from the sanitize stage's fingerprints plus the classifier's embedding."""
        if fingerprints is None:
            return cls(embedding=embedding)
        return cls(fingerprints.pdq, fingerprints.pdq_quality, tuple(fingerprints.pdq_dihedral), embedding)


@dataclass(frozen=True)
class Verdict:
    """The decision and the evidence behind it.

    ``signal`` is the first signal that matched (``pdq`` for the picture as uploaded,
    ``pdq_dihedral`` for a rotated/mirrored variant, then ``embedding``). Both measurements
    are kept whether or not they matched, for the audit trail: ``pdq_distance`` (bits, the
    best variant) is None when PDQ could not be compared (missing, or quality < 50), and
    ``cosine`` is None when either side has no embedding.
    """

    matched: bool
    signal: Signal | None
    pdq_distance: int | None
    cosine: float | None


def pdq_distance(query: PictureSignals, reference: PictureSignals,
                 min_quality: int = PdqSignal.min_quality) -> tuple[int, int] | None:
    """``(distance, variant)``: the query variant closest to the reference's PDQ, or None.

    Variant 0 is the picture as uploaded. A query without dihedral variants is compared as
    is; when only the reference has them, the reference's variants are searched instead
    (the group is closed under inversion, so either side may carry them).
    """
    if not (query.pdq and reference.pdq):
        return None
    if (query.pdq_quality is not None and query.pdq_quality < min_quality) or (
        reference.pdq_quality is not None and reference.pdq_quality < min_quality
    ):
        return None
    if query.pdq_dihedral:
        variants, target = list(query.pdq_dihedral), reference.pdq
    elif reference.pdq_dihedral:
        variants, target = list(reference.pdq_dihedral), query.pdq
    else:
        variants, target = [query.pdq], reference.pdq
    distances = [hamming(v, target) for v in variants]
    best = int(np.argmin(distances))
    return distances[best], best


def cosine(query: PictureSignals, reference: PictureSignals) -> float | None:
    """Highest cosine between the query's embedding(s) and the reference's view(s), or None.

    Both sides must already be L2-normalised (the classifier returns them so).
    """
    if query.embedding is None or reference.embedding is None:
        return None
    q = np.atleast_2d(np.asarray(query.embedding, dtype=EmbeddingSignal.dtype))
    r = np.atleast_2d(np.asarray(reference.embedding, dtype=EmbeddingSignal.dtype))
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"embeddings of different sizes ({q.shape[1]} and {r.shape[1]}) cannot be compared")
    return float((q @ r.T).max())


def decide(
    query: PictureSignals,
    reference: PictureSignals,
    *,
    max_distance: int = PdqSignal.match_threshold,
    min_quality: int = PdqSignal.min_quality,
    min_cosine: float = EmbeddingSignal.match_threshold,
) -> Verdict:
    """Whether ``query`` is a near-duplicate of ``reference``, by which signal, how close.

    >>> a = PictureSignals(pdq="0" * 64, pdq_quality=100)
    >>> decide(a, PictureSignals(pdq="0" * 62 + "ff", pdq_quality=90))
    Verdict(matched=True, signal='pdq', pdq_distance=8, cosine=None)
    >>> decide(a, PictureSignals(pdq="0" * 62 + "ff", pdq_quality=40)).matched  # too flat to trust
    False
    """
    pdq = pdq_distance(query, reference, min_quality)
    cos = cosine(query, reference)
    signal: Signal | None = None
    if pdq is not None and pdq[0] <= max_distance:
        signal = "pdq" if pdq[1] == 0 else "pdq_dihedral"
    elif cos is not None and cos >= min_cosine:
        signal = "embedding"
    return Verdict(signal is not None, signal, None if pdq is None else pdq[0], None if cos is None else round(cos, 6))


def reference_views(rgb: Image.Image, crops: Sequence[float] = REFERENCE_CROPS) -> list[Image.Image]:
    """The picture and its centre crops, to embed when a reference is banked.

    Classify them in one batch and stack the embeddings as the reference's (views, D)
    ``embedding``. Example::

        views = reference_views(rgb)
        ref = PictureSignals.of(fps, np.stack([f.embedding for f in open_nsfw.classify_batch(views)]))
    """
    views = [rgb]
    for keep in crops:
        w, h = max(1, round(rgb.width * keep)), max(1, round(rgb.height * keep))
        left, top = (rgb.width - w) // 2, (rgb.height - h) // 2
        views.append(rgb.crop((left, top, left + w, top + h)))
    return views
