"""The uploader-history table: atomic counters in DynamoDB, one partition per uploader.

Layout (hash key ``uploader`` = ``Pseudonymiser.key(id)``, range key ``bucket``):

========================  ====================================================  ==================
bucket                    holds                                                 expires (TTL)
========================  ====================================================  ==================
``e#<media_id>``          markers: which facts of this item were counted        7 days
``h#<YYYYMMDDHH>``        uploads and flagged items in that UTC hour             48 h after the hour
``s#<media_id>``          one strike, with its reason                           when the strike lapses
``t``                     lifetime totals: uploads, flagged, matches per kind   never
========================  ====================================================  ==================

Counters only ever change through DynamoDB ``ADD`` inside a transaction whose first
item is a conditional write of the item's marker: concurrent uploads never lose a
count (no read-modify-write), and a Lambda or Step Functions retry of the same item
counts nothing twice. The key prefixes sort ``e`` < ``h`` < ``s`` < ``t``, so one
``Query`` from the oldest hour still in the day window returns exactly the recent
hours, the strikes and the totals, and never the (many) markers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from mediaguard.decisions.history import (
    FLAGGING_ACTIONS,
    OFFENDING_BANK_KINDS,
    HistorySnapshot,
    Pseudonymiser,
    hour_bucket,
    offending_kinds,
    sliding_count,
)

# Markers only have to outlive retries of the same item (minutes); a week is generous.
MARKER_TTL = timedelta(days=7)
# The day window reads buckets up to 25 h old; DynamoDB deletes expired items lazily
# and the query's key condition skips older ones anyway.
BUCKET_TTL = timedelta(hours=48)
TOTALS = "t"


class HistoryItem(Model):
    """Every item of the uploader-history table (see the module docstring for the shapes)."""

    class Meta:
        table_name = "mediaguard-history"
        billing_mode = "PAY_PER_REQUEST"

    uploader = UnicodeAttribute(hash_key=True)  # keyed hash, never the platform's id
    bucket = UnicodeAttribute(range_key=True)
    uploads = NumberAttribute(null=True)
    flagged = NumberAttribute(null=True)
    matches_block = NumberAttribute(null=True)
    matches_flag = NumberAttribute(null=True)
    # Markers (e#): when each fact of the item was counted.
    uploaded_at = NumberAttribute(null=True)
    flagged_at = NumberAttribute(null=True)
    matched_block_at = NumberAttribute(null=True)
    matched_flag_at = NumberAttribute(null=True)
    # Strikes (s#).
    reason = UnicodeAttribute(null=True)
    created_at = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # the table's TTL attribute


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


class DynamoHistory:
    """``mediaguard.decisions.history.HistoryStore`` on DynamoDB.

    >>> history = DynamoHistory("prod-history", "eu-west-1", Pseudonymiser(secret))  # doctest: +SKIP
    >>> history.record_upload("auth0|5f2...", "m-123")                              # doctest: +SKIP
    True
    """

    def __init__(self, table: str, region: str, pseudonymiser: Pseudonymiser,
                 clock: Callable[[], datetime] | None = None, totals_retention: timedelta | None = None) -> None:
        HistoryItem.Meta.table_name = table
        HistoryItem.Meta.region = region
        HistoryItem._connection = None
        self._connection = Connection(region=region)
        self._keys = pseudonymiser
        self._clock = clock or (lambda: datetime.now(UTC))
        # UploaderHistoryRetentionDays: the totals row expires this long after its last write.
        self._totals_retention = totals_retention

    # -- writes ---------------------------------------------------------------------------------

    def record_upload(self, uploader: str, media_id: str, at: datetime | None = None) -> bool:
        """Count one upload in its hour and the totals, once per media id."""
        at = at or self._clock()
        hour = hour_bucket(at)
        return self._count_once(self._keys.key(uploader), media_id, HistoryItem.uploaded_at, at, [
            (f"h#{hour}", [HistoryItem.uploads.add(1), HistoryItem.expires_at.set(self._bucket_expiry(at))]),
            (TOTALS, [HistoryItem.uploads.add(1)]),
        ])

    def record_outcome(self, uploader: str, media_id: str, action: str, matched_bank_kinds: Iterable[str],
                       at: datetime | None = None) -> bool:
        """Count a decision: flagged (restrictive action) and each offending bank kind, each once per item.

        A later decision on the same item (a rescan after a bank update) can still add a
        fact the first one lacked, e.g. a block match, but never counts one twice.
        """
        at = at or self._clock()
        key = self._keys.key(uploader)
        changed = False
        if action in FLAGGING_ACTIONS:
            changed |= self._count_once(key, media_id, HistoryItem.flagged_at, at, [
                (f"h#{hour_bucket(at)}", [HistoryItem.flagged.add(1),
                                          HistoryItem.expires_at.set(self._bucket_expiry(at))]),
                (TOTALS, [HistoryItem.flagged.add(1)]),
            ])
        for kind in offending_kinds(matched_bank_kinds):
            marker = getattr(HistoryItem, f"matched_{kind}_at")
            counter = getattr(HistoryItem, f"matches_{kind}")
            changed |= self._count_once(key, media_id, marker, at, [(TOTALS, [counter.add(1)])])
        return changed

    def add_strike(self, uploader: str, media_id: str, reason: str, expires_at: datetime | None = None) -> bool:
        """One strike per item, optionally lapsing at ``expires_at``."""
        now = self._clock()
        item = HistoryItem(self._keys.key(uploader), f"s#{media_id}", reason=reason, created_at=_epoch(now),
                           expires_at=_epoch(expires_at) if expires_at else None)
        try:
            item.save(condition=HistoryItem.bucket.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove_strike(self, uploader: str, media_id: str) -> bool:
        """Delete the item's strike; idempotent, so an appeal decided twice removes one strike."""
        try:
            HistoryItem(self._keys.key(uploader), f"s#{media_id}").delete(condition=HistoryItem.bucket.exists())
        except DeleteError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- reads ----------------------------------------------------------------------------------

    def key_of(self, uploader: str) -> str:
        return self._keys.key(uploader)

    def snapshot(self, uploader: str, now: datetime | None = None) -> HistorySnapshot:
        """The uploader's counters as of ``now``: one Query (see the module docstring)."""
        now = now or self._clock()
        oldest = hour_bucket(now - timedelta(hours=24))
        uploads: dict[str, int] = {}
        flagged: dict[str, int] = {}
        strikes = 0
        totals: HistoryItem | None = None
        for item in HistoryItem.query(self._keys.key(uploader), HistoryItem.bucket >= f"h#{oldest}"):
            if item.bucket.startswith("h#"):
                uploads[item.bucket[2:]] = int(item.uploads or 0)
                flagged[item.bucket[2:]] = int(item.flagged or 0)
            elif item.bucket.startswith("s#"):
                # TTL deletes lapsed strikes days late: they must not count meanwhile.
                if item.expires_at is None or item.expires_at > now.timestamp():
                    strikes += 1
            elif item.bucket == TOTALS:
                totals = item
        return HistorySnapshot(
            uploads_last_hour=sliding_count(uploads, now, 1),
            uploads_last_day=sliding_count(uploads, now, 24),
            flagged_last_day=sliding_count(flagged, now, 24),
            uploads_total=int(totals.uploads or 0) if totals else 0,
            flagged_total=int(totals.flagged or 0) if totals else 0,
            bank_matches={k: int(getattr(totals, f"matches_{k}") or 0) if totals else 0 for k in OFFENDING_BANK_KINDS},
            strikes=strikes,
        )

    def recent_uploads(self, uploader: str, limit: int = 20) -> list[tuple[str, datetime]]:
        """The uploader's uploads of the last :data:`MARKER_TTL` (each item's ``e#`` marker row,
        which counts it once), newest first: one Query on the uploader's key, no Scan."""
        rows = HistoryItem.query(self._keys.key(uploader), HistoryItem.bucket.startswith("e#"),
                                 filter_condition=HistoryItem.uploaded_at.exists())
        found = [(row.bucket[2:], datetime.fromtimestamp(float(row.uploaded_at), UTC)) for row in rows]
        return sorted(found, key=lambda pair: pair[1], reverse=True)[:limit]

    def erase(self, uploader: str) -> int:
        """Delete every row of the uploader's partition (an erasure request); returns rows deleted."""
        key = self._keys.key(uploader)
        deleted = 0
        for row in HistoryItem.query(key):
            row.delete()
            deleted += 1
        return deleted

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _bucket_expiry(at: datetime) -> int:
        start = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return _epoch(start + timedelta(hours=1) + BUCKET_TTL)

    def _count_once(self, key: str, media_id: str, marker: NumberAttribute, at: datetime,
                    updates: list[tuple[str, list[Action]]]) -> bool:
        """Set ``marker`` on the item's e# row unless set, and apply ``updates``, all or nothing."""
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.update(HistoryItem(key, f"e#{media_id}"),
                          actions=[marker.set(_epoch(at)), HistoryItem.expires_at.set(_epoch(at + MARKER_TTL))],
                          condition=marker.does_not_exist())
                for bucket, actions in updates:
                    if bucket == TOTALS and self._totals_retention is not None:
                        actions = [*actions, HistoryItem.expires_at.set(_epoch(at + self._totals_retention))]
                    tx.update(HistoryItem(key, bucket), actions=actions)
        except TransactWriteError as exc:
            # Only the marker carries a condition: a conditional failure means "already counted".
            if any(r is not None and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons):
                return False
            raise
        return True
