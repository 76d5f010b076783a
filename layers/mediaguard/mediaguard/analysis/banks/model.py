"""The records a bank is made of, and what a featurizer hands over for banking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

import numpy as np

from mediaguard.analysis.matching import BankInfo
from mediaguard.models import Action, BankKind
from mediaguard.signals import PdqSignal

BANK_KINDS: tuple[str, ...] = get_args(BankKind)
ACTIONS: tuple[str, ...] = get_args(Action)
EntryStatus = Literal["active", "withdrawn", "deleted"]


@dataclass(frozen=True)
class Bank:
    name: str
    kind: BankKind
    action: Action | None = None
    pdq_threshold: int = PdqSignal.match_threshold
    embedding_threshold: float | None = None  # minimum cosine; None = the system default
    created_at: datetime | None = None
    created_by: str | None = None

    def info(self) -> BankInfo:
        """The matcher's view of this bank."""
        return BankInfo(name=self.name, kind=self.kind, action=self.action, pdq_threshold=self.pdq_threshold,
                        embedding_threshold=self.embedding_threshold)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": _iso(self.created_at)}


@dataclass(frozen=True)
class Entry:
    """A stored entry. ``signals`` names what it carries (or carried, for a tombstone)."""

    bank: str
    ref: str
    status: EntryStatus = "active"
    pdq: str | None = None
    quality: int | None = None
    embedding: str | None = None
    audio: str | None = None  # AudioSignal's string form (base64 Chromaprint words)
    signals: tuple[str, ...] = ()
    group: str | None = None
    source: str | None = None
    clip: str | None = None  # CLIP's embedding, stored like ``embedding`` (``ClipSignal.encode``)
    added_at: datetime | None = None
    added_by: str | None = None
    updated_at: datetime | None = None
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    expires_at: datetime | None = None  # deletion markers only

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; the embeddings and the audio fingerprint are left out (large and opaque)."""
        out = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in asdict(self).items()
               if k not in ("embedding", "clip", "audio")}
        out["signals"] = list(self.signals)
        return out


@dataclass(frozen=True)
class NewEntry:
    """An entry to add. ``value`` is the PDQ (the name the table has always used);
    ``signal`` is ``"pdq"`` when there is one, ``"embedding"`` for an embedding-only entry
    (``clip`` may sit beside either).
    ``status="withdrawn"`` (from a CSV) withdraws ``ref`` instead of adding it."""

    ref: str
    signal: str = "pdq"
    value: str | None = None
    quality: int | None = None
    embedding: str | None = None
    group: str | None = None
    status: Literal["active", "withdrawn"] = "active"
    audio: str | None = None  # an audio track's fingerprint (signal "audio" when there is no PDQ)
    clip: str | None = None


@dataclass(frozen=True)
class Features:
    """What a featurizer computes for one photo, one video frame, or one audio track."""

    pdq: str | None = None
    quality: int | None = None
    embedding: np.ndarray | Sequence[float] | str | None = None
    audio: str | None = None  # AudioSignal's string form
    clip: np.ndarray | Sequence[float] | str | None = None  # CLIP's 512-d embedding, when computed


# (media bytes, declared content type) -> one Features per photo, or per video frame.
Featurizer = Callable[[bytes, str | None], Sequence[Features]]


@dataclass
class AddReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    skipped_withdrawn: int = 0  # refs withdrawn earlier: never revived by an add
    skipped_rows: int = 0  # CSV rows for other signal types or marked false positive
    refs: list[str] = field(default_factory=list)  # add_media only: the refs it wrote

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "refs"}



def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
