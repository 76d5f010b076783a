"""Lambda's asynchronous invocation semantics for local mode (S3 notifications, schedules).

moto calls the function once and forgets a failure (its S3 notifier swallows every
exception). AWS's async queue instead (Lambda Developer Guide, "Asynchronous invocation"):

* retries a *function error* (the handler raised, timed out) ``MaximumRetryAttempts``
  times (default 2, so three attempts), waiting about one and then two minutes;
* retries *throttles and Lambda service errors* (429, 5xx) with backoff for up to
  ``MaximumEventAgeInSeconds`` (default 6 hours), without using up those attempts;
* then sends the event to the function's on-failure destination
  (``EventInvokeConfig.DestinationConfig.OnFailure``, SAM's or a separate
  ``AWS::Lambda::EventInvokeConfig``), or to its dead-letter queue
  (``DeadLetterQueue``), or drops it when neither is declared.

Delivery here stays synchronous with the request that caused it (as local mode has always
delivered S3 events), so ``LocalCloud.wait`` finds the execution right after an upload;
the waits are real AWS waits times ``time_scale``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("mediaguard.local")

# AWS's waits between function-error retries (about 1 and 2 minutes).
RETRY_DELAYS_SECONDS = (60.0, 120.0)
DEFAULT_MAX_RETRIES = 2
# Throttles are retried for up to the event's maximum age (6 h by default) on AWS; locally a
# bound keeps a fault plan with a high rate from spinning forever.
MAX_THROTTLE_RETRIES = 20


@dataclass(frozen=True)
class AsyncConfig:
    """A function's async-invocation settings as the template declares them."""

    max_retries: int = DEFAULT_MAX_RETRIES
    on_failure: str | None = None       # ARN of an SQS on-failure destination
    dead_letter: str | None = None      # ARN of an SQS dead-letter queue


def async_configs(stack: Any) -> dict[str, AsyncConfig]:
    """Logical function id -> its async settings, from SAM's ``EventInvokeConfig`` /
    ``DeadLetterQueue`` and from ``AWS::Lambda::EventInvokeConfig`` resources."""
    configs: dict[str, AsyncConfig] = {}
    for logical in stack.of_type("AWS::Serverless::Function"):
        props = stack.function_properties(logical)
        invoke = stack.resolve(props.get("EventInvokeConfig") or {})
        dlq = stack.resolve(props.get("DeadLetterQueue") or {})
        configs[logical] = _config(invoke, dlq.get("TargetArn") if dlq.get("Type", "SQS") == "SQS" else None)
    for resource in stack.of_type("AWS::Lambda::EventInvokeConfig").values():
        props = stack.resolve(resource["Properties"])
        name = props["FunctionName"]
        logical = next((k for k in configs if stack.physical_name(k) == name or k == name), None)
        if logical is not None:
            configs[logical] = _config(props, configs[logical].dead_letter)
    return configs


def _config(invoke: dict, dead_letter: str | None) -> AsyncConfig:
    on_failure = ((invoke.get("DestinationConfig") or {}).get("OnFailure") or {})
    destination = on_failure.get("Destination")
    if destination and on_failure.get("Type", "SQS") != "SQS" and ":sqs:" not in str(destination):
        logger.warning("local mode delivers on-failure destinations to SQS only; ignoring one of type %s",
                       on_failure.get("Type"))
        destination = None
    return AsyncConfig(int(invoke.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES)), destination, dead_letter)


