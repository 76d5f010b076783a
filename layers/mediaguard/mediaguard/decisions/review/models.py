"""Review tasks, reviewer decisions and the item view, as the queue, the API and the console see them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediaguard.decisions.review.reasons import REVIEW_REASONS, ReviewReason
from mediaguard.signals import REGISTRY, EmbeddingSignal

# "qa": quality sampling (``QA_REASON``), a share of automated decisions a person
# re-decides without seeing the automated one; it has no SLA escalation.
Lane = Literal["fast", "normal", "escalated", "qa"]
TaskState = Literal["queued", "claimed", "decided"]
QA_REASON = "qa:sample"
ReviewAction = Literal["approve", "label", "blur", "limit", "remove", "escalate"]


def utcnow() -> datetime:
    """The default clock of the queue and the service; tests pass their own."""
    return datetime.now(UTC)


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
    # Quality sampling: did the reviewer's action equal the automated one (``action``)?
    agree: bool | None = None
    # Filled by the queue listing from the item (not stored on the task): the signals that
    # contributed and the bank entries matched, so the console can filter by signal and
    # act on every queued match of one banked entry. Never filled for a quality sample.
    signals: list[str] | None = None
    matched: list[str] | None = None  # "bank/ref"

    @property
    def quality_sample(self) -> bool:
        return self.reason == QA_REASON

    def blind(self) -> Task:
        """The task as a quality-sampling reviewer sees it: without the automated action."""
        return self.model_copy(update={"action": None}) if self.quality_sample and self.state != "decided" else self

    def overdue(self, now: datetime) -> bool:
        return self.state != "decided" and self.due_at < now


class QaOutcome(BaseModel):
    """One decided quality sample: the automated action, the reviewer's (as enforced:
    ``approve`` is ``allow``) and whether they agree. ``mediaguard report`` derives
    precision by audit (sampled restrictive actions the reviewer also restricted) and
    recall by audit (sampled allows the reviewer restricted are misses) from these."""

    media_id: str
    automated_action: str
    reviewer_action: str
    agree: bool
    decided_at: datetime
    decided_by: str


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


class ReviewDecision(BaseModel):
    """A reviewer's decision on a task (``mediaguard.decisions.enforcement.Decision`` is what enforcing it did)."""

    media_id: str
    action: ReviewAction
    enforced_action: str | None  # None for escalate
    reason_code: str
    note: str | None = None
    decided_by: str
    decided_at: datetime
    lane: Lane


class SignalView(BaseModel):
    name: str
    value: float
    contribution: float


class MediaLink(BaseModel):
    url: str
    expires_in: int
    # "live": the copy being served; "evidence": the sanitized copy a removal preserved.
    # "sample": an open quality sample's copy, wherever it is kept (the source would tell).
    source: Literal["live", "evidence", "sample"] = "live"


class BankEntryFacts(BaseModel):
    """The matched entry as the bank keeps it: who added and confirmed it, when, from what.
    ``source_media`` links the sanitized copy of the item it was banked from, when this
    platform holds it (an entry added with "add to bank"); banks themselves keep no media."""

    status: str
    source: str | None = None
    added_by: str | None = None
    added_at: str | None = None
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    source_media_id: str | None = None
    source_media: MediaLink | None = None
    # What the linked copy is ("image", "animation", "video", "audio"), so the console shows
    # it with the right element; a video's poster frame, linked as the item view links it.
    source_media_type: str | None = None
    source_poster: MediaLink | None = None


class MatchView(BaseModel):
    """A banked item the upload matched, as a reviewer sees it. Banks hold hashes and
    embeddings, never the banked media (StopNCII practice), so the entry is named by its
    bank and ref. ``similarity`` puts every signal on one 0..1 scale: the cosine for an
    embedding (``embedding``, ``clip``), the share of PDQ's 256 bits that agree for a hash."""

    model_config = ConfigDict(extra="ignore")

    bank: str
    kind: str
    ref: str
    signal: str
    distance: float
    similarity: float | None = None
    frame: int | None = None  # a video's best-matching frame (position in the item's frames.t)
    entry: BankEntryFacts | None = None

    @model_validator(mode="after")
    def _similarity(self) -> MatchView:
        kind = REGISTRY.get(self.signal)
        if kind is not None and issubclass(kind, EmbeddingSignal):
            self.similarity = round(1.0 - self.distance, 4)
        elif self.signal in ("pdq", "pdq_dihedral", "vpdq"):
            self.similarity = round(1.0 - self.distance / 256, 4)
        return self


