"""The :class:`SignalType` contract every fingerprint kind implements, and the bit helpers
the hash kinds share."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

# numpy (and Pillow) load on the first hash, not on import: models imports this registry,
# and the stages that only move records (start, score, failure) must not pay for them.
if TYPE_CHECKING:
    import numpy as np


ContentType = Literal["photo", "video", "audio"]

_HEX = re.compile(r"^[0-9a-f]+$")


def bits_to_hex(bits: np.ndarray) -> str:
    """MSB-first hex of a flat bool/0-1 array, the form hash exchanges use."""
    import numpy as np
    return np.packbits(np.asarray(bits, dtype=np.uint8).ravel()).tobytes().hex()


def hamming(a: str, b: str) -> int:
    """Hamming distance between two equal-length hex strings."""
    if len(a) != len(b):
        raise ValueError("hashes of different lengths cannot be compared")
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class Comparison:
    """What comparing two values of one kind says: whether they are the same media, and how
    far apart they are (0 = identical; bits for hashes, 1 - cosine for embeddings, the
    unmatched share of frames for vPDQ)."""

    match: bool
    distance: int | float


class SignalType(ABC):
    """One fingerprint kind, in the shape of python-threatexchange's ``SignalType``.

    A kind declares its ``name`` (the key in :data:`~mediaguard.signals.REGISTRY`, in
    stored fingerprints and in ``Match.signal``), the ``content_types`` it is computed
    from, how its string form is validated, how two values compare, its match
    threshold(s) (defined here, once; callers read the class attribute), the index that
    searches it and ``examples`` of its string form.
    """

    name: ClassVar[str]
    content_types: ClassVar[tuple[ContentType, ...]]
    # The one threshold that decides a match, in the unit the kind's docstring gives
    # (max bits for hashes, min cosine for embeddings, min frame share for vPDQ).
    match_threshold: ClassVar[int | float]
    # False: the kind is computed and recorded, but banks do not hold it and nothing
    # is matched on it (see the package docstring for why pHash/dHash are such kinds).
    matched: ClassVar[bool] = True
    # "module:Class" of the index that searches this kind, None when it is not matched.
    # A name rather than the class: the indexes live in ``mediaguard.analysis``, which
    # sits above this package and imports it.
    index: ClassVar[str | None] = None
    # Valid string forms; the contract test checks each validates as itself.
    examples: ClassVar[tuple[str, ...]]
    # What this kind adds to a still's stored fingerprints (``models.Fingerprints``):
    # field -> (type, default), ``...`` for required. Empty when it is computed elsewhere
    # (embeddings by the classifier, vPDQ by the frames stage).
    record_fields: ClassVar[dict[str, tuple[Any, Any]]] = {}
    # Of those, the ones written on the media item (the rest travel in the payload only).
    item_fields: ClassVar[tuple[str, ...]] = ()
    # The Pillow mode :meth:`record` reads; ``fingerprint`` converts a still once per mode,
    # so kinds that hash greyscale share one conversion.
    input_mode: ClassVar[str] = "RGB"

    @classmethod
    @abstractmethod
    def validate(cls, value: str) -> str:
        """Return the canonical string form or raise ``ValueError``."""

    @classmethod
    @abstractmethod
    def compare(cls, a: str, b: str, threshold: int | float | None = None) -> Comparison:
        """Compare two string forms (validated here) at ``threshold`` (default: the class's)."""

    @classmethod
    def matches(cls, a: str, b: str) -> bool:
        return cls.compare(a, b).match

    @classmethod
    def record(cls, rgb: Any) -> dict[str, Any]:
        """This kind's ``record_fields`` computed from one decoded still (RGB, or the
        kind's ``input_mode`` when :func:`~mediaguard.ingress.fingerprint.fingerprint` calls)."""
        raise NotImplementedError(f"{cls.name} is not computed from a still")

    @classmethod
    def check_record(cls, record: dict[str, Any]) -> None:
        """Refuse stored ``record_fields`` that cannot belong together (``ValueError``)."""
        return None  # most kinds have no rule across their fields


class HexHashSignal(SignalType):
    """A fixed-length binary hash written as lowercase hex and compared by Hamming distance;
    ``match_threshold`` is the largest distance, in bits, that still counts as a match."""

    bits: ClassVar[int]
    match_threshold: ClassVar[int]

    @classmethod
    def validate(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != cls.bits // 4 or not _HEX.match(value):
            raise ValueError(f"{cls.name} hashes are {cls.bits // 4} hex characters")
        return value

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return hamming(cls.validate(a), cls.validate(b))

    @classmethod
    def compare(cls, a: str, b: str, threshold: int | float | None = None) -> Comparison:
        distance = cls.distance(a, b)
        return Comparison(distance <= (cls.match_threshold if threshold is None else threshold), distance)

    @classmethod
    @abstractmethod
    def hash_image(cls, rgb: Any) -> tuple[str, int | None]:
        """Hash an RGB ``PIL.Image``; returns (hex, quality or None)."""

    @classmethod
    def record(cls, rgb: Any) -> dict[str, Any]:
        value, quality = cls.hash_image(rgb)
        return {cls.name: value} if quality is None else {cls.name: value, f"{cls.name}_quality": quality}
