"""Human review: a prioritised queue with a fast lane and an SLA, reviewer decisions with
reason codes, and appeals decided by a different reviewer.

How the automated path hands over: the Express pipeline never waits for a person. Its
enforce stage records the automated action and calls ``ReviewQueue.enqueue`` (one
conditional write), and the execution ends. A reviewer's decision later calls
``enforcement.apply`` directly (the "queue + resume call" model): no task token, no
Standard workflow parked for hours per image.

Priority. ``priority = risk x (1 + log10(1 + reach))`` with reach (the uploader's
audience, e.g. followers, supplied by the platform at upload) clipped to 10^9, so
priority is in [0, 10]. The log keeps reach from swamping risk: an item seen by a
million people weighs 7x one seen by nobody, not a million times. Unknown reach counts
as 0, so an item is never ranked below its bare risk.

Lanes. ``fast`` when risk >= ``fast_lane_risk`` (0.9 by default: the upper half of the
policy's 0.85-0.95 review band), else ``normal``; each lane has its own SLA (1 h / 24 h
by default). A task past its deadline is moved to the ``escalated`` lane by the SLA
function, which only senior reviewers work; a reviewer can also escalate by hand.

Claims. A reviewer claims a task before deciding it; a claim is a lease (15 min by
default). Claim and decide are conditional writes in the store, so two reviewers can
never both hold a task or both decide it.

Appeals. The uploader (the JWT subject the upload was granted to) may appeal a
restrictive action once, with a short statement. A senior reviewer who neither made the
decision nor uploaded the item upholds or overturns it; an overturn restores the item
through ``enforcement.restore`` and withdraws the strike a reviewer's removal put on the
uploader's history (``mediaguard.decisions.history``).

Every state change of consequence is appended to the item's audit chain (``media_id``):
``review_enqueued``, ``review_escalated``, ``review_decided``, ``media_viewed`` (who saw
the sanitized copy: reviewers of NCII must be accountable for each look),
``appeal_opened`` (the statement's hash, never its text) and ``appeal_decided``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar, Literal, Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from mediaguard.audit import chain as audit
from mediaguard.decisions.history import HistoryStore
from mediaguard.errors import MediaguardError
from mediaguard.ingress import grant
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)

Lane = Literal["fast", "normal", "escalated"]
TaskState = Literal["queued", "claimed", "decided"]
ReviewAction = Literal["approve", "label", "blur", "limit", "remove", "escalate"]
AppealOutcome = Literal["uphold", "overturn"]
AppealState = Literal["open", "decided"]

# What a reviewer's action does to the item; "escalate" changes only the task.
ENFORCED_ACTION: dict[str, str] = {"approve": "allow", "label": "label", "blur": "blur", "limit": "limit",
                                   "remove": "remove"}
# Automated or human actions an uploader can appeal: everything that restricts the item.
APPEALABLE_ACTIONS = frozenset({"label", "blur", "limit", "remove"})

# --- reason codes ---------------------------------------------------------------------
# Every decision names one of these; the audit trail and transparency reports count them.
# Each code lists the actions it can justify, so "no_violation" cannot justify a removal.
REVIEW_REASONS: dict[str, tuple[str, frozenset[str]]] = {
    "no_violation": ("Nothing in the item breaks policy (an automated false positive).", frozenset({"approve"})),
    "consent_verified": ("The person depicted consented, and the consent is on record.", frozenset({"approve"})),
    "newsworthy": ("Kept in the public interest (news, documentation, satire).",
                   frozenset({"approve", "label", "limit"})),
    "synthetic_undisclosed": ("AI-generated or manipulated media presented as real.",
                              frozenset({"label", "blur", "limit", "remove"})),
    "deepfake_impersonation": ("Synthetic depiction of a real person without their consent.",
                               frozenset({"blur", "limit", "remove"})),
    "ncii": ("Non-consensual intimate imagery.", frozenset({"remove"})),
    "sexual_content": ("Adult sexual content outside NCII (restricted, not banned).",
                       frozenset({"blur", "limit", "remove"})),
    "graphic_violence": ("Graphic violence or gore.", frozenset({"label", "blur", "limit", "remove"})),
    "hash_match_confirmed": ("A reviewer confirmed the hash-bank match shows the same content.",
                             frozenset({"blur", "limit", "remove"})),
    "minor_safety": ("A minor may be depicted: remove, or escalate for the legal reporting path.",
                     frozenset({"remove", "escalate"})),
    "legal_request": ("A court order or legal notice applies.", frozenset({"limit", "remove", "escalate"})),
    "needs_senior": ("Outside the reviewer's remit or judgement; a senior reviewer decides.",
                     frozenset({"escalate"})),
}
APPEAL_REASONS: dict[str, tuple[str, frozenset[str]]] = {
    "decision_correct": ("The original decision applied the policy correctly.", frozenset({"uphold"})),
    "statement_unsupported": ("The statement gives no context that changes the decision.", frozenset({"uphold"})),
    "new_context": ("The statement adds context that changes the decision.", frozenset({"overturn"})),
    "consent_verified": ("The person depicted consented, and the consent is on record.", frozenset({"overturn"})),
    "reviewer_error": ("The original decision misapplied the policy.", frozenset({"overturn"})),
    "automation_error": ("The automated signals were wrong for this item.", frozenset({"overturn"})),
}
# Enums for the request models, so the OpenAPI document lists the valid codes.
ReviewReason = StrEnum("ReviewReason", {code: code for code in REVIEW_REASONS})
AppealReason = StrEnum("AppealReason", {code: code for code in APPEAL_REASONS})

# --- roles ----------------------------------------------------------------------------
# Cumulative: a senior reviewer can do what a reviewer can, an admin what a senior can.
ROLE_LEVELS = {"reviewer": 1, "senior-reviewer": 2, "admin": 3}


# --- settings ---------------------------------------------------------------------------


class DevIdentity(BaseModel):
    sub: str = Field(min_length=1)
    roles: list[str] = []


class ReviewSettings(BaseModel):
    """Review tables, lanes, SLAs and leases; read once per process."""

    review_table: str | None = None
    appeals_table: str | None = None
    # Risk at or above which a task goes to the fast lane.
    fast_lane_risk: float = Field(default=0.9, ge=0.0, le=1.0)
    fast_sla_minutes: int = Field(default=60, gt=0)
    normal_sla_minutes: int = Field(default=24 * 60, gt=0)
    # Long enough to look at an item and write a note; short enough that a reviewer who
    # walked away does not sit on a fast-lane item for long.
    lease_minutes: int = Field(default=15, gt=0)
    # Open tasks are spread over this many queue partitions per lane (the listing merges
    # them). Only ever raise it: tasks in a shard above the count drop out of the listing.
    queue_shards: int = Field(default=4, ge=1, le=64)
    # The issue caps the reviewer's presigned GET of the sanitized copy at 5 minutes.
    media_url_ttl_seconds: int = Field(default=300, gt=0, le=300)
    # Local mode only: JSON {token: {"sub": ..., "roles": [...]}} for requests that no JWT
    # authorizer saw. Empty on AWS, where API Gateway rejects such requests first.
    dev_tokens: SecretStr | None = None

    def dev_identities(self) -> dict[str, DevIdentity]:
        if not self.dev_tokens:
            return {}
        raw = json.loads(self.dev_tokens.get_secret_value() or "{}")
        return {token: DevIdentity.model_validate(identity) for token, identity in raw.items()}

    def sla(self, lane: Lane) -> timedelta:
        return timedelta(minutes=self.fast_sla_minutes if lane == "fast" else self.normal_sla_minutes)


_ENV = {
    "review_table": "REVIEW_TABLE",
    "appeals_table": "APPEALS_TABLE",
    "fast_lane_risk": "MEDIAGUARD_REVIEW_FAST_RISK",
    "fast_sla_minutes": "MEDIAGUARD_REVIEW_FAST_SLA_MINUTES",
    "normal_sla_minutes": "MEDIAGUARD_REVIEW_NORMAL_SLA_MINUTES",
    "lease_minutes": "MEDIAGUARD_REVIEW_LEASE_MINUTES",
    "queue_shards": "MEDIAGUARD_REVIEW_QUEUE_SHARDS",
    "dev_tokens": "MEDIAGUARD_DEV_TOKENS",
}


@lru_cache(maxsize=1)
def get_review_settings() -> ReviewSettings:
    """Review settings from the environment; cached per warm container."""
    return ReviewSettings.model_validate({f: os.environ[v] for f, v in _ENV.items() if os.environ.get(v)})


# --- errors -----------------------------------------------------------------------------


class ReviewApiError(MediaguardError):
    """An answer to the caller: an HTTP status, a stable reason code and a safe message."""

    status: ClassVar[int] = 400
    reason = "bad_request"

    def body(self) -> dict[str, str]:
        return {"reason": self.reason, "message": str(self)}


class UnauthorizedError(ReviewApiError):
    status = 401
    reason = "unauthorized"


class ForbiddenError(ReviewApiError):
    status = 403
    reason = "forbidden"


class NotFoundError(ReviewApiError):
    status = 404
    reason = "not_found"


class ConflictError(ReviewApiError):
    status = 409
    reason = "conflict"


class InvalidRequestError(ReviewApiError):
    status = 400
    reason = "invalid_request"


# --- callers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    sub: str
    roles: frozenset[str] = frozenset()

    @property
    def level(self) -> int:
        return max((ROLE_LEVELS.get(r, 0) for r in self.roles), default=0)

    def require(self, role: str) -> None:
        if self.level < ROLE_LEVELS[role]:
            raise ForbiddenError(f"this needs the {role} role")

    @property
    def senior(self) -> bool:
        return self.level >= ROLE_LEVELS["senior-reviewer"]

    @property
    def actor(self) -> str:
        return f"reviewer:{self.sub}"


def parse_groups(value: Any) -> frozenset[str]:
    """Groups from a ``cognito:groups`` claim.

    Cognito puts a JSON array in the token, but API Gateway HTTP APIs hand JWT claims to
    the integration flattened to strings, an array as ``"[reviewer admin]"``.

    >>> sorted(parse_groups("[reviewer admin]"))
    ['admin', 'reviewer']
    """
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(v) for v in value)
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return frozenset(str(v) for v in parsed)
        except json.JSONDecodeError:
            text = text.strip("[]")
    return frozenset(part for part in text.replace(",", " ").split() if part)


def authenticate(jwt_claims: dict[str, Any] | None, authorization: str | None, settings: ReviewSettings) -> Caller:
    """The caller from the JWT claims the HTTP API's authorizer validated, or, when no
    authorizer ran (local mode), from the dev token map.

    On AWS every route but the OpenAPI document sits behind the JWT authorizer, and the
    template leaves ``MEDIAGUARD_DEV_TOKENS`` empty, so a dev token opens nothing there.
    """
    if jwt_claims and jwt_claims.get("sub"):
        return Caller(str(jwt_claims["sub"]), parse_groups(jwt_claims.get("cognito:groups")))
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        found = None
        for token, identity in settings.dev_identities().items():
            # Every token is compared, in constant time, so timing does not reveal a prefix.
            if hmac.compare_digest(presented.strip().encode(), token.encode()):
                found = identity
        if found is not None:
            return Caller(found.sub, frozenset(found.roles))
    raise UnauthorizedError("a valid bearer token is required")


# --- priority, lanes, keys ------------------------------------------------------------------

REACH_CAP = 10**9  # beyond a billion, more followers say nothing about harm
PRIORITY_UNITS = 10**6  # priority kept to 6 decimals in the sort key


def reach_weight(reach: int | None) -> float:
    """``1 + log10(1 + reach)``, reach clipped to [0, 10^9]: 1 for nobody, ~7 for a million."""
    return 1.0 + math.log10(1 + min(max(reach or 0, 0), REACH_CAP))


def priority(risk: float, reach: int | None) -> float:
    """Review priority: risk weighted by the log of the audience it can reach.

    >>> priority(0.9, 0), round(priority(0.9, 999_999), 2)
    (0.9, 5.4)
    """
    return round(risk * reach_weight(reach), 6)


def lane_for(risk: float, settings: ReviewSettings) -> Lane:
    return "fast" if risk >= settings.fast_lane_risk else "normal"


def shard_of(media_id: str, shards: int) -> int:
    return int(hashlib.sha256(media_id.encode()).hexdigest()[:8], 16) % shards


def queue_partition(lane: Lane, shard: int) -> str:
    return f"{lane}#{shard}"


def queue_sort_key(prio: float, enqueued_at: datetime, media_id: str) -> str:
    """Ascending order = highest priority first, then oldest first.

    Priority is inverted and zero-padded so string order is numeric order:
    ``10^8 - priority x 10^6`` (priority <= 10, so 9 digits always suffice).
    """
    inverted = 10**8 - round(prio * PRIORITY_UNITS)
    return f"{inverted:09d}#{enqueued_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{media_id}"


# --- models -----------------------------------------------------------------------------------


class Task(BaseModel):
    """One item's review task, as the queue and the console see it."""

    media_id: str
    risk: float
    reach: int
    priority: float
    lane: Lane
    state: TaskState
    due_at: datetime
    enqueued_at: datetime
    reason: str
    action: str | None = None  # the automated action that sent the item to review
    escalated: bool = False
    claimed_by: str | None = None
    lease_until: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_action: str | None = None
    decision_reason: str | None = None
    decision_note: str | None = None

    def overdue(self, now: datetime) -> bool:
        return self.state != "decided" and self.due_at < now