# Detail fields a reviewer reads in the trail: codes, the reviewer's own note, outcomes.
# Keys, hashes and statements' digests stay out of the console.
AUDIT_DETAIL_KEYS = ("action", "enforced_action", "reason_code", "reason", "note", "outcome", "by", "from_lane",
                     "lane", "appeal_id", "appealed_action", "source", "strike", "due_at")


class AuditEntry(BaseModel):
    seq: int
    at: str
    actor: str
    event: str
    detail: dict[str, Any] = {}


class Escalation(BaseModel):
    """Why a task is in the escalated lane (for the senior reviewers who take it)."""

    by: str  # "sla" (deadline passed) or "reviewer"
    actor: str
    at: str
    reason_code: str | None = None
    note: str | None = None
    from_lane: str | None = None
    due_at: str | None = None


class AuditSummary(BaseModel):
    records: int
    verified: bool
    events: list[AuditEntry]


class ItemView(BaseModel):
    media_id: str
    status: str
    action: str | None = None  # in force: set by enforcement, absent until it applied one
    proposed_action: str | None = None  # what scoring proposed
    risk: float | None = None
    signals: list[SignalView] = []
    policy_version: str | None = None
    provenance: dict[str, Any] | None = None
    matches: list[MatchView] = []
    # The uploader, pseudonymised (the history store's keyed hash, shortened): a reviewer
    # can tell "the same uploader again" without reading personal data.
    uploader_ref: str | None = None
    # The uploader's counters (uploads, flags, strikes) now, and as scoring saw them (the
    # history the automated decision used; window counts are sliding estimates, floats).
    uploader_history: dict[str, Any] | None = None
    scored_history: dict[str, Any] | None = None
    media: MediaLink | None = None
    # image | animation | video | audio: how the console plays ``media``.
    media_type: str | None = None
    # A video's first analysed frame (a still's poster is the still itself); live copies only.
    poster: MediaLink | None = None
    frames: dict[str, Any] | None = None  # {count, method, truncated, duration_s, t: [each frame's time]}
    # A video's frame (position in ``frames.t``) behind each score; bank matches carry theirs.
    signal_frames: dict[str, int] | None = None
    audio: dict[str, Any] | None = None  # the served copy's audio track (codec, duration, fingerprint kind)
    stream_id: str | None = None  # a live segment's item: the stream it came from
    task: Task | None = None
    escalation: Escalation | None = None  # senior reviewers only
    audit: AuditSummary


class RevealReceipt(BaseModel):
    """A recorded reveal: who un-blurred the media, when, and their reveals today."""

    media_id: str
    revealed_by: str
    revealed_at: datetime
    exposures_today: int


class Me(BaseModel):
    """Who the console is signed in as."""

    sub: str
    name: str
    role: str  # the highest of ``roles``
    roles: list[str]
    senior: bool
    admin: bool
    exposures_today: int


class SearchHit(BaseModel):
    """One item found by the console's search (or listed as decided)."""

    media_id: str
    status: str | None = None
    action: str | None = None
    risk: float | None = None
    received_at: str | None = None
    task_state: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_action: str | None = None
    decision_reason: str | None = None


class SearchPage(BaseModel):
    items: list[SearchHit]
    # How the answer was found: "get" (one GetItem), "query" (one audit chain) or "scan"
    # (a Scan of the media table, stopped after ``scanned`` items; ``truncated`` when more
    # remained unexamined).
    method: Literal["get", "query", "scan"]
    scanned: int = 0
    truncated: bool = False
