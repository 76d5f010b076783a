"""SLA sweep (scheduled): escalate overdue review tasks, then report the queue's levels.

Each run emits ``SlaBreaches`` (tasks escalated because their deadline passed) and, per
lane, ``ReviewQueueDepth`` (open tasks) and ``ReviewQueueOldestAge`` (seconds the oldest
has waited). The sweep runs every few minutes, so these are the queue's gauges without a
separate poller.
"""

from __future__ import annotations

from mediaguard import observability
from mediaguard.decisions.review.queue import TaskQueue


def sla_sweep(queue: TaskQueue) -> dict:
    escalated = queue.escalate_overdue()
    observability.count("SlaBreaches", len(escalated))
    levels = queue.levels()
    for level in levels:
        observability.gauge("ReviewQueueDepth", level.depth, lane=level.lane)
        observability.gauge("ReviewQueueOldestAge", round(level.oldest_age_s), "Seconds", lane=level.lane)
    return {"escalated": len(escalated), "media_ids": escalated,
            "queue": {level.lane: {"depth": level.depth, "oldest_age_s": round(level.oldest_age_s)} for level in levels}}
