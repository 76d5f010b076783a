"""What the review service writes through: the task and appeal stores, the URL signer
and the enforcer. ``mediaguard.adapters.review`` implements the stores on DynamoDB."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from mediaguard.decisions.review.appeals import Appeal, AppealState
from mediaguard.decisions.review.models import Lane, Task
from mediaguard.ports import Deps


class TaskStore(Protocol):
    """Review tasks. Every transition is a conditional write; a failed condition raises
    ConflictError (or NotFoundError / ForbiddenError when that is why it failed)."""

    def put_new(self, task: Task) -> bool:
        """Store a new open task; False when the item already has an open one."""

    def replace_sample(self, task: Task) -> bool:
        """Store ``task`` over the item's open quality sample (conditional on the stored
        task being one); False when the item's open task is a real review."""

    def get(self, media_id: str) -> Task | None: ...

    def queue(self, lane: Lane, limit: int) -> list[Task]:
        """Open tasks of a lane in priority order: a Query per shard on the queue index, merged."""

    def claim(self, media_id: str, reviewer: str, now: datetime, lease_until: datetime, *, senior: bool) -> Task:
        """Open and unclaimed, or the lease ran out, or already the reviewer's."""

    def decide(self, media_id: str, reviewer: str, action: str, reason_code: str, note: str | None,
               now: datetime, *, senior: bool, agree: bool | None = None) -> Task:
        """Claimed by ``reviewer`` -> decided; the task leaves the queue index. ``agree``:
        a quality sample's agreement with the automated action, stored on the task."""

    def undo_decide(self, media_id: str, reviewer: str) -> None:
        """Back to the reviewer's claim after enforcement failed."""

    def escalate(self, media_id: str, by: str, now: datetime, *, reviewer: str | None) -> Task:
        """To the escalated lane, claim dropped: by the claiming ``reviewer``, or (reviewer
        None) by the SLA sweep, conditional on the task still being open and overdue."""

    def withdraw(self, media_id: str, by: str, now: datetime, *, reason_prefix: str) -> bool:
        """Open, unclaimed and queued for ``reason_prefix...`` -> decided (action
        ``withdrawn``); False when no such task exists (none, claimed or decided)."""

    def overdue(self, lane: Lane, now: datetime) -> list[str]:
        """Ids of open tasks of a lane whose deadline is before ``now`` (a Query on the due index)."""

    def open_since(self, lane: Lane) -> list[datetime]:
        """When each open task of a lane was enqueued (queue depth and age for the metrics)."""

    def decided_samples(self, start: datetime, end: datetime) -> list[Task]:
        """Quality-sample tasks decided in [start, end) (for ``qa_outcomes``)."""


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