class QueuePage(BaseModel):
    items: list[Task]


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: ReviewAction
    reason_code: ReviewReason
    note: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _reason_fits_action(self) -> DecisionRequest:
        allowed = REVIEW_REASONS[self.reason_code.value][1]
        if self.action not in allowed:
            raise ValueError(f"reason_code {self.reason_code.value} does not justify {self.action}; "
                             f"it fits {', '.join(sorted(allowed))}")
        return self


class Decision(BaseModel):
    media_id: str
    action: ReviewAction
    enforced_action: str | None  # None for escalate
    reason_code: str
    note: str | None = None
    decided_by: str
    decided_at: datetime
    lane: Lane


class AppealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    statement: str = Field(min_length=1, max_length=1000)


class AppealReceipt(BaseModel):
    """What the uploader gets back: never the reviewer's identity."""

    appeal_id: str
    media_id: str
    state: AppealState
    created_at: datetime


class Appeal(BaseModel):
    appeal_id: str
    media_id: str
    uploader: str
    statement: str
    state: AppealState
    created_at: datetime
    appealed_action: str
    # Who made the appealed decision: a reviewer's sub, or "system" for the pipeline.
    original_decider: str
    outcome: AppealOutcome | None = None
    reason_code: str | None = None
    note: str | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None


