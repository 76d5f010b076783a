"""DynamoDB review tasks and appeals, S3 presigned GETs, and the review service factory.

Review table (``REVIEW_TABLE``), one task per item, key ``media_id``:

* GSI ``queue``: ``queue_pk`` = ``{lane}#{shard}``, ``queue_sk`` = inverted zero-padded
  priority + enqueue time + id. Sparse: ``queue_pk`` exists only while the task is open,
  so decided tasks leave the index and the listing is one Query per shard, never a Scan.
* GSI ``due``: ``queue_pk`` + ``due_at`` (keys only), what the SLA sweep queries with
  ``due_at < now``. Escalated tasks sit in ``escalated#n`` partitions the sweep never reads.

Hot partitions: at human-review volumes (an open task is written a handful of times in
its life) one partition per lane would do; the ``queue_shards`` spread (default 4, hash
of the id) costs one extra Query per shard on a listing and keeps a bulk enqueue (a bank
update re-flagging thousands of items) from throttling on one GSI partition.

Appeals table (``APPEALS_TABLE``), key ``appeal_id``; GSI ``by_state`` (``state``,
``created_at``) lists open appeals oldest first.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from mediaguard.adapters.geofence import DynamoGeofence
from mediaguard.adapters.history import DynamoHistory
from mediaguard.adapters.secrets import uploader_pseudonymiser
from mediaguard.api.review import GeofenceAdmin
from mediaguard.decisions.history import HistoryStore, Pseudonymiser
from mediaguard.decisions.review.appeals import Appeal, AppealState
from mediaguard.decisions.review.models import QA_REASON, Lane, Task
from mediaguard.decisions.review.queue import TaskQueue, queue_partition, queue_sort_key, shard_of
from mediaguard.decisions.review.settings import ReviewSettings, get_review_settings
from mediaguard.errors import ConflictError, ForbiddenError, NotFoundError
from mediaguard.settings import Settings

_CONDITION_FAILED = "ConditionalCheckFailedException"


class QueueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "queue"
        projection = AllProjection()

    queue_pk = UnicodeAttribute(hash_key=True)
    queue_sk = UnicodeAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "due"
        projection = KeysOnlyProjection()

    queue_pk = UnicodeAttribute(hash_key=True)
    due_at = UTCDateTimeAttribute(range_key=True)


class ReviewTaskItem(Model):
    class Meta:
        table_name = "mediaguard-review"
        billing_mode = "PAY_PER_REQUEST"

    media_id = UnicodeAttribute(hash_key=True)
    state = UnicodeAttribute()  # queued | claimed | decided
    lane = UnicodeAttribute()  # fast | normal | escalated
    shard = NumberAttribute()
    risk = NumberAttribute()
    reach = NumberAttribute()
    priority = NumberAttribute()
    reason = UnicodeAttribute()
    action = UnicodeAttribute(null=True)
    enqueued_at = UTCDateTimeAttribute()
    due_at = UTCDateTimeAttribute()
    queue_pk = UnicodeAttribute(null=True)  # removed when decided: the task leaves both indexes
    queue_sk = UnicodeAttribute()
    escalated = BooleanAttribute(default=False)
    escalated_at = UTCDateTimeAttribute(null=True)
    escalated_by = UnicodeAttribute(null=True)
    claimed_by = UnicodeAttribute(null=True)
    lease_until = UTCDateTimeAttribute(null=True)
    decided_by = UnicodeAttribute(null=True)
    decided_at = UTCDateTimeAttribute(null=True)
    decision_action = UnicodeAttribute(null=True)
    decision_reason = UnicodeAttribute(null=True)
    decision_note = UnicodeAttribute(null=True)
    agree = BooleanAttribute(null=True)  # quality samples only

    queue_index = QueueIndex()
    due_index = DueIndex()


class AppealStateIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_state"
        projection = AllProjection()

    state = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class AppealItem(Model):
    class Meta:
        table_name = "mediaguard-appeals"
        billing_mode = "PAY_PER_REQUEST"

    appeal_id = UnicodeAttribute(hash_key=True)
    media_id = UnicodeAttribute()
    uploader = UnicodeAttribute()
    statement = UnicodeAttribute()
    state = UnicodeAttribute()  # open | decided
    created_at = UTCDateTimeAttribute()
    appealed_action = UnicodeAttribute()
    original_decider = UnicodeAttribute()
    outcome = UnicodeAttribute(null=True)
    reason_code = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    handled_by = UnicodeAttribute(null=True)
    handled_at = UTCDateTimeAttribute(null=True)

    by_state = AppealStateIndex()


MODELS: dict[str, type[Model]] = {"review_table": ReviewTaskItem, "appeals_table": AppealItem}


def bind(review_settings: ReviewSettings, settings: Settings) -> None:
    """Point the review models at the configured tables and region (resetting pynamodb's
    cached connection, which reads Meta once)."""
    for name, model in MODELS.items():
        table = getattr(review_settings, name)
        if table:
            model.Meta.table_name = table
        model.Meta.region = settings.region
        model._connection = None


def _failed_condition(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == _CONDITION_FAILED


def _task(row: ReviewTaskItem) -> Task:
    values = dict(row.attribute_values)
    values.pop("queue_pk", None)
    values.pop("queue_sk", None)
    values.pop("shard", None)
    values.pop("escalated_at", None)
    values.pop("escalated_by", None)
    values["reach"] = int(values["reach"])
    return Task.model_validate(values)


class DynamoTaskStore:
    """``TaskStore`` on the review table; every transition a conditional UpdateItem."""

    def __init__(self, review_settings: ReviewSettings, settings: Settings) -> None:
        bind(review_settings, settings)
        self.shards = review_settings.queue_shards

    def put_new(self, task: Task) -> bool:
        # A decided task may be replaced: a rescan can send the item back to people.
        return self._put(task, ReviewTaskItem.media_id.does_not_exist() | (ReviewTaskItem.state == "decided"))

    def replace_sample(self, task: Task) -> bool:
        # Only an open quality sample gives way; a real review is never overwritten.
        return self._put(task, ReviewTaskItem.reason == QA_REASON)

    def _put(self, task: Task, condition: Any) -> bool:
        shard = shard_of(task.media_id, self.shards)
        row = ReviewTaskItem(
            task.media_id, state=task.state, lane=task.lane, shard=shard, risk=task.risk, reach=task.reach,
            priority=task.priority, reason=task.reason, action=task.action, enqueued_at=task.enqueued_at,
            due_at=task.due_at, queue_pk=queue_partition(task.lane, shard),
            queue_sk=queue_sort_key(task.priority, task.enqueued_at, task.media_id),
        )
        try:
            row.save(condition=condition)
        except PutError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def get(self, media_id: str) -> Task | None:
        row = self._row(media_id)
        return _task(row) if row else None

    def _row(self, media_id: str) -> ReviewTaskItem | None:
        try:
            return ReviewTaskItem.get(media_id, consistent_read=True)
        except ReviewTaskItem.DoesNotExist:
            return None

    def queue(self, lane: Lane, limit: int) -> list[Task]:
        per_shard = [
            ReviewTaskItem.queue_index.query(queue_partition(lane, shard), limit=limit)
            for shard in range(self.shards)
        ]
        merged = heapq.merge(*per_shard, key=lambda row: row.queue_sk)
        return [_task(row) for _, row in zip(range(limit), merged, strict=False)]

    def claim(self, media_id: str, reviewer: str, now: datetime, lease_until: datetime, *, senior: bool) -> Task:
        T = ReviewTaskItem
        condition = (T.media_id.exists() & (T.state != "decided")
                     & ((T.state == "queued") | (T.claimed_by == reviewer) | (T.lease_until < now)))
        if not senior:
            condition &= T.lane != "escalated"
        row = T(media_id)
        try:
            row.update(actions=[T.state.set("claimed"), T.claimed_by.set(reviewer), T.lease_until.set(lease_until)],
                       condition=condition)
        except UpdateError as exc:
            if _failed_condition(exc):
                raise self._why(media_id, senior, "another reviewer holds this task") from None
            raise
        return _task(row)

    def _why(self, media_id: str, senior: bool, otherwise: str) -> Exception:
        """The error a failed condition stands for, read back after the fact."""
        current = self._row(media_id)
        if current is None:
            return NotFoundError("no review task for this item")
        if current.state == "decided":
            return ConflictError("this task is already decided", reason="already_decided")
        if current.lane == "escalated" and not senior:
            return ForbiddenError("escalated tasks are for senior reviewers", reason="escalated")
        return ConflictError(otherwise, reason="claimed")

    def decide(self, media_id: str, reviewer: str, action: str, reason_code: str, note: str | None,
               now: datetime, *, senior: bool, agree: bool | None = None) -> Task:
        T = ReviewTaskItem
        condition = (T.state == "claimed") & (T.claimed_by == reviewer)
        if not senior:
            condition &= T.lane != "escalated"
        row = T(media_id)
        try:
            row.update(
                actions=[T.state.set("decided"), T.queue_pk.remove(), T.lease_until.remove(),
                         T.decided_by.set(reviewer), T.decided_at.set(now), T.decision_action.set(action),
                         T.decision_reason.set(reason_code),
                         T.decision_note.set(note) if note else T.decision_note.remove(),
                         T.agree.set(agree) if agree is not None else T.agree.remove()],
                condition=condition,
            )
        except UpdateError as exc:
            if _failed_condition(exc):
                raise self._why(media_id, senior, "your claim on this task has passed to someone else") from None
            raise
        return _task(row)

    def undo_decide(self, media_id: str, reviewer: str) -> None:
        T = ReviewTaskItem
        current = self._row(media_id)
        if current is None:
            return
        T(media_id).update(
            actions=[T.state.set("claimed"), T.queue_pk.set(queue_partition(current.lane, int(current.shard))),
                     T.decided_by.remove(), T.decided_at.remove(), T.decision_action.remove(),
                     T.decision_reason.remove(), T.decision_note.remove(), T.agree.remove()],
            condition=(T.state == "decided") & (T.decided_by == reviewer),
        )

    def escalate(self, media_id: str, by: str, now: datetime, *, reviewer: str | None) -> Task:
        T = ReviewTaskItem
        current = self._row(media_id)
        if current is None:
            raise NotFoundError("no review task for this item")
        condition = (T.lane != "escalated") & (T.state != "decided")
        if reviewer is not None:
            condition &= (T.state == "claimed") & (T.claimed_by == reviewer)
        else:
            condition &= T.due_at < now
        row = T(media_id)
        try:
            row.update(
                actions=[T.lane.set("escalated"), T.queue_pk.set(queue_partition("escalated", int(current.shard))),
                         T.state.set("queued"), T.claimed_by.remove(), T.lease_until.remove(),
                         T.escalated.set(True), T.escalated_at.set(now), T.escalated_by.set(by)],
                condition=condition,
            )
        except UpdateError as exc:
            if _failed_condition(exc):
                raise ConflictError("the task is decided, escalated or no longer yours",
                                    reason="not_escalatable") from None
            raise
        return _task(row)

    def withdraw(self, media_id: str, by: str, now: datetime, *, reason_prefix: str) -> bool:
        T = ReviewTaskItem
        try:
            T(media_id).update(
                actions=[T.state.set("decided"), T.queue_pk.remove(), T.lease_until.remove(),
                         T.decided_by.set(by), T.decided_at.set(now), T.decision_action.set("withdrawn"),
                         T.decision_reason.set("redriven")],
                # A claimed task stays: the reviewer holding it sees the re-drive on the chain.
                condition=(T.state == "queued") & T.reason.startswith(reason_prefix))
        except UpdateError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def overdue(self, lane: Lane, now: datetime) -> list[str]:
        return [row.media_id
                for shard in range(self.shards)
                for row in ReviewTaskItem.due_index.query(queue_partition(lane, shard),
                                                           range_key_condition=ReviewTaskItem.due_at < now)]

    def open_since(self, lane: Lane) -> list[datetime]:
        # The queue index holds open tasks only; one Query per shard, two attributes read.
        return [row.enqueued_at
                for shard in range(self.shards)
                for row in ReviewTaskItem.queue_index.query(queue_partition(lane, shard),
                                                             attributes_to_get=["media_id", "enqueued_at"])]

    def decided_samples(self, start: datetime, end: datetime) -> list[Task]:
        # A Scan: a report's read over history (run by an operator, not per upload); decided
        # tasks have left both indexes, and a reporting index is not worth its writes yet.
        T = ReviewTaskItem
        condition = (T.reason == QA_REASON) & (T.state == "decided") & T.decided_at.between(start, end)
        return [_task(row) for row in T.scan(condition) if row.decided_at < end]


def _appeal(row: AppealItem) -> Appeal:
    return Appeal.model_validate(row.attribute_values)


class DynamoAppealStore:
    """``AppealStore`` on the appeals table."""

    def __init__(self, review_settings: ReviewSettings, settings: Settings) -> None:
        bind(review_settings, settings)

    def create(self, appeal: Appeal) -> None:
        try:
            AppealItem(**appeal.model_dump(exclude_none=True)).save(condition=AppealItem.appeal_id.does_not_exist())
        except PutError as exc:
            if _failed_condition(exc):
                raise ConflictError("this item has already been appealed", reason="already_appealed") from None
            raise

    def get(self, appeal_id: str) -> Appeal | None:
        try:
            return _appeal(AppealItem.get(appeal_id, consistent_read=True))
        except AppealItem.DoesNotExist:
            return None

    def list(self, state: AppealState, limit: int) -> list[Appeal]:
        return [_appeal(row) for row in AppealItem.by_state.query(state, limit=limit)]

    def close(self, appeal_id: str, outcome: str, reason_code: str, note: str | None, handled_by: str,
              now: datetime) -> Appeal:
        A = AppealItem
        row = A(appeal_id)
        try:
            row.update(actions=[A.state.set("decided"), A.outcome.set(outcome), A.reason_code.set(reason_code),
                                A.note.set(note) if note else A.note.remove(), A.handled_by.set(handled_by),
                                A.handled_at.set(now)],
                       condition=A.state == "open")
        except UpdateError as exc:
            if _failed_condition(exc):
                raise ConflictError("this appeal is already decided", reason="appeal_closed") from None
            raise
        return _appeal(row)

    def reopen(self, appeal_id: str) -> None:
        A = AppealItem
        A(appeal_id).update(actions=[A.state.set("open"), A.outcome.remove(), A.reason_code.remove(), A.note.remove(),
                                     A.handled_by.remove(), A.handled_at.remove()],
                            condition=A.state == "decided")


class S3UrlSigner:
    """Presigned GETs. The URL is a credential: callers hand it to the reviewer and never log it."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def for_region(cls, region: str) -> S3UrlSigner:
        # SigV4 explicitly: botocore may presign with SigV2, which S3 has deprecated and
        # newer regions refuse.
        return cls(boto3.client("s3", region_name=region, config=Config(signature_version="s3v4")))

    def presign_get(self, bucket: str, key: str, expires_in: int) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                  ExpiresIn=expires_in)


