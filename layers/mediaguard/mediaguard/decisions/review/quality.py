"""Quality sampling's read side: the decided samples, as ``mediaguard report`` counts them.

How a sample is made: enforcement (``stages.enforce``) calls ``TaskQueue.sample_for_qa``
after every automated decision other than ``review``; a hash of the media id against
``ReviewSettings.qa_sample_rate`` picks the item (``queue.qa_sampled``). A reviewer then
decides the ``qa`` lane task without seeing the automated action (``Task.blind``,
``ReviewService._blind_view``); the decision stores ``agree`` on the task and a
``qa_decided`` audit record, and enforces nothing unless the reviewer removes.

Stored per decided sample (review table row, key ``media_id``): ``reason = "qa:sample"``,
``action`` (the automated action), ``decision_action`` (the reviewer's, ``approve`` for
allow), ``agree`` (bool), ``decided_at``, ``decided_by``. The audit chain's ``qa_decided``
record holds ``automated_action``, ``reviewer_action`` (as enforced), ``agree``.
"""

from __future__ import annotations

from datetime import datetime

from mediaguard.decisions.review.models import QaOutcome
from mediaguard.decisions.review.ports import TaskStore
from mediaguard.decisions.review.reasons import ENFORCED_ACTION


def qa_outcomes(store: TaskStore, start: datetime, end: datetime) -> list[QaOutcome]:
    """Every quality sample decided in [start, end), oldest first.

    Precision by audit comes from the samples whose automated action restricted the item
    (did the reviewer restrict too?); the recall estimate from the sampled allows (each
    one the reviewer restricted is a miss). Both rates share one sampling rate, so the
    samples are a uniform draw of automated decisions. Example::

        outcomes = qa_outcomes(DynamoTaskStore(get_review_settings(), get_settings()), t0, t1)
        sum(o.agree for o in outcomes) / len(outcomes)
    """
    outcomes = []
    for task in store.decided_samples(start, end):
        if task.decision_action in (None, "escalate", "withdrawn") or task.decided_at is None:
            continue
        reviewer = ENFORCED_ACTION.get(task.decision_action, task.decision_action)
        automated = task.action or "unknown"
        outcomes.append(QaOutcome(media_id=task.media_id, automated_action=automated, reviewer_action=reviewer,
                                  agree=task.agree if task.agree is not None else reviewer == automated,
                                  decided_at=task.decided_at, decided_by=task.decided_by or "unknown"))
    return sorted(outcomes, key=lambda o: o.decided_at)