class AppealView(BaseModel):
    """An appeal as senior reviewers see it: the statement, not the uploader's id."""

    model_config = ConfigDict(extra="ignore")

    appeal_id: str
    media_id: str
    statement: str
    state: AppealState
    created_at: datetime
    appealed_action: str
    original_decider: str
    outcome: AppealOutcome | None = None
    reason_code: str | None = None
    note: str | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None


class AppealPage(BaseModel):
    items: list[AppealView]


class AppealDecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: AppealOutcome
    reason_code: AppealReason
    note: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _reason_fits_outcome(self) -> AppealDecisionRequest:
        allowed = APPEAL_REASONS[self.reason_code.value][1]
        if self.outcome not in allowed:
            raise ValueError(f"reason_code {self.reason_code.value} does not justify {self.outcome}")
        return self


class SignalView(BaseModel):
    name: str
    value: float
    contribution: float


class MatchView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bank: str
    kind: str
    ref: str
    signal: str
    distance: float


class MediaLink(BaseModel):
    url: str
    expires_in: int
    # "live": the copy being served; "evidence": the sanitized copy a removal preserved.
    source: Literal["live", "evidence"] = "live"


class AuditEntry(BaseModel):
    seq: int
    at: str
    actor: str
    event: str


class AuditSummary(BaseModel):
    records: int
    verified: bool
    events: list[AuditEntry]


