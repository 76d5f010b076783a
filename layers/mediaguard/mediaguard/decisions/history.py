"""Uploader history: behaviour counters that let bursts and repeat offenders raise risk.

Per uploader we keep uploads and flagged items in hourly buckets (for "last hour" and
"last day"), lifetime totals, bank matches by bank kind, and strikes (one per item,
removed again when an appeal overturns the decision). Scoring reads a
``HistorySnapshot``; the policy turns its numbers into signals such as
``history.burst`` and ``history.strikes`` through weights and ramps.

Identity. The uploader id (the platform's JWT subject) is personal data even when it
is opaque: it is stable and joins straight to the identity provider. The store keys
everything on ``Pseudonymiser.key(id)``, an HMAC-SHA256 under a secret from settings,
so the history table, its backups and the logs cannot be linked to a person without
that secret, and ids from a small or sequential space cannot be recovered by hashing
every candidate (as a plain hash would allow). Erasure still works: whoever holds the
raw id and the secret can compute the partition key and delete it. Rotating the secret
starts every uploader's history afresh.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, Field, SecretStr

# Decisions that count as "flagged": the platform restricted the item. "label" is
# informational and "review" is undecided, so neither counts against the uploader.
FLAGGING_ACTIONS = frozenset({"limit", "blur", "remove"})
# A match in an allow bank is a verified original, never an offence.
OFFENDING_BANK_KINDS = ("block", "flag")
# 128 bits of the HMAC: no collision in any real population (birthday bound 2^64),
# half the key length of the full digest in every item and log line.
KEY_HEX_CHARS = 32
MIN_SECRET_BYTES = 16


class Pseudonymiser:
    """Keyed hash of an uploader id: the only form in which an uploader is stored or logged.

    >>> Pseudonymiser("0123456789abcdef-test").key("user-42")[:8]
    '91cd25d3'
    """

    def __init__(self, secret: str | bytes | SecretStr) -> None:
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        data = raw.encode() if isinstance(raw, str) else raw
        if len(data) < MIN_SECRET_BYTES:
            raise ValueError(f"the uploader key must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = data

    def key(self, uploader_id: str) -> str:
        if not uploader_id:
            raise ValueError("uploader id is empty")
        return hmac.new(self._secret, uploader_id.encode(), hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]

    def __repr__(self) -> str:  # never print the secret
        return "Pseudonymiser(<secret>)"


class HistorySnapshot(BaseModel):
    """What scoring (and a reviewer) sees of one uploader, at one moment.

    Window counts are sliding-window estimates from hourly buckets (see
    ``sliding_count``), hence floats.
    """

    uploads_last_hour: float = Field(default=0.0, ge=0)
    uploads_last_day: float = Field(default=0.0, ge=0)
    flagged_last_day: float = Field(default=0.0, ge=0)
    uploads_total: int = Field(default=0, ge=0)
    flagged_total: int = Field(default=0, ge=0)
    # Items that matched a bank of each kind (block, flag), over the uploader's lifetime.
    bank_matches: dict[str, int] = Field(default_factory=dict)
    strikes: int = Field(default=0, ge=0)

    def signals(self) -> dict[str, float]:
        """The raw values of the ``history.*`` signals scoring weighs.

        >>> HistorySnapshot(uploads_last_hour=40, strikes=2).signals()["history.burst"]
        40.0
        """
        return {
            "history.burst": float(self.uploads_last_hour),
            "history.flagged": float(self.flagged_last_day),
            "history.bank_matches": float(sum(self.bank_matches.get(k, 0) for k in OFFENDING_BANK_KINDS)),
            "history.strikes": float(self.strikes),
        }


def hour_bucket(at: datetime) -> str:
    """The hourly bucket an instant falls in, as sortable UTC text: ``2026112314``."""
    return at.astimezone(UTC).strftime("%Y%m%d%H")


def sliding_count(hourly: Mapping[str, int | float], now: datetime, hours: int) -> float:
    """Events in the ``hours`` hours before ``now``, estimated from hourly buckets.

    The current (partial) hour and the ``hours - 1`` before it count in full; the bucket
    ``hours`` ago counts for the share of it still inside the window, assuming its events
    were spread evenly. This is the sliding-window approximation rate limiters use: one
    bucket per hour instead of one per minute, off by at most that one bucket's skew.

    >>> now = datetime(2026, 11, 23, 14, 15, tzinfo=UTC)   # a quarter into the hour
    >>> sliding_count({"2026112314": 4, "2026112313": 8}, now, 1)
    10.0
    """
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    elapsed = (now - start).total_seconds() / 3600
    total = sum(float(hourly.get(hour_bucket(start - timedelta(hours=i)), 0)) for i in range(hours))
    total += float(hourly.get(hour_bucket(start - timedelta(hours=hours)), 0)) * (1 - elapsed)
    return round(total, 2)


def offending_kinds(matched_bank_kinds: Iterable[str]) -> list[str]:
    """The bank kinds of an outcome that count against the uploader, each once."""
    return sorted({k for k in matched_bank_kinds if k in OFFENDING_BANK_KINDS})


class HistoryStore(Protocol):
    """Where the counters live (``mediaguard.adapters.history.DynamoHistory`` on AWS).

    Every method takes the platform's uploader id and keys it itself, so no caller can
    forget to. Each write is idempotent per ``media_id``: a retried stage counts once.
    """

    def record_upload(self, uploader: str, media_id: str, at: datetime | None = None) -> bool:
        """Count one upload; False if this media id was already counted."""

    def record_outcome(self, uploader: str, media_id: str, action: str, matched_bank_kinds: Iterable[str],
                       at: datetime | None = None) -> bool:
        """Count a decision: flagged if restrictive, plus offending bank kinds; False if nothing new."""

    def add_strike(self, uploader: str, media_id: str, reason: str, expires_at: datetime | None = None) -> bool:
        """One strike per item; False if the item already gave one."""

    def remove_strike(self, uploader: str, media_id: str) -> bool:
        """Withdraw the item's strike (an overturned appeal); False if there was none."""

    def snapshot(self, uploader: str, now: datetime | None = None) -> HistorySnapshot: ...

    def key_of(self, uploader: str) -> str:
        """The uploader's pseudonymous key (what the store is keyed by)."""

    def recent_uploads(self, uploader: str, limit: int = 20) -> list[tuple[str, datetime]]:
        """The uploader's recent uploads, (media id, counted at), newest first."""
