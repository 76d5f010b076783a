"""The generative-AI guard on DynamoDB: generation records and quota buckets.

Quotas: one item per bucket (``user:<tenant>/<user>:minute`` ...). A request reads its four
buckets (strongly consistent), computes with ``genguard.quota.plan`` and writes all four
back in one TransactWriteItems, each conditioned on the ``version`` it read (or on not
existing yet). Two requests racing for the last token cannot both win: one transaction is
cancelled, reads again and finds the bucket empty. Items expire (TTL) once a bucket would
be full again anyway, so idle users cost no storage.

Records: one item per generation, created once (conditional put) and updated once with
the output's sha256 and PDQ (conditional on no output yet). The audit chains are written by ``GenerationLedger``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from mediaguard.genguard.config import GenGuardSettings
from mediaguard.genguard.quota import WINDOW_SECONDS, Bucket, BucketState, QuotaDecision, plan
from mediaguard.genguard.records import (
    GenerationExistsError,
    GenerationNotFoundError,
    GenerationRecord,
    OutputExistsError,
)

logger = Logger(service="mediaguard", child=True)

# Requests of one user arrive a few at a time; a tenant's many users share its two buckets,
# so a burst of concurrent requests retries. Jitter doubles from 5 ms, capped at 200 ms.
TAKE_ATTEMPTS = 25


class QuotaItem(Model):
    class Meta:
        table_name = "mediaguard-genguard-quota"
        billing_mode = "PAY_PER_REQUEST"

    bucket = UnicodeAttribute(hash_key=True)
    tokens = NumberAttribute()
    updated = NumberAttribute()  # epoch seconds
    version = NumberAttribute()
    expires = NumberAttribute(null=True)  # TTL: when the bucket is full again, plus a window


class GenerationItem(Model):
    class Meta:
        table_name = "mediaguard-generations"
        billing_mode = "PAY_PER_REQUEST"

    generation_id = UnicodeAttribute(hash_key=True)
    user = UnicodeAttribute()
    tenant = UnicodeAttribute()
    prompt_sha256 = UnicodeAttribute()
    reference_media_ids = ListAttribute(of=UnicodeAttribute, null=True)
    model = UnicodeAttribute(null=True)
    created = UnicodeAttribute()
    prompt = UnicodeAttribute(null=True)
    output_sha256 = UnicodeAttribute(null=True)
    pdq = UnicodeAttribute(null=True)


MODELS: dict[str, type[Model]] = {"generations_table": GenerationItem, "quota_table": QuotaItem}


def bind(settings: GenGuardSettings, region: str) -> None:
    """Point the models at the configured tables and region (resetting pynamodb's cached connection)."""
    for name, model in MODELS.items():
        table = getattr(settings, name)
        if table:
            model.Meta.table_name = table
        model.Meta.region = region
        model._connection = None


@lru_cache(maxsize=4)
def _connection(region: str) -> Connection:
    return Connection(region=region)


def _retryable(exc: TransactWriteError) -> bool:
    codes = {getattr(reason, "code", None) for reason in exc.cancellation_reasons or [] if reason is not None}
    return bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})


class DynamoQuotaStore:
    """``genguard.quota.QuotaStore`` on DynamoDB (see the module docstring)."""

    def __init__(self, region: str) -> None:
        self.region = region

    def _read(self, buckets: Sequence[Bucket]) -> dict[str, BucketState | None]:
        found = {row.bucket: BucketState(float(row.tokens), float(row.updated), int(row.version))
                 for row in QuotaItem.batch_get([b.key for b in buckets], consistent_read=True)}
        return {b.key: found.get(b.key) for b in buckets}

    def take(self, buckets: Sequence[Bucket], now: float) -> QuotaDecision:
        decision = None
        for attempt in range(TAKE_ATTEMPTS):
            states = self._read(buckets)
            decision = plan(buckets, states, now)
            if not decision.allowed:
                return decision
            try:
                self._commit(buckets, states, decision, now)
                return decision
            except TransactWriteError as exc:
                if not _retryable(exc):
                    raise
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not security
        # Contended throughout: refuse rather than spend unchecked (fail closed), and say when to retry.
        logger.warning("quota contended; request refused", extra={"attempts": TAKE_ATTEMPTS})
        assert decision is not None
        return QuotaDecision(allowed=False, retry_after=1, quota=decision.quota, states={}, exhausted=("contention",))

    def _commit(self, buckets: Sequence[Bucket], states: dict[str, BucketState | None], decision: QuotaDecision,
                now: float) -> None:
        with TransactWrite(connection=_connection(self.region)) as tx:
            for b in buckets:
                new, old = decision.states[b.key], states[b.key]
                refill = (b.spec.capacity - new.tokens) / b.rate
                item = QuotaItem(b.key, tokens=new.tokens, updated=new.updated, version=new.version,
                                 expires=math.ceil(now + refill + WINDOW_SECONDS[b.window]))
                condition = QuotaItem.version.does_not_exist() if old is None else QuotaItem.version == old.version
                tx.save(item, condition=condition)


def _record(row: GenerationItem) -> GenerationRecord:
    values: dict[str, Any] = dict(row.attribute_values)
    values["reference_media_ids"] = list(values.get("reference_media_ids") or [])
    return GenerationRecord.model_validate(values)


class DynamoGenerationStore:
    """``genguard.records.GenerationStore`` on DynamoDB."""

    def create(self, record: GenerationRecord) -> None:
        item = GenerationItem(record.generation_id, **record.model_dump(exclude={"generation_id"}, exclude_none=True))
        try:
            item.save(condition=GenerationItem.generation_id.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise GenerationExistsError("a generation with this id exists") from exc
            raise

    def get(self, generation_id: str) -> GenerationRecord | None:
        try:
            return _record(GenerationItem.get(generation_id, consistent_read=True))
        except GenerationItem.DoesNotExist:
            return None

    def record_output(self, generation_id: str, output_sha256: str, pdq: str | None) -> GenerationRecord:
        item = GenerationItem(generation_id)
        actions = [GenerationItem.output_sha256.set(output_sha256)]
        actions.append(GenerationItem.pdq.set(pdq) if pdq is not None else GenerationItem.pdq.remove())
        # One condition, checked by DynamoDB with the write: of two concurrent outputs for
        # one generation exactly one lands; the other learns why from the item it failed on.
        condition = GenerationItem.generation_id.exists() & GenerationItem.output_sha256.does_not_exist()
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                if self.get(generation_id) is None:
                    raise GenerationNotFoundError("no such generation") from exc
                raise OutputExistsError("the generation already has an output") from exc
            raise
        return _record(item)