class ItemView(BaseModel):
    media_id: str
    status: str
    action: str | None = None
    risk: float | None = None
    signals: list[SignalView] = []
    policy_version: str | None = None
    provenance: dict[str, Any] | None = None
    matches: list[MatchView] = []
    # The uploader's counters (uploads, flags, strikes), not their id: a reviewer judges
    # the item and the pattern, and the id is personal data the history store keys away.
    uploader_history: dict[str, Any] | None = None
    media: MediaLink | None = None
    task: Task | None = None
    audit: AuditSummary


# --- ports ---------------------------------------------------------------------------------


class TaskStore(Protocol):
    """Review tasks. Every transition is a conditional write; a failed condition raises
    ConflictError (or NotFoundError / ForbiddenError when that is why it failed)."""

    def put_new(self, task: Task) -> bool:
        """Store a new open task; False when the item already has an open one."""

    def get(self, media_id: str) -> Task | None: ...

    def queue(self, lane: Lane, limit: int) -> list[Task]:
        """Open tasks of a lane in priority order: a Query per shard on the queue index, merged."""

    def claim(self, media_id: str, reviewer: str, now: datetime, lease_until: datetime, *, senior: bool) -> Task:
        """Open and unclaimed, or the lease ran out, or already the reviewer's."""

    def decide(self, media_id: str, reviewer: str, action: str, reason_code: str, note: str | None,
               now: datetime, *, senior: bool) -> Task:
        """Claimed by ``reviewer`` -> decided; the task leaves the queue index."""

    def undo_decide(self, media_id: str, reviewer: str) -> None:
        """Back to the reviewer's claim after enforcement failed."""

    def escalate(self, media_id: str, by: str, now: datetime, *, reviewer: str | None) -> Task:
        """To the escalated lane, claim dropped: by the claiming ``reviewer``, or (reviewer
        None) by the SLA sweep, conditional on the task still being open and overdue."""

    def overdue(self, lane: Lane, now: datetime) -> list[str]:
        """Ids of open tasks of a lane whose deadline is before ``now`` (a Query on the due index)."""


