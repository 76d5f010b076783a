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
