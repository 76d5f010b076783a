"""Amazon IVS calls moto does not implement, answered and recorded for local mode.

moto 5.2 serves the channel API (CreateChannel, GetChannel with its tags, ...), which local
mode uses as it is; it has no PutMetadata, StopStream, ListStreamKeys or DeleteStreamKey.
Those are answered here, on botocore's ``before-send`` (where moto's own in-process stubber
answers, and where ``local/faults.py`` injects errors), with the status and body IVS
returns, and every call is kept in :attr:`IvsRecorder.calls` so a test or ``live simulate``
can see what a player would have been told. The adapter (``adapters.live.IvsLiveControl``)
is the one AWS runs: nothing in the stage knows it is local.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_ANSWERED = frozenset({"PutMetadata", "StopStream", "ListStreamKeys", "DeleteStreamKey"})


@dataclass(frozen=True)
class IvsCall:
    operation: str
    params: dict[str, Any]


@dataclass
class IvsRecorder:
    calls: list[IvsCall] = field(default_factory=list)
    deleted_keys: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def of(self, operation: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.params for c in self.calls if c.operation == operation]

    def _answer(self, operation: str, params: dict[str, Any]) -> tuple[int, dict | None]:
        with self._lock:
            self.calls.append(IvsCall(operation, params))
            if operation == "ListStreamKeys":
                # One key per channel, named after it, as CreateChannel makes one key per channel.
                channel = params["channelArn"]
                arn = channel.replace(":channel/", ":stream-key/") + "-key"
                keys = [] if arn in self.deleted_keys else [{"arn": arn, "channelArn": channel, "tags": {}}]
                return 200, {"streamKeys": keys}
            if operation == "DeleteStreamKey":
                self.deleted_keys.add(params["arn"])
                return 204, None
            return (204, None) if operation == "PutMetadata" else (200, {})

    def install(self) -> Callable[[], None]:
        """Patch moto's stubber for the life of a LocalCloud; returns the undo."""
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

        original = BotocoreStubber.__call__
        recorder = self

        def call(stub: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            parts = event_name.split(".")
            if stub.enabled and len(parts) > 2 and parts[1] == "ivs" and parts[2] in _ANSWERED:
                body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "{}")
                status, answer = recorder._answer(parts[2], json.loads(body or "{}"))
                payload = b"" if answer is None else json.dumps(answer).encode()
                return AWSResponse(request.url, status, {"content-type": "application/json"}, MockRawResponse(payload))
            return original(stub, event_name, request, **kwargs)

        BotocoreStubber.__call__ = call
        return lambda: setattr(BotocoreStubber, "__call__", original)


__all__ = ["IvsCall", "IvsRecorder"]