class AppealStore(Protocol):
    def create(self, appeal: Appeal) -> None:
        """Conditional on the id being new; ConflictError otherwise."""

    def get(self, appeal_id: str) -> Appeal | None: ...

    def list(self, state: AppealState, limit: int) -> list[Appeal]: ...

    def close(self, appeal_id: str, outcome: str, reason_code: str, note: str | None, handled_by: str,
              now: datetime) -> Appeal:
        """open -> decided, conditional on still being open; ConflictError otherwise."""

    def reopen(self, appeal_id: str) -> None: ...


class UrlSigner(Protocol):
    def presign_get(self, bucket: str, key: str, expires_in: int) -> str: ...


class Enforcer(Protocol):
    """``mediaguard.decisions.enforcement`` satisfies this as a module."""

    def apply(self, media_id: str, action: str, *, actor: str, reason: str, context: dict, deps: Deps) -> Any: ...

    def restore(self, media_id: str, *, actor: str, reason: str, deps: Deps) -> Any: ...


# --- where the upload came from ---------------------------------------------------------------

def upload_facts(media_id: str, deps: Deps, item: dict[str, Any] | None = None) -> tuple[str | None, int | None]:
    """``(uploader_of, upload_reach)`` from one read of the upload's grant chain."""
    facts = grant.read_facts(media_id, deps.items.audit_chain)
    uploader = str(item["uploader"]) if item and item.get("uploader") else facts.uploader
    return uploader, facts.reach


def uploader_of(media_id: str, deps: Deps, item: dict[str, Any] | None = None) -> str | None:
    """The JWT subject the upload was granted to.

    An ``uploader`` attribute on the item wins when the pipeline records one; otherwise
    the grant in the upload's own audit chain (``upload:{media_id}``) says who received
    the presigned POST for this key, and that chain is tamper-evident.
    """
    if item and item.get("uploader"):
        return str(item["uploader"])
    return upload_facts(media_id, deps)[0]


def upload_reach(media_id: str, deps: Deps) -> int | None:
    """The reach the platform declared with the upload request, if it declared one."""
    return upload_facts(media_id, deps)[1]


