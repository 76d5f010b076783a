"""The queue: priority, lanes and sort keys, and the pipeline's side of it (``TaskQueue``:
enqueue, and the SLA sweep that escalates overdue tasks)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from mediaguard import observability
from mediaguard.decisions.review.models import QA_REASON, Lane, Task, utcnow
from mediaguard.decisions.review.ports import TaskStore
from mediaguard.decisions.review.settings import ReviewSettings
from mediaguard.errors import ConflictError

logger = Logger(service="mediaguard", child=True)

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


def qa_sampled(media_id: str, rate: float) -> bool:
    """Whether quality sampling picks this item: a hash of its id, not a coin toss, so a
    re-driven or retried run picks the same items (never a second sample of one item).
    Salted, so the sample does not line up with the queue shards (also a hash of the id).

    >>> qa_sampled("any-id", 1.0), qa_sampled("any-id", 0.0)
    (True, False)
    """
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"qa-sample:{media_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass(frozen=True)
class LaneLevel:
    """What the SLA sweep reports per lane: open tasks and how long the oldest has waited."""

    lane: Lane
    depth: int
    oldest_age_s: float


def queue_partition(lane: Lane, shard: int) -> str:
    return f"{lane}#{shard}"


def queue_sort_key(prio: float, enqueued_at: datetime, media_id: str) -> str:
    """Ascending order = highest priority first, then oldest first.

    Priority is inverted and zero-padded so string order is numeric order:
    ``10^8 - priority x 10^6`` (priority <= 10, so 9 digits always suffice).
    """
    inverted = 10**8 - round(prio * PRIORITY_UNITS)
    return f"{inverted:09d}#{enqueued_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{media_id}"


@dataclass
class TaskQueue:
    """The pipeline's side of the queue (``ports.ReviewQueue``): one conditional write and
    an audit record per item; the execution then ends, nothing waits for a person."""

    tasks: TaskStore
    items: Any  # ports.ItemStore: only append_audit is used
    settings: ReviewSettings
    clock: Callable[[], datetime] = field(default=utcnow)

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
            # An open quality sample must never hold back a real review: it gives way
            # (conditionally, so an open real review is still never overwritten).
            if not self.tasks.replace_sample(task):
                existing = self.tasks.get(media_id)
                logger.info("review task exists", extra={"media_id": media_id})
                return existing or task
            self.items.append_audit(media_id, "system:qa", "qa_superseded", {"by_reason": reason})
        self.items.append_audit(media_id, "system:review", "review_enqueued",
                                {"lane": lane, "risk": risk, "reach": task.reach, "priority": task.priority,
                                 "due_at": task.due_at.isoformat(), "reason": reason})
        logger.info("review enqueued", extra={"media_id": media_id, "lane": lane, "priority": task.priority})
        return task

    def sample_for_qa(self, media_id: str, automated_action: str) -> Task | None:
        """Queue a quality sample of an automated decision, if sampling picks the item.

        Items sent to ``review`` already reach people and are never sampled. The task keeps
        the automated action (to score agreement) but its risk and priority are 0: the QA
        lane is worked oldest first, and nothing on the task may hint at the decision.
        """
        if automated_action == "review" or not qa_sampled(media_id, self.settings.qa_sample_rate):
            return None
        now = self.clock()
        task = Task(media_id=media_id, risk=0.0, reach=0, priority=0.0, lane="qa", state="queued",
                    due_at=now + self.settings.sla("qa"), enqueued_at=now, reason=QA_REASON, action=automated_action)
        if not self.tasks.put_new(task):
            return self.tasks.get(media_id)  # a retried stage: sampled once already
        # The chain names the sample, not the decision it audits (that is on the chain already).
        self.items.append_audit(media_id, "system:qa", "qa_sampled", {"lane": "qa", "rate": self.settings.qa_sample_rate})
        observability.count("QaSampled", action=automated_action)
        logger.info("quality sample queued", extra={"media_id": media_id})
        return task

    def levels(self) -> list[LaneLevel]:
        """Depth and oldest wait of every lane (the SLA function emits them each run)."""
        now = self.clock()
        levels = []
        for lane in ("fast", "normal", "escalated", "qa"):
            enqueued = self.tasks.open_since(lane)
            oldest = (now - min(enqueued)).total_seconds() if enqueued else 0.0
            levels.append(LaneLevel(lane, len(enqueued), max(oldest, 0.0)))
        return levels

    def withdraw_failure(self, media_id: str, actor: str, run: str) -> bool:
        """Close the ``failed:...`` task of a run a re-drive replaces: the new run decides
        again (and queues a new task if it fails too), so the old one must not linger."""
        if not self.tasks.withdraw(media_id, actor, self.clock(), reason_prefix="failed:"):
            return False
        self.items.append_audit(media_id, actor, "review_withdrawn", {"reason": "redriven", "run": run})
        logger.info("review task withdrawn", extra={"media_id": media_id})
        return True

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