class AsyncInvoker:
    """Runs one async event with AWS's retries, then parks or drops it."""

    def __init__(self, invoke: Callable[[str, Any], tuple[str, bool, str]], configs: dict[str, AsyncConfig],
                 logical_of: Callable[[str], str | None], sqs: Callable[[], Any], *,
                 roll_fault: Callable[[], tuple[int, str] | None], stats: Any, time_scale: float) -> None:
        self._invoke = invoke
        self._configs = configs
        self._logical_of = logical_of
        self._sqs = sqs
        self._roll_fault = roll_fault
        self._stats = stats
        self._time_scale = time_scale

    def deliver(self, function_name: str, event: Any) -> bool:
        """Invoke ``function_name`` with ``event`` as Lambda's async queue would; True if a
        try succeeded, False if the event went to a destination or was dropped."""
        logical = self._logical_of(function_name)
        config = self._configs.get(logical or "", AsyncConfig())
        request_id = str(uuid.uuid4())
        attempts = throttles = 0
        payload, error = "null", "Unhandled"
        while True:
            fault = self._roll_fault()
            if fault is not None:
                # Throttle / service error before the function ran: retried, not an attempt.
                throttles += 1
                if throttles > MAX_THROTTLE_RETRIES:
                    error = fault[1]
                    break
                self._stats.add("async_retries")
                self._sleep(min(2.0 ** throttles, 300.0))
                continue
            attempts += 1
            payload, errored, _ = self._invoke(function_name, event)
            if not errored:
                return True
            if attempts > config.max_retries:
                break
            self._stats.add("async_retries")
            self._sleep(RETRY_DELAYS_SECONDS[min(attempts - 1, len(RETRY_DELAYS_SECONDS) - 1)])
        self._park(function_name, event, config, request_id, attempts, payload, error)
        return False

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds * self._time_scale)

    def _park(self, function_name: str, event: Any, config: AsyncConfig, request_id: str, attempts: int,
              payload: str, error: str) -> None:
        sqs = self._sqs()
        if config.on_failure:
            # The record Lambda sends an on-failure destination (invocation record, version 1.0).
            record = {
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "requestContext": {"requestId": request_id, "functionArn": function_name,
                                   "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
                "requestPayload": event if not isinstance(event, str | bytes) else json.loads(event or "{}"),
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": error},
                "responsePayload": json.loads(payload or "null"),
            }
            sqs.send_message(QueueUrl=_queue_url(sqs, config.on_failure), MessageBody=json.dumps(record))
        elif config.dead_letter:
            body = event if isinstance(event, str) else json.dumps(event)
            sqs.send_message(QueueUrl=_queue_url(sqs, config.dead_letter), MessageBody=body,
                             MessageAttributes={"RequestID": {"DataType": "String", "StringValue": request_id},
                                                "ErrorCode": {"DataType": "Number", "StringValue": "200"}})
        else:
            self._stats.add("async_dropped")
            # The function name and request id only: the event names an upload.
            logger.warning("local async invoke: %s failed %d times and has no on-failure destination; "
                           "event %s dropped, as AWS would", function_name, attempts, request_id)
            return
        self._stats.add("async_parked")


def _queue_url(sqs: Any, arn: str) -> str:
    _, _, _, region, account, name = arn.split(":", 5)
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def create_queues(stack: Any, sqs: Any) -> None:
    """Deploy the template's ``AWS::SQS::Queue`` resources (destinations and DLQs)."""
    for logical, resource in stack.of_type("AWS::SQS::Queue").items():
        props = stack.resolve(resource.get("Properties", {}))
        attributes = {key: str(props[key]) for key in ("MessageRetentionPeriod", "VisibilityTimeout",
                                                       "DelaySeconds", "ReceiveMessageWaitTimeSeconds")
                      if key in props}
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        sqs.create_queue(QueueName=stack.physical_name(logical), Attributes=attributes)


def install_s3_delivery(deliver: Callable[[str, Any], bool]) -> Callable[[], None]:
    """Route moto's S3 -> Lambda notifications through ``deliver`` (by function ARN)."""
    from moto.s3 import notifications

    original = notifications._invoke_awslambda

    def invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        deliver(fn_arn, event_body)

    notifications._invoke_awslambda = invoke_awslambda

    def undo() -> None:
        notifications._invoke_awslambda = original

    return undo


__all__ = ["AsyncConfig", "AsyncInvoker", "async_configs", "create_queues", "install_s3_delivery"]