# --- the service ----------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class TaskQueue:
    """The pipeline's side of the queue (``ports.ReviewQueue``): one conditional write and
    an audit record per item; the execution then ends, nothing waits for a person."""

    tasks: TaskStore
    items: Any  # ports.ItemStore: only append_audit is used
    settings: ReviewSettings
    clock: Callable[[], datetime] = field(default=_utcnow)

    def enqueue(self, media_id: str, risk: float, reach: int | None, reason: str, *,
                action: str = "review") -> Task:
        """Queue an item for human review. A repeated call while the task is open (a retried
        stage) is a no-op; after a decision, a new call (a rescan) opens a new review.

        Example: ``enqueue("m1", risk=0.92, reach=15_000, reason="policy:review")`` puts
        the item in the fast lane (0.92 >= 0.9) with priority 0.92 x (1 + log10 15,001)
        = 4.76, due one hour from now.
        """
        now = self.clock()
        lane = lane_for(risk, self.settings)
        task = Task(media_id=media_id, risk=risk, reach=max(reach or 0, 0), priority=priority(risk, reach),
                    lane=lane, state="queued", due_at=now + self.settings.sla(lane), enqueued_at=now,
                    reason=reason, action=action)
        if not self.tasks.put_new(task):
            existing = self.tasks.get(media_id)
            logger.info("review task exists", extra={"media_id": media_id})
            return existing or task
        self.items.append_audit(media_id, "system:review", "review_enqueued",
                                {"lane": lane, "risk": risk, "reach": task.reach, "priority": task.priority,
                                 "due_at": task.due_at.isoformat(), "reason": reason})
        logger.info("review enqueued", extra={"media_id": media_id, "lane": lane, "priority": task.priority})
        return task

    # -- SLA ------------------------------------------------------------------------------
    def escalate_overdue(self) -> list[str]:
        """Move every open fast/normal task past its deadline to the escalated lane.

        Each move is conditional on the task still being open in its lane and overdue, so
        a decision that lands meanwhile wins and two SLA runs never escalate twice. A
        reviewer's running claim is dropped: the deadline has passed, seniors take over.
        """
        now = self.clock()
        moved = []
        for lane in ("fast", "normal"):
            for media_id in self.tasks.overdue(lane, now):
                try:
                    task = self.tasks.escalate(media_id, "system:sla", now, reviewer=None)
                except ConflictError:
                    continue  # decided or escalated since the index was read
                self.items.append_audit(media_id, "system:sla", "review_escalated",
                                        {"by": "sla", "from_lane": lane, "due_at": task.due_at.isoformat(),
                                         "priority": task.priority})
                moved.append(media_id)
        logger.info("sla sweep", extra={"escalated": len(moved)})
        return moved


