"""The audit trail on AWS: records and head pointers in DynamoDB, digests in S3 under Object Lock.

Writes: a record and its chain's head pointer go in one TransactWriteItems, each with a
condition (the record's seq must be new, the head must still be the one we built on), so
two writers racing on one chain cannot both win and a crash cannot leave them apart. The
head carries a sparse ``pending`` shard until a digest anchors it.

Digests (``write_digest``, run on a schedule): collect the pending heads, archive the
digest in the Object Lock bucket with ``If-None-Match: *`` (never over an existing key),
then record it in the digest chain and clear ``pending`` where the head has not moved.
The archive is written first because it is the one an intruder cannot edit; a run that
stops between the two writes is finished by the next (it adopts the archived digest).

Change log (``log_changes``, fed by the audit table's DynamoDB stream): each batch of
changes is archived once, under Object Lock, beside the digests, so a write made between
two digests stays visible after whoever made it has covered the table's tracks.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from hashlib import sha256
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from mediaguard.adapters import tables
from mediaguard.audit.chain import (
    CHANGES_PREFIX,
    DIGEST_CHAIN,
    DIGEST_PREFIX,
    GENESIS,
    ArchivedDigest,
    AuditRecord,
    ChainState,
    Change,
    Digest,
    DigestOutcome,
    Head,
    TrailSnapshot,
    changes_key,
    decode_digest,
    digest_key,
    encode_changes,
    encode_digest,
    next_digest,
    next_record,
)

logger = Logger(service="mediaguard", child=True)

PENDING_SHARDS = 16
# 20,000 heads make a ~2 MB digest (~107 bytes a head) and cost as many conditional updates
# to clear ``pending``; more wait for the next run.
MAX_HEADS_PER_DIGEST = 20_000
APPEND_ATTEMPTS = 10
# pynamodb's and boto3's connection pools hold 10 connections.
_CLEAR_WORKERS = 8
_READ_WORKERS = 8
_SETTLE_ATTEMPTS = 3


class AuditConfigError(ValueError):
    """The audit store cannot be located: missing settings, stack or stack outputs."""


class AuditUnavailableError(RuntimeError):
    """AWS refused or failed a read the verification needs (permissions, throttling, network)."""


class AuditContentionError(RuntimeError):
    """A chain stayed contended through every append attempt."""


class DigestConflictError(RuntimeError):
    """The archive already holds a digest this run did not expect: another run wrote it,
    or someone with write access to the bucket did. The run stops; verify names it."""


@dataclass(frozen=True)
class AuditNames:
    """Where the trail lives. Appending needs the two tables; digests and verify the bucket too.

    ``retention_days``: the digest job asks for a compliance-mode lock of that many days on
    every digest it writes, whatever the bucket's default says (None: the default alone).
    """

    region: str
    audit_table: str
    head_table: str
    digest_bucket: str | None = None
    retention_days: int | None = None


def names_from_settings(settings: Any) -> AuditNames:
    """Names from a ``Settings`` (the environment the template sets, or a local stack's)."""
    # getattr: Settings gains audit_head_table, digest_bucket and digest_retention_days with this store.
    values = {name: getattr(settings, name, None)
              for name in ("audit_table", "audit_head_table", "digest_bucket", "digest_retention_days")}
    missing = [name for name in ("audit_table", "audit_head_table") if not values[name]]
    if missing:
        env = {"audit_table": "AUDIT_TABLE", "audit_head_table": "AUDIT_HEAD_TABLE"}
        raise AuditConfigError("audit trail not configured: set " + ", ".join(env[m] for m in missing))
    days = values["digest_retention_days"]
    return AuditNames(settings.region, values["audit_table"], values["audit_head_table"], values["digest_bucket"],
                      int(days) if days else None)


STACK_OUTPUTS = {"audit_table": "AuditTableName", "head_table": "AuditHeadTableName", "digest_bucket": "DigestBucketName"}


def names_from_stack(stack: str, region: str | None = None, client: Any = None) -> AuditNames:
    """Names from a deployed stack's outputs (``AuditTableName``, ``AuditHeadTableName``, ``DigestBucketName``)."""
    cfn = client or boto3.client("cloudformation", region_name=region)
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise AuditConfigError(f"stack {stack}: {exc.response['Error'].get('Message', 'not found')}") from exc
    except BotoCoreError as exc:
        raise AuditConfigError(f"stack {stack}: {type(exc).__name__}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [key for key in STACK_OUTPUTS.values() if key not in outputs]
    if missing:
        raise AuditConfigError(f"stack {stack} has no outputs {', '.join(missing)}")
    return AuditNames(cfn.meta.region_name, **{field: outputs[key] for field, key in STACK_OUTPUTS.items()})


@lru_cache(maxsize=4)
def _connection(region: str) -> Connection:
    # For transactions. A pynamodb Connection loads botocore's DynamoDB model (~0.3 s of CPU):
    # one per region and process, like the models' own.
    return Connection(region=region)


def pending_shard(chain: str) -> int:
    """The sparse index partition a chain's pending head goes to; stable per chain."""
    return int.from_bytes(sha256(chain.encode()).digest()[:4], "big") % PENDING_SHARDS


def _canonical(detail: dict) -> dict:
    # What the hash covers is what DynamoDB will hand back: plain JSON types only.
    return json.loads(json.dumps(detail, sort_keys=True, default=str))


def _to_record(row: tables.AuditItem) -> AuditRecord:
    try:
        detail = json.loads(row.detail)
    except (TypeError, ValueError):
        # Not JSON any more: keep the text so the record fails its hash instead of the reader failing.
        detail = {"unreadable": str(row.detail)}
    return AuditRecord(row.chain, int(row.seq), row.at, row.actor, row.event,
                       detail if isinstance(detail, dict) else {"unreadable": detail}, row.prev_hash, row.hash)


def _is_retryable(exc: TransactWriteError) -> bool:
    codes = {getattr(reason, "code", None) for reason in exc.cancellation_reasons if reason is not None}
    return bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})


