"""Fault injection for local mode: a share of AWS calls fail the way AWS makes them fail.

Off unless asked for (``LocalCloud(faults=FaultPlan(rate=0.1, seed=7))``, ``mediaguard
serve --faults 0.1``). Faults are injected where the SDK would meet them: on botocore's
``before-send`` (ahead of moto's own stubber, which answers in-process calls), so
botocore's retry handler, the Step Functions Retry rules and the Lambda async-invoke
retries see exactly what they would see from AWS, and absorb it (or not) as they would.

Which calls: those the stack makes itself (handlers running in-process, and the Step
Functions service invoking task functions). The test harness's own calls (uploading,
describing executions) and the local server's API Gateway role are left alone.

What is injected, per service (the codes, statuses and bodies AWS returns):

* DynamoDB: 400 ``ProvisionedThroughputExceededException`` / ``ThrottlingException``,
  500 ``InternalServerError``;
* S3: 503 ``SlowDown``, 500 ``InternalError``;
* EventBridge: 400 ``ThrottlingException``, 500 ``InternalException``;
* Step Functions (StartExecution): 400 ``ThrottlingException``;
* Lambda (Invoke by Step Functions): 429 ``TooManyRequestsException``, 500 ``ServiceException``;
* for DynamoDB, S3 and Step Functions also a *timeout after the write*: the request
  reaches the service and takes effect, the response is lost (botocore's
  ``ReadTimeoutError``), the SDK retries. That is how ConditionalCheckFailed races and
  ``ExecutionAlreadyExists`` arise on AWS, so they are produced for real rather than
  faked on requests that did not race.

Every fault is counted (:class:`FaultStats`).
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# (status, code, message) per service; "timeout" means: forward the request, lose the answer.
_ERRORS: dict[str, list[tuple[int, str]]] = {
    "dynamodb": [(400, "ProvisionedThroughputExceededException"), (400, "ThrottlingException"),
                 (500, "InternalServerError"), (0, "timeout")],
    "s3": [(503, "SlowDown"), (500, "InternalError"), (0, "timeout")],
    "events": [(400, "ThrottlingException"), (500, "InternalException")],
    "states": [(400, "ThrottlingException"), (0, "timeout")],
    "lambda": [(429, "TooManyRequestsException"), (500, "ServiceException")],
}
# botocore's service ids in before-send event names, to the keys above.
_SERVICE_IDS = {"dynamodb": "dynamodb", "s3": "s3", "eventbridge": "events", "sfn": "states", "lambda": "lambda"}
# The Step Functions service's own Lambda client signs with this key id (moto's boto_client_for).
_SFN_CREDENTIAL = re.compile(r"Credential=ak/")
_ATTEMPT = re.compile(r"attempt=(\d+);\s*max=(\d+)")


class FaultPlanError(ValueError):
    """A fault plan that cannot be honoured (a rate outside [0, 1))."""


@dataclass(frozen=True)
class FaultPlan:
    """How often to fail, reproducibly.

    ``rate``: share of eligible calls that fail (0.1 = one in ten). ``seed``: the random
    sequence (same seed, same calls in the same order, same faults). ``services``: which of
    dynamodb, s3, events, states, lambda to touch. ``time_scale``: multiplies every retry
    wait (botocore's backoff, Step Functions' IntervalSeconds, Lambda's async retry
    delays) so a test of thousands of faults runs in minutes; the number and order of
    retries do not change. For a targeted test: ``operations`` (e.g. ``{"dynamodb.PutItem"}``)
    and ``codes`` (e.g. ``{"timeout"}``) narrow what is failed, and ``first_attempt_only``
    fails only a call's first attempt (so with ``rate=1.0`` every such call is retried once).
    """

    rate: float
    seed: int | None = None
    services: frozenset[str] = frozenset(_ERRORS)
    time_scale: float = 1.0
    operations: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    first_attempt_only: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= (1.0 if self.first_attempt_only else 0.999):
            raise FaultPlanError(f"fault rate must be in [0, 1) (1.0 with first_attempt_only), got {self.rate}")
        unknown = set(self.services) - set(_ERRORS)
        if unknown:
            raise FaultPlanError(f"no fault model for {sorted(unknown)}")
        if self.time_scale <= 0:
            raise FaultPlanError("time_scale must be positive")


@dataclass
class FaultStats:
    """What the injector did and what the retry layers made of it."""

    injected: Counter = field(default_factory=Counter)        # (service, code) -> faults
    sdk_retries: int = 0              # attempts botocore made after a failed one
    sdk_absorbed: int = 0             # retry attempts that then succeeded
    sdk_exhausted: int = 0            # faults on a call's last attempt: the caller saw the error
    sfn_retries: int = 0              # Step Functions Retry waits taken
    async_retries: int = 0            # Lambda async-invoke retries (S3 -> start, schedules)
    async_parked: int = 0             # async events sent to an on-failure destination
    async_dropped: int = 0            # async events lost because no destination is declared
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def summary(self) -> dict[str, Any]:
        by_code: Counter = Counter()
        for (service, code), n in self.injected.items():
            by_code[f"{service}:{code}"] += n
        return {"injected": self.total, "by_code": dict(sorted(by_code.items())),
                "sdk_retries": self.sdk_retries, "sdk_absorbed": self.sdk_absorbed,
                "sdk_exhausted": self.sdk_exhausted, "sfn_retries": self.sfn_retries,
                "async_retries": self.async_retries, "async_parked": self.async_parked,
                "async_dropped": self.async_dropped}


class FaultInjector:
    """Installs the plan into botocore/moto for the life of one LocalCloud."""

    def __init__(self, plan: FaultPlan | None) -> None:
        self.plan = plan
        self.stats = FaultStats()
        self._random = random.Random(plan.seed if plan else None)
        self._random_lock = threading.Lock()
        self._local = threading.local()
        self._undo: list[Callable[[], None]] = []

    @property
    def enabled(self) -> bool:
        return self.plan is not None and self.plan.rate > 0

    @property
    def time_scale(self) -> float:
        return self.plan.time_scale if self.plan else 1.0

    # -- scope ----------------------------------------------------------------------------
    @contextmanager
    def handler_scope(self) -> Iterator[None]:
        """Calls made inside this block come from a function of the stack (eligible for faults)."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth

    def _eligible(self, service: str, request: Any) -> bool:
        if getattr(self._local, "depth", 0) > 0:
            return True
        # Step Functions invoking a task function happens outside any handler.
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        return service == "lambda" and bool(_SFN_CREDENTIAL.search(auth or ""))

    def roll(self, service: str, operation: str | None = None, attempt: int = 1) -> tuple[int, str] | None:
        """The fault for one call of ``service``, or None; counted when it is one."""
        plan = self.plan
        if not self.enabled or service not in plan.services:
            return None
        if plan.operations and f"{service}.{operation}" not in plan.operations:
            return None
        if plan.first_attempt_only and attempt > 1:
            return None
        choices = [e for e in _ERRORS[service] if not plan.codes or e[1] in plan.codes]
        if not choices:
            return None
        with self._random_lock:
            if self._random.random() >= plan.rate:
                return None
            fault = self._random.choice(choices)
        with self.stats._lock:
            self.stats.injected[(service, fault[1])] += 1
        return fault

    # -- installation ---------------------------------------------------------------------
    def install(self) -> None:
        """Patch moto's in-process stubber, moto's Step Functions error mapping and retry
        wait, and botocore's backoff (scaled); undone by :meth:`uninstall`."""
        self._install_stubber()
        self._install_sfn()
        if self.time_scale != 1.0:
            self._install_backoff_scale()

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _install_stubber(self) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        injector = self

        def call(stub: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            parts = event_name.split(".")
            service = _SERVICE_IDS.get(parts[1] if len(parts) > 1 else "")
            if not stub.enabled or service is None or not injector._eligible(service, request):
                return original(stub, event_name, request, **kwargs)
            attempt, max_attempts = _attempt(request)
            if attempt > 1:
                injector.stats.add("sdk_retries")
            fault = injector.roll(service, parts[2] if len(parts) > 2 else None, attempt)
            if fault is None:
                response = original(stub, event_name, request, **kwargs)
                if attempt > 1 and response is not None and response.status_code < 400:
                    injector.stats.add("sdk_absorbed")
                return response
            if attempt >= max_attempts:
                injector.stats.add("sdk_exhausted")
            status, code = fault
            if code == "timeout":
                from botocore.exceptions import ReadTimeoutError

                original(stub, event_name, request, **kwargs)  # the write happens; its answer is lost
                raise ReadTimeoutError(endpoint_url=request.url.split("?", 1)[0])
            return _error_response(service, request, status, code)

        BotocoreStubber.__call__ = call
        self._undo.append(lambda: setattr(BotocoreStubber, "__call__", original))

    def _install_sfn(self) -> None:
        """Two gaps between moto's Step Functions and AWS's, closed for the life of the cloud:

        * an error from the Lambda service (throttle, 500) reaches a Task state as
          ``Lambda.<code>`` on AWS (what our ASL's Retry names); moto names it ``Exception``;
        * Retry waits ``IntervalSeconds`` in real time: scaled by ``time_scale`` and counted.
        """
        from botocore.exceptions import ClientError
        from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda

        task = state_task_lambda.StateTaskLambda
        original_from_error = task._from_error

        def from_error(state: Any, env: Any, ex: Exception) -> Any:
            event = original_from_error(state, env, ex)
            if isinstance(ex, ClientError):
                code = ex.response.get("Error", {}).get("Code") or "AWSLambdaException"
                name = f"Lambda.{code}" if code in ("TooManyRequestsException", "ServiceException") \
                    else "Lambda.AWSLambdaException"
                event.error_name = CustomErrorName(name)
                details = getattr(event.event_details, "get", None)
                failed = details("lambdaFunctionFailedEventDetails") if details else None
                if failed is not None:
                    failed["error"] = name
            return event

        task._from_error = from_error
        self._undo.append(lambda: setattr(task, "_from_error", original_from_error))

        original_time = retrier_decl.time
        injector = self

        class _ScaledTime:
            def __getattr__(self, name: str) -> Any:
                return getattr(original_time, name)

            @staticmethod
            def sleep(seconds: float) -> None:
                injector.stats.add("sfn_retries")
                original_time.sleep(seconds * injector.time_scale)

        retrier_decl.time = _ScaledTime()
        self._undo.append(lambda: setattr(retrier_decl, "time", original_time))

    def _install_backoff_scale(self) -> None:
        from botocore.retries import standard

        original = standard.ExponentialBackoff.delay_amount
        scale = self.time_scale

        def delay_amount(backoff: Any, context: Any) -> float:
            return original(backoff, context) * scale

        standard.ExponentialBackoff.delay_amount = delay_amount
        self._undo.append(lambda: setattr(standard.ExponentialBackoff, "delay_amount", original))


def _attempt(request: Any) -> tuple[int, int]:
    """(attempt, max attempts) from botocore's ``amz-sdk-request`` header; (1, 1) without it."""
    header = request.headers.get("amz-sdk-request", b"")
    header = header.decode() if isinstance(header, bytes) else header
    match = _ATTEMPT.search(header or "")
    return (int(match.group(1)), int(match.group(2))) if match else (1, 1)


def _error_response(service: str, request: Any, status: int, code: str) -> Any:
    """The HTTP answer AWS gives for ``code``, in the service's own protocol."""
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    message = "injected by mediaguard local fault plan"
    request_id = f"local-fault-{random.getrandbits(32):08x}"
    if service == "s3":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}"
                f"</Message><RequestId>{request_id}</RequestId></Error>").encode()
        headers = {"content-type": "application/xml", "x-amz-request-id": request_id}
    elif service == "lambda":  # rest-json: the error type travels in a header
        body = json.dumps({"Type": "Service" if status >= 500 else "User", "message": message}).encode()
        headers = {"content-type": "application/json", "x-amzn-errortype": code, "x-amzn-requestid": request_id}
    else:  # awsJson 1.0 / 1.1 (DynamoDB, EventBridge, Step Functions)
        prefix = "com.amazonaws.dynamodb.v20120810#" if service == "dynamodb" else ""
        body = json.dumps({"__type": f"{prefix}{code}", "message": message}).encode()
        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": request_id}
    return AWSResponse(request.url, status, headers, MockRawResponse(body))


__all__ = ["FaultInjector", "FaultPlan", "FaultPlanError", "FaultStats"]
