"""How a bank stores an embedding: L2-normalised float16, base64."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import numpy as np

from mediaguard.analysis.banks.errors import InvalidEntryError


def encode_embedding(vector: np.ndarray | Sequence[float]) -> str:
    """An embedding as stored: L2-normalised, little-endian float16, base64.

    Cosine ignores length, and unit vectors cannot overflow float16's 65504. A 1024-d
    vector takes 2,732 characters.

        >>> decode_embedding(encode_embedding([3.0, 4.0])).tolist()
        [0.60009765625, 0.7998046875]
    """
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v)) if v.size else 0.0
    if not v.size or not np.all(np.isfinite(v)) or norm == 0.0:
        raise InvalidEntryError("an embedding is a non-empty, finite, non-zero vector")
    return base64.b64encode((v / norm).astype("<f2").tobytes()).decode("ascii")


def decode_embedding(text: str) -> np.ndarray:
    """The float32 vector of a stored embedding (see :func:`encode_embedding`)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidEntryError("an embedding is base64 of float16 values") from exc
    if not raw or len(raw) % 2:
        raise InvalidEntryError("an embedding is base64 of float16 values")
    v = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if not np.all(np.isfinite(v)):
        raise InvalidEntryError("an embedding holds non-finite values")
    return v