class DynamoAuditStore:
    """Append, read, digest and snapshot the audit trail. Example::

        store = DynamoAuditStore(names_from_settings(get_settings()))
        store.append("media-7f3a", "system:score", "scored", {"risk": 0.1})
        verify_trail(store.snapshot("media-7f3a")).ok
    """

    def __init__(self, names: AuditNames, s3: Any = None, clock: Callable[[], datetime] | None = None) -> None:
        self.names = names
        for model, table in ((tables.AuditItem, names.audit_table), (tables.AuditHead, names.head_table)):
            # pynamodb reconnects by itself when the table name changes, not when the region does.
            if getattr(model.Meta, "region", None) != names.region:
                model._connection = None
            model.Meta.table_name = table
            model.Meta.region = names.region
        self._connection = _connection(names.region)
        self._s3 = s3
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = boto3.client("s3", region_name=self.names.region)
        return self._s3

    def _now(self) -> str:
        return self._clock().isoformat()

    # -- writing -------------------------------------------------------------------
    def append(self, chain: str, actor: str, event: str, detail: dict) -> AuditRecord:
        """Append one record to ``chain`` and move its head, atomically; retried when another
        writer got there first. Raises ``AuditContentionError`` after ``APPEND_ATTEMPTS``."""
        if chain == DIGEST_CHAIN:
            raise ValueError(f"{DIGEST_CHAIN} is written by the digest job only")
        detail = _canonical(detail)
        return self._append(chain, lambda last: next_record(chain, last, self._now(), actor, event, detail),
                            pending_shard(chain))

    def _append(self, chain: str, build: Callable[[AuditRecord | Head | None], AuditRecord],
                pending: int | None) -> AuditRecord:
        tried: AuditRecord | None = None
        for attempt in range(APPEND_ATTEMPTS):
            head = self.head(chain)
            if tried is not None and head is not None and head.hash == tried.hash:
                # The failed attempt was applied after all (its answer was lost, and the SDK's
                # token-carrying retries then failed too): appending again would duplicate it.
                return tried
            last = head
            if head is None:
                # No head pointer: a new chain, or one written before head pointers existed.
                last = self._last_record(chain)
                if last is not None:
                    logger.warning("audit chain without head pointer; recreating it",
                                   extra={"chain": chain, "seq": last.seq})
            record = build(last)
            try:
                self._commit(record, head, pending)
                return record
            except TransactWriteError as exc:
                if not _is_retryable(exc):
                    raise
                tried = record
            # Full jitter, doubling from 10 ms: writers to one chain are a handful of pipeline stages at most.
            time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))  # noqa: S311 - jitter, not security
        raise AuditContentionError(f"audit chain stayed contended for {APPEND_ATTEMPTS} attempts")

    def _commit(self, record: AuditRecord, head: Head | None, pending: int | None) -> None:
        item = tables.AuditItem(
            record.chain, record.seq, at=record.at, actor=record.actor, event=record.event,
            detail=json.dumps(record.detail, sort_keys=True, separators=(",", ":")),
            prev_hash=record.prev_hash, hash=record.hash,
        )
        new_head = tables.AuditHead(record.chain, seq=record.seq, hash=record.hash, at=record.at, pending=pending)
        head_condition = (tables.AuditHead.chain.does_not_exist() if head is None
                          else tables.AuditHead.seq == head.seq)
        # The token makes botocore's own retry of a lost response idempotent instead of a second append.
        with TransactWrite(connection=self._connection, client_request_token=f"{random.getrandbits(128):032x}") as tx:
            tx.save(item, condition=tables.AuditItem.seq.does_not_exist())
            tx.save(new_head, condition=head_condition)

    # -- reading -------------------------------------------------------------------
    def head(self, chain: str) -> Head | None:
        try:
            row = tables.AuditHead.get(chain, consistent_read=True)
        except tables.AuditHead.DoesNotExist:
            return None
        return Head(int(row.seq), row.hash)

    def records(self, chain: str) -> list[AuditRecord]:
        """The chain's records in seq order, as stored."""
        return [_to_record(row) for row in tables.AuditItem.query(chain, consistent_read=True)]

    def _last_record(self, chain: str) -> AuditRecord | None:
        for row in tables.AuditItem.query(chain, scan_index_forward=False, limit=1, consistent_read=True):
            return _to_record(row)
        return None

    def _chain_state(self, chain: str) -> ChainState:
        # Head first, records second: a record appended in between shows up beyond the head,
        # so look again before calling it an insertion.
        for _ in range(_SETTLE_ATTEMPTS):
            head, records = self.head(chain), self.records(chain)
            if head is None or not records or records[-1].seq <= head.seq:
                break
        return ChainState(records, head)

    # -- digests -------------------------------------------------------------------
    def _require_bucket(self) -> str:
        if not self.names.digest_bucket:
            raise AuditConfigError("no digest bucket configured (DIGEST_BUCKET)")
        return self.names.digest_bucket

    def write_digest(self, max_heads: int = MAX_HEADS_PER_DIGEST) -> DigestOutcome:
        """Anchor every chain appended since the last digest; no digest when none was.

        Raises ``DigestConflictError`` when the archive holds a digest that does not follow
        the recorded digest chain (a concurrent run, or a forgery): nothing is overwritten.
        """
        bucket = self._require_bucket()
        head = self.head(DIGEST_CHAIN)
        adopted = None
        orphan = self._archived(bucket, digest_key(0 if head is None else head.seq + 1))
        if orphan is not None:
            self._adopt(orphan, head)
            adopted, head = orphan.seq, Head(orphan.seq, orphan.record.hash)
        heads = self._pending_heads(max_heads, first_shard=0 if head is None else head.seq + 1)
        if not heads:
            return DigestOutcome(seq=None, chains=0, adopted=adopted)
        now = self._clock()
        digest = next_digest(head, now.isoformat(), heads)
        lock = self._lock(now)
        try:
            self.s3.put_object(Bucket=bucket, Key=digest.key, Body=encode_digest(digest), ContentType="application/json",
                               IfNoneMatch="*", ChecksumAlgorithm="SHA256", **lock)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise DigestConflictError(f"digest {digest.seq} is already archived") from exc
            raise
        self._record(digest, head)
        self._clear_pending(digest.heads)
        logger.info("audit digest written", extra={"digest": digest.seq, "chains": len(heads)})
        return DigestOutcome(seq=digest.seq, chains=len(heads), key=digest.key, adopted=adopted,
                             more_pending=len(heads) >= max_heads)

    def _lock(self, now: datetime) -> dict[str, Any]:
        if not self.names.retention_days:
            return {}
        # Explicit, so a bucket default later weakened (GOVERNANCE, shorter, none) cannot weaken new objects.
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": now + timedelta(days=self.names.retention_days)}

    def log_changes(self, changes: list[Change]) -> str | None:
        """Archive one stream batch of audit-table changes in the locked bucket; returns its
        key (None for an empty batch). A batch the stream delivers again lands on the same
        key, which is written once: the retry is a no-op."""
        if not changes:
            return None
        bucket, key = self._require_bucket(), changes_key(changes)
        try:
            self.s3.put_object(Bucket=bucket, Key=key, Body=encode_changes(changes), ContentType="application/json",
                               IfNoneMatch="*", ChecksumAlgorithm="SHA256", **self._lock(self._clock()))
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            logger.info("audit change batch already logged", extra={"key": key})
        return key

    def _adopt(self, orphan: Digest, head: Head | None) -> None:
        if orphan.record.prev_hash != (head.hash if head else GENESIS):
            raise DigestConflictError(f"archived digest {orphan.seq} does not follow the recorded digest chain")
        logger.warning("adopting a digest archived by a run that stopped early", extra={"digest": orphan.seq})
        self._record(orphan, head)
        self._clear_pending(orphan.heads)

    def _record(self, digest: Digest, head: Head | None) -> None:
        try:
            self._commit(digest.record, head, pending=None)
        except TransactWriteError as exc:
            if not _is_retryable(exc):
                raise
            if self.head(DIGEST_CHAIN) != Head(digest.seq, digest.record.hash):
                raise DigestConflictError(f"the digest chain moved while recording digest {digest.seq}") from exc
            # Another run recorded this very digest first: nothing left to do.

    def _archived(self, bucket: str, key: str) -> Digest | None:
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        try:
            return decode_digest(body)
        except ValueError as exc:
            raise DigestConflictError(f"{key} is not a readable digest") from exc

    def _pending_heads(self, limit: int, first_shard: int) -> dict[str, Head]:
        chains: list[str] = []
        # Start at a different shard each run so a capped run does not starve the last shards.
        for i in range(PENDING_SHARDS):
            remaining = limit - len(chains)
            if remaining <= 0:
                break
            shard = (first_shard + i) % PENDING_SHARDS
            chains.extend(row.chain for row in tables.AuditHead.pending_index.query(shard, limit=remaining))
        # The index is eventually consistent and keys-only: read the heads themselves, consistently.
        return {row.chain: Head(int(row.seq), row.hash)
                for row in tables.AuditHead.batch_get(chains, consistent_read=True)}

    def _clear_pending(self, heads: dict[str, Head]) -> None:
        def clear(item: tuple[str, Head]) -> None:
            chain, head = item
            try:
                # Only if no record was appended since: otherwise the chain stays pending for the next digest.
                tables.AuditHead(chain).update(actions=[tables.AuditHead.pending.remove()],
                                               condition=tables.AuditHead.seq == head.seq)
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise

        with ThreadPoolExecutor(max_workers=_CLEAR_WORKERS) as pool:
            list(pool.map(clear, heads.items()))

    # -- verification ----------------------------------------------------------------
    def snapshot(self, chain: str | None = None) -> TrailSnapshot:
        """Everything ``verify_trail`` needs, for one chain or all of them.

        The archive is read before the tables: a digest written meanwhile then anchors
        nothing newer than the records read, so it cannot look like a deletion.
        """
        bucket = self._require_bucket()
        taken_at = self._now()
        try:
            archive = self._read_archive(bucket, DIGEST_PREFIX)
            changes = self._read_archive(bucket, CHANGES_PREFIX)
            digest_table = self._chain_state(DIGEST_CHAIN)
            if chain is not None:
                state = self._chain_state(chain)
                chains = {chain: state} if state.records or state.head else {}
            else:
                chains = self._all_chains()
        except (BotoCoreError, ClientError, PynamoDBException) as exc:
            code = exc.response["Error"].get("Code") if isinstance(exc, ClientError) else type(exc).__name__
            raise AuditUnavailableError(f"could not read the audit trail ({code})") from exc
        return TrailSnapshot(chains=chains, digest_table=digest_table, archive=archive, only=chain, changes=changes,
                             taken_at=taken_at)

    def _all_chains(self) -> dict[str, ChainState]:
        heads = {row.chain: Head(int(row.seq), row.hash) for row in tables.AuditHead.scan(consistent_read=True)}
        records: dict[str, list[AuditRecord]] = {}
        for row in tables.AuditItem.scan(consistent_read=True):
            records.setdefault(row.chain, []).append(_to_record(row))
        states = {}
        for name in (set(heads) | set(records)) - {DIGEST_CHAIN}:
            rows = sorted(records.get(name, []), key=lambda r: r.seq)
            head = heads.get(name)
            if head is not None and rows and rows[-1].seq > head.seq:
                states[name] = self._chain_state(name)  # appended during the scan: read it again
            else:
                states[name] = ChainState(rows, head)
        return states

    def _read_archive(self, bucket: str, prefix: str) -> list[ArchivedDigest]:
        originals: dict[str, str] = {}
        later: Counter[str] = Counter()
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            # S3 lists a key's versions newest first, so the last one seen is the original.
            for version in page.get("Versions", []):
                if version["Key"] in originals:
                    later[version["Key"]] += 1
                originals[version["Key"]] = version["VersionId"]
            for marker in page.get("DeleteMarkers", []):
                later[marker["Key"]] += 1

        def fetch(item: tuple[str, str]) -> ArchivedDigest:
            key, version = item
            response = self.s3.get_object(Bucket=bucket, Key=key, VersionId=version)
            return ArchivedDigest(key, response["Body"].read(), response.get("ObjectLockMode"), later[key])

        with ThreadPoolExecutor(max_workers=_READ_WORKERS) as pool:
            return list(pool.map(fetch, sorted(originals.items())))

