"""Make moto's DynamoDB safe for the concurrent requests local mode sends it.

moto's ``TransactWriteItems`` deep-copies every table it touches (its rollback snapshot)
while other threads may be writing into them: under concurrent uploads (serve, the fault
and load tests) a start or sanitize handler then fails with ``RuntimeError: dictionary
changed size during iteration`` (measured: 1 upload in ~40 at 6 concurrent uploads, no
faults injected). DynamoDB itself is atomic per transaction, so serialising moto's
DynamoDB requests (each takes well under a millisecond) costs nothing measurable and
removes a failure AWS never produces.
"""

from __future__ import annotations

import threading
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
