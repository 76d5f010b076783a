"""Rate limits for generation requests: token buckets per user and per tenant, per minute and per day.

A bucket holds up to ``burst`` tokens and refills at ``limit`` tokens per window, so a
person may send a few requests at once (burst) but not sustain more than the limit: the
seed asks for "strict rate limiting against bulk generation", and bulk is what a sustained
rate is. A request takes one token from each of its four buckets (user/minute, user/day,
tenant/minute, tenant/day) or from none: refusing when any is empty, without spending the
others, keeps a refused request from costing the tenant its day.

This module is the arithmetic and the in-memory store; the DynamoDB store
(``mediaguard.adapters.generations.DynamoQuotaStore``) reads the four buckets, computes
with :func:`plan` and writes them back in one transaction conditioned on each bucket's
version, so two concurrent requests cannot both spend the same token.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["user", "tenant"]
WindowName = Literal["minute", "day"]
WINDOW_SECONDS: dict[str, int] = {"minute": 60, "day": 86_400}


class Window(BaseModel):
    """``limit`` requests per window, sustained; ``burst`` at once (default: ``limit``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(gt=0)
    burst: int | None = Field(default=None, gt=0)

    @property
    def capacity(self) -> int:
        return self.burst or self.limit


# Defaults. A person writing prompts by hand sends a few a minute and rarely a hundred a day;
# a script generating in bulk does neither. A tenant (the platform, or one customer of it)
# gets a hundred times a user. Platforms set their own (``MEDIAGUARD_GENGUARD_LIMITS``).
class UserLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    minute: Window = Window(limit=6)
    day: Window = Window(limit=200)


class TenantLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    minute: Window = Window(limit=600)
    day: Window = Window(limit=20_000)


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: UserLimits = UserLimits()
    tenant: TenantLimits = TenantLimits()


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Bucket:
    """One bucket a request draws on: its storage key, what it limits and its window."""

    key: str
    scope: Scope
    window: WindowName
    spec: Window

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.spec.limit / WINDOW_SECONDS[self.window]


@dataclass(frozen=True)
class BucketState:
    """A bucket as stored: ``tokens`` at time ``updated`` (epoch seconds); ``version``
    counts writes, so a writer can demand the state it computed from."""

    tokens: float
    updated: float
    version: int


@dataclass(frozen=True)
class QuotaDecision:
    """The outcome for one request. ``states``: what to write back when allowed."""

    allowed: bool
    retry_after: int  # whole seconds until the emptiest refusing bucket holds a token; 0 when allowed
    quota: dict[str, Any]
    states: dict[str, BucketState]
    exhausted: tuple[str, ...] = ()  # "user.minute", ... : the buckets that refused


def buckets_for(tenant: str, user: str, limits: Limits = DEFAULT_LIMITS) -> list[Bucket]:
    """The four buckets of a request by ``user`` of ``tenant``.

    >>> [b.key for b in buckets_for("acme", "u1")]
    ['user:acme/u1:minute', 'user:acme/u1:day', 'tenant:acme:minute', 'tenant:acme:day']
    """
    out = []
    for scope, owner, scoped in (("user", f"{tenant}/{user}", limits.user), ("tenant", tenant, limits.tenant)):
        for window in ("minute", "day"):
            out.append(Bucket(f"{scope}:{owner}:{window}", scope, window, getattr(scoped, window)))  # type: ignore[arg-type]
    return out


def tokens_at(bucket: Bucket, state: BucketState | None, now: float) -> float:
    """Tokens in the bucket at ``now``: a bucket never seen is full; time running backwards
    (clocks of two Lambda hosts) refills nothing rather than draining."""
    if state is None:
        return float(bucket.spec.capacity)
    elapsed = max(0.0, now - state.updated)
    return min(float(bucket.spec.capacity), state.tokens + elapsed * bucket.rate)


def plan(buckets: Sequence[Bucket], states: dict[str, BucketState | None], now: float) -> QuotaDecision:
    """Take one token from every bucket, or refuse and take none.

    ``retry_after`` is how long until every refusing bucket holds a whole token again,
    rounded up: the ``Retry-After`` a polite client waits.
    """
    current = {b.key: tokens_at(b, states.get(b.key), now) for b in buckets}
    empty = [b for b in buckets if current[b.key] < 1.0]
    allowed = not empty
    after = dict(current)
    new_states: dict[str, BucketState] = {}
    if allowed:
        for b in buckets:
            after[b.key] = current[b.key] - 1.0
            old = states.get(b.key)
            new_states[b.key] = BucketState(after[b.key], now, (old.version if old else 0) + 1)
    retry = max((math.ceil((1.0 - current[b.key]) / b.rate) for b in empty), default=0)
    return QuotaDecision(allowed=allowed, retry_after=max(retry, 1) if empty else 0,
                         quota=report(buckets, after), states=new_states,
                         exhausted=tuple(f"{b.scope}.{b.window}" for b in empty))


def report(buckets: Sequence[Bucket], tokens: dict[str, float]) -> dict[str, Any]:
    """What the 200 (and 429) answer carries under ``quota``: per scope and window the
    limit, the burst, whole requests remaining now and seconds until the bucket is full."""
    out: dict[str, Any] = {}
    for b in buckets:
        left = tokens[b.key]
        out.setdefault(b.scope, {})[b.window] = {
            "limit": b.spec.limit, "window_seconds": WINDOW_SECONDS[b.window], "burst": b.spec.capacity,
            "remaining": max(0, math.floor(left + 1e-9)),
            "full_in_seconds": max(0, math.ceil((b.spec.capacity - left) / b.rate - 1e-9)),
        }
    return out


class QuotaStore(Protocol):
    def take(self, buckets: Sequence[Bucket], now: float) -> QuotaDecision:
        """Spend one token from each bucket atomically, or none (a refusal)."""


class InMemoryQuotaStore:
    """Buckets in a dict under a lock: the CLI's store, and the reference the DynamoDB one must agree with."""

    def __init__(self) -> None:
        self.states: dict[str, BucketState] = {}
        self._lock = threading.Lock()

    def take(self, buckets: Sequence[Bucket], now: float) -> QuotaDecision:
        with self._lock:
            decision = plan(buckets, {b.key: self.states.get(b.key) for b in buckets}, now)
            self.states.update(decision.states)
            return decision
