"""Make moto's DynamoDB safe for the concurrent and retried requests local mode sends it.

moto's ``TransactWriteItems`` deep-copies every table it touches (its rollback snapshot)
while other threads may be writing into them: under concurrent uploads (serve, the fault
and load tests) a start or sanitize handler then fails with ``RuntimeError: dictionary
changed size during iteration`` (measured: 1 upload in ~40 at 6 concurrent uploads, no
faults injected). DynamoDB itself is atomic per transaction, so serialising moto's
DynamoDB requests (each takes well under a millisecond) costs nothing measurable and
removes a failure AWS never produces.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any


def serialize_dynamodb() -> Callable[[], None]:
    """Run moto's DynamoDB request handlers one at a time; returns the undo."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    DynamoHandler.call_action = call_action

    def undo() -> None:
        DynamoHandler.call_action = original

    return undo


# DynamoDB remembers a TransactWriteItems ClientRequestToken for 10 minutes.
TOKEN_TTL_SECONDS = 600


def idempotent_transactions() -> Callable[[], None]:
    """Honour ``ClientRequestToken`` on TransactWriteItems, as DynamoDB does and moto does not.

    When a transaction is applied but its answer is lost (a timeout), botocore retries it
    with the same token; DynamoDB answers the retry with success and applies nothing.
    moto applies it again, so a retried audit append met its own head pointer, failed its
    condition and was appended a second time (measured under 10 % faults: chains with two
    "received" records). Runs inside the serialising lock above. Returns the undo.
    """
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.transact_write_items
    applied: dict[str, tuple[float, str, Any]] = {}

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        now = time.monotonic()
        for stale in [k for k, (at, _, _) in applied.items() if now - at > TOKEN_TTL_SECONDS]:
            del applied[stale]
        request = json.dumps(self.body.get("TransactItems"), sort_keys=True)
        if token in applied and applied[token][1] == request:
            return applied[token][2]
        # (a different request under a used token is IdempotentParameterMismatch on AWS; our
        # clients never reuse one, so the original handling is kept for it)
        response = original(self)
        applied[token] = (now, request, response)
        return response

    DynamoHandler.transact_write_items = transact_write_items

    def undo() -> None:
        DynamoHandler.transact_write_items = original

    return undo


def item_level_transaction_snapshots() -> Callable[[], None]:
    """Snapshot only the items a TransactWriteItems touches, not whole tables; returns the undo.

    moto deep-copies every table a transaction names before applying it, so it can put the
    copy back if one operation fails. The audit trail appends by transaction, so the copy
    grows with the audit table and a corpus scan slows as it goes (17 ms per transaction
    after 25 uploads, about four per upload, and rising: issue 16). DynamoDB's all-or-nothing
    rule only needs the items the transaction names (at most one operation per item), so
    those are copied and put back instead; moto's own rollback then puts back the same
    table objects, which is a no-op. Runs inside :func:`serialize_dynamodb`'s lock.
    """
    import copy

    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    class _ItemsOnly:
        """Stands in for the ``copy`` module inside moto's DynamoDB backend: tables are not copied."""

        @staticmethod
        def deepcopy(obj: Any, memo: Any = None) -> Any:
            return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)

    def key_of(table: Any, op: dict[str, Any]) -> tuple[Any, Any] | None:
        attrs = op.get("Item") or op.get("Key") or {}
        if table.hash_key_attr not in attrs or (table.range_key_attr and table.range_key_attr not in attrs):
            return None  # moto refuses the operation itself
        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return DynamoType(attrs[table.hash_key_attr]), range_value

    def restore(table: Any, hash_value: Any, range_value: Any, old: Any) -> None:
        if range_value is not None:
            if old is None:
                table.items.get(hash_value, {}).pop(range_value, None)
            else:
                table.items[hash_value][range_value] = old
        elif old is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = old

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved, streams = [], {}
        for entry in transact_items:
            op = next(iter(entry.values()), None)
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            key = key_of(table, op) if table is not None else None
            if key is not None:
                saved.append((table, *key, copy.deepcopy(table.get_item(*key))))
                if table.stream_shard is not None:  # a cancelled write leaves no stream record
                    streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        ddb_models.copy = _ItemsOnly
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, old in reversed(saved):
                restore(table, hash_value, range_value, old)
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            ddb_models.copy = copy

    DynamoDBBackend.transact_write_items = transact_write_items

    def undo() -> None:
        DynamoDBBackend.transact_write_items = original

    return undo