@dataclass
class ReviewService:
    """Everything the review API does, over ports; ``mediaguard.api.review`` is its HTTP face."""

    deps: Deps
    tasks: TaskStore
    appeals: AppealStore
    signer: UrlSigner
    enforcer: Enforcer
    settings: ReviewSettings
    history: HistoryStore | None = None
    clock: Callable[[], datetime] = field(default=_utcnow)

    # -- queue --------------------------------------------------------------------------
    def queue(self, caller: Caller, lane: Lane, limit: int) -> QueuePage:
        """Open tasks of one lane, highest priority first (senior reviewers only for escalated)."""
        caller.require("senior-reviewer" if lane == "escalated" else "reviewer")
        return QueuePage(items=self.tasks.queue(lane, limit))

    def claim(self, caller: Caller, media_id: str) -> Task:
        """Take (or renew) the lease on a task; 409 while another reviewer's lease runs."""
        caller.require("reviewer")
        task = self._task(media_id)
        if task.lane == "escalated" and not caller.senior:
            raise ForbiddenError("escalated tasks are for senior reviewers", reason="escalated")
        now = self.clock()
        claimed = self.tasks.claim(media_id, caller.sub, now, now + timedelta(minutes=self.settings.lease_minutes),
                                   senior=caller.senior)
        logger.info("review claimed", extra={"media_id": media_id, "lane": claimed.lane})
        return claimed

    def _task(self, media_id: str) -> Task:
        task = self.tasks.get(media_id)
        if task is None:
            raise NotFoundError("no review task for this item")
        return task

    # -- decisions ----------------------------------------------------------------------
    def decide(self, caller: Caller, media_id: str, request: DecisionRequest) -> Decision:
        """Apply a reviewer's decision to a task the caller has claimed.

        The task is marked decided first, with a write conditional on the caller's claim:
        that write is the single point where one decision wins. Enforcement follows; if
        it fails, the task goes back to the caller's claim so the decision can be retried.
        """
        caller.require("reviewer")
        task = self._task(media_id)
        if task.lane == "escalated" and not caller.senior:
            raise ForbiddenError("escalated tasks are for senior reviewers", reason="escalated")
        if task.state == "decided":
            raise ConflictError("this task is already decided", reason="already_decided")
        if task.claimed_by != caller.sub:
            raise ConflictError("claim the task before deciding it", reason="not_claimed")
        reason = request.reason_code.value
        now = self.clock()
        if request.action == "escalate":
            escalated = self.tasks.escalate(media_id, caller.actor, now, reviewer=caller.sub)
            self.deps.items.append_audit(media_id, caller.actor, "review_escalated",
                                         {"by": "reviewer", "reason_code": reason, "note": request.note,
                                          "priority": escalated.priority})
            return Decision(media_id=media_id, action="escalate", enforced_action=None, reason_code=reason,
                            note=request.note, decided_by=caller.sub, decided_at=now, lane="escalated")
        enforced = ENFORCED_ACTION[request.action]
        decided = self.tasks.decide(media_id, caller.sub, request.action, reason, request.note, now,
                                    senior=caller.senior)
        try:
            self.enforcer.apply(media_id, enforced, actor=caller.actor, reason=reason,
                                context={"source": "review", "review_action": request.action, "lane": decided.lane,
                                         "note": request.note},
                                deps=self.deps)
        except Exception:
            self.tasks.undo_decide(media_id, caller.sub)
            raise
        strike = self._count_decision(media_id, enforced, reason)
        self.deps.items.append_audit(media_id, caller.actor, "review_decided",
                                     {"action": request.action, "enforced_action": enforced, "reason_code": reason,
                                      "note": request.note, "lane": decided.lane, "risk": decided.risk,
                                      "waited_s": round((now - decided.enqueued_at).total_seconds()),
                                      "strike": strike})
        logger.info("review decided", extra={"media_id": media_id, "action": request.action, "reason_code": reason})
        return Decision(media_id=media_id, action=request.action, enforced_action=enforced, reason_code=reason,
                        note=request.note, decided_by=caller.sub, decided_at=now, lane=decided.lane)

    def _count_decision(self, media_id: str, action: str, reason: str) -> bool:
        """Count the decision in the uploader's history; a removal by a person is a strike
        (one per item: the store ignores repeats), which an overturned appeal withdraws."""
        uploader = uploader_of(media_id, self.deps) if self.history is not None else None
        if uploader is None:
            return False
        self.history.record_outcome(uploader, media_id, action, [])
        return action == "remove" and self.history.add_strike(uploader, media_id, reason)

    # -- items -----------------------------------------------------------------------------
    def item_view(self, caller: Caller, media_id: str) -> ItemView:
        """What a reviewer needs to decide: scores and their reasons, matches, provenance,
        the uploader's history, a 5-minute link to the sanitized copy, the audit trail."""
        caller.require("reviewer")
        item = self.deps.items.get(media_id)
        if item is None:
            raise NotFoundError("no such item")
        uploader = uploader_of(media_id, self.deps, item)
        media = self._media_link(caller, media_id, item)
        records = self.deps.items.audit_chain(media_id)
        history = self.history.snapshot(uploader).model_dump() if (self.history and uploader) else None
        return ItemView(
            media_id=media_id,
            status=item.get("status", "unknown"),
            action=item.get("action"),
            risk=item.get("risk"),
            signals=[SignalView.model_validate(s) for s in item.get("signals") or []],
            policy_version=item.get("policy_version"),
            provenance=item.get("provenance"),
            matches=[MatchView.model_validate(m) for m in item.get("matches") or []],
            uploader_history=history,
            media=media,
            task=self.tasks.get(media_id),
            audit=AuditSummary(records=len(records), verified=not audit.verify(records),
                               events=[AuditEntry(seq=r.seq, at=r.at, actor=r.actor, event=r.event)
                                       for r in records]),
        )

    def _media_link(self, caller: Caller, media_id: str, item: dict[str, Any]) -> MediaLink | None:
        """A 5-minute link to the sanitized copy, never the original; every link is audited.

        After a removal the sanitized copy lives only in the evidence store. Senior
        reviewers, who decide appeals, get a link to that preserved sanitized copy (the
        evidence store's original stays out of reach); other reviewers get no link.
        """
        settings, ttl = self.deps.settings, self.settings.media_url_ttl_seconds
        enforcement = item.get("enforcement") or {}
        bucket, key, source = settings.media_bucket, item.get("sanitized_key"), "live"
        if enforcement.get("custody") in ("preserved", "evidence"):
            preserved = next((e for e in enforcement.get("evidence", [])
                              if e.get("role") == "sanitized" and e.get("state") == "preserved"), None)
            if preserved is None or not caller.senior:
                return None
            bucket, key, source = settings.evidence_bucket, preserved["evidence_key"], "evidence"
        if not bucket or not key:
            return None
        url = self.signer.presign_get(bucket, key, ttl)
        self.deps.items.append_audit(media_id, caller.actor, "media_viewed",
                                     {"key": key, "source": source, "expires_in": ttl})
        return MediaLink(url=url, expires_in=ttl, source=source)

    # -- appeals ------------------------------------------------------------------------------
    def open_appeal(self, caller: Caller, media_id: str, request: AppealRequest) -> AppealReceipt:
        """The uploader appeals the restrictive action in force on their item (once).

        Anyone but the uploader gets 404, so the route does not confirm which ids exist.
        """
        item = self.deps.items.get(media_id)
        if item is None or uploader_of(media_id, self.deps, item) != caller.sub:
            raise NotFoundError("no such item of yours")
        task = self.tasks.get(media_id)
        if item.get("action") == "review" or (task is not None and task.state != "decided"):
            raise ConflictError("this item is still in review", reason="review_pending")
        if item.get("action") not in APPEALABLE_ACTIONS:
            raise ConflictError("nothing restricts this item", reason="nothing_to_appeal")
        decided_by_human = task is not None and task.state == "decided" and task.decided_by
        appeal = Appeal(
            appeal_id=appeal_id_for(media_id), media_id=media_id, uploader=caller.sub, statement=request.statement,
            state="open", created_at=self.clock(), appealed_action=item["action"],
            original_decider=task.decided_by if decided_by_human else "system",
        )
        self.appeals.create(appeal)
        self.deps.items.append_audit(
            media_id, grant.client_actor(caller.sub), "appeal_opened",
            # The statement is the uploader's own words: the chain keeps its hash, the
            # appeals table its text.
            {"appeal_id": appeal.appeal_id, "appealed_action": appeal.appealed_action,
             "statement_sha256": hashlib.sha256(request.statement.encode()).hexdigest(),
             "statement_chars": len(request.statement)},
        )
        logger.info("appeal opened", extra={"media_id": media_id, "appeal_id": appeal.appeal_id})
        return AppealReceipt(appeal_id=appeal.appeal_id, media_id=media_id, state=appeal.state,
                             created_at=appeal.created_at)

    def list_appeals(self, caller: Caller, state: AppealState, limit: int) -> AppealPage:
        caller.require("senior-reviewer")
        return AppealPage(items=[AppealView.model_validate(a.model_dump()) for a in self.appeals.list(state, limit)])

    def decide_appeal(self, caller: Caller, appeal_id: str, request: AppealDecisionRequest) -> AppealView:
        """Uphold or overturn, by a senior reviewer other than the original decider and the uploader.

        Closing the appeal is conditional on it being open (one outcome wins); an overturn
        then restores the item and removes the uploader's strike. If restoring fails the
        appeal is reopened.
        """
        caller.require("senior-reviewer")
        appeal = self.appeals.get(appeal_id)
        if appeal is None:
            raise NotFoundError("no such appeal")
        if caller.sub == appeal.original_decider:
            raise ForbiddenError("a different reviewer must decide an appeal against your decision",
                                 reason="own_decision")
        if caller.sub == appeal.uploader:
            raise ForbiddenError("you cannot decide an appeal of your own upload", reason="own_upload")
        if appeal.state != "open":
            raise ConflictError("this appeal is already decided", reason="appeal_closed")
        reason = request.reason_code.value
        closed = self.appeals.close(appeal_id, request.outcome, reason, request.note, caller.sub, self.clock())
        strike_removed = False
        if request.outcome == "overturn":
            try:
                self.enforcer.restore(appeal.media_id, actor=caller.actor, reason=reason, deps=self.deps)
            except Exception:
                self.appeals.reopen(appeal_id)
                raise
            if self.history is not None:
                strike_removed = self.history.remove_strike(appeal.uploader, appeal.media_id)
        self.deps.items.append_audit(appeal.media_id, caller.actor, "appeal_decided",
                                     {"appeal_id": appeal_id, "outcome": request.outcome, "reason_code": reason,
                                      "note": request.note, "appealed_action": appeal.appealed_action,
                                      "strike_removed": strike_removed})
        logger.info("appeal decided", extra={"media_id": appeal.media_id, "appeal_id": appeal_id,
                                             "outcome": request.outcome})
        return AppealView.model_validate(closed.model_dump())


def appeal_id_for(media_id: str) -> str:
    """One appeal per item: the id is derived from the item, so the store's conditional
    create is what refuses a second appeal."""
    return f"ap-{media_id}"


def reason_table(reasons: dict[str, tuple[str, Iterable[str]]]) -> list[dict[str, Any]]:
    """The documented reason codes, for the console and the README."""
    return [{"code": code, "description": text, "actions": sorted(actions)}
            for code, (text, actions) in reasons.items()]
