"""How a bank stores an embedding: ``EmbeddingSignal``'s form (L2-normalised float16, base64),
with the bank's own typed error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mediaguard.analysis.banks.errors import InvalidEntryError
from mediaguard.signals import EmbeddingSignal


def encode_embedding(vector: np.ndarray | Sequence[float]) -> str:
    """An embedding as stored (``EmbeddingSignal.encode``).

        >>> decode_embedding(encode_embedding([3.0, 4.0])).tolist()
        [0.60009765625, 0.7998046875]
    """
    try:
        return EmbeddingSignal.encode(vector)
    except ValueError as exc:
        raise InvalidEntryError(str(exc)) from exc


def decode_embedding(text: str) -> np.ndarray:
    """The float32 vector of a stored embedding (see :func:`encode_embedding`)."""
    try:
        return EmbeddingSignal.decode(text)
    except ValueError as exc:
        raise InvalidEntryError(str(exc)) from exc