# --- composition -------------------------------------------------------------------------------


def make_task_queue(settings: Settings, items: Any) -> TaskQueue:
    """The queue enforcement enqueues into and the SLA sweep escalates, over ``items``."""
    review_settings = get_review_settings()
    return TaskQueue(DynamoTaskStore(review_settings, settings), items, review_settings)


def history_store(settings: Settings, pseudonymiser: Pseudonymiser | None = None) -> HistoryStore | None:
    """The uploader history when its table and key are configured; review works without it
    (no history in the item view, no strikes). ``pseudonymiser``: the caller's cached one
    (``mediaguard.wiring``); else it is built from the settings (one secret read)."""
    if not settings.history_table:
        return None
    pseudonymiser = pseudonymiser or uploader_pseudonymiser(settings)
    if pseudonymiser is None:
        return None
    retention = timedelta(days=settings.history_retention_days) if settings.history_retention_days else None
    return DynamoHistory(settings.history_table, settings.region, pseudonymiser, totals_retention=retention)


def make_geofence_admin(settings: Settings, pseudonymiser: Pseudonymiser | None = None) -> GeofenceAdmin:
    """The geofence table for the admin routes; uploader scopes need the uploader key."""
    return GeofenceAdmin(store=DynamoGeofence(settings), pseudonymiser=pseudonymiser or uploader_pseudonymiser(settings))
