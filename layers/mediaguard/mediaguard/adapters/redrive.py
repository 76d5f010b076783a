"""Redrive the S3 events the start function failed on.

S3 invokes the start function asynchronously. When an invocation still fails after
Lambda's retries (a throttle storm, a DynamoDB outage, a bug), Lambda sends an
on-failure record to the stack's ``StartFailedEventsQueue`` instead of dropping it:
``{"requestContext": {...}, "requestPayload": <the S3 event>, "responseContext": {...}}``.
Redriving re-invokes the start function with each stored event, synchronously so the
outcome is known, and deletes the message only after the invocation succeeded. That is
safe to repeat: start creates the item with a conditional write, so an event whose
upload was started meanwhile is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# Stack outputs that name the queue and the function (template.yaml).
STACK_OUTPUTS = {"queue_url": "StartFailedEventsQueueUrl", "function_name": "StartFunctionName"}
REDRIVEN, FAILED, UNREADABLE = "redriven", "failed", "unreadable"


class RedriveConfigError(Exception):
    """The queue or the function cannot be found (no such stack, outputs missing)."""


@dataclass(frozen=True)
class RedriveTarget:
    queue_url: str
    function_name: str
    region: str | None = None


@dataclass
class Outcome:
    """What happened to one queued message. ``error`` is a type name, never a message:
    a handler's error text can hold internal detail."""

    message_id: str
    outcome: str
    keys: list[str] = field(default_factory=list)
    condition: str | None = None  # why Lambda gave up: RetriesExhausted, EventAgeExceeded
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "outcome": self.outcome, "keys": self.keys,
                "condition": self.condition, "error": self.error}


def target_from_stack(stack: str, region: str | None = None, client: Any = None) -> RedriveTarget:
    """The queue and the start function of a deployed stack, from its outputs."""
    cfn = client or boto3.client("cloudformation", region_name=region)
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise RedriveConfigError(f"stack {stack}: {exc.response['Error'].get('Message', 'not found')}") from exc
    except BotoCoreError as exc:
        raise RedriveConfigError(f"stack {stack}: {type(exc).__name__}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [key for key in STACK_OUTPUTS.values() if key not in outputs]
    if missing:
        raise RedriveConfigError(f"stack {stack} has no outputs {', '.join(missing)} (deployed before redrive existed?)")
    return RedriveTarget(region=cfn.meta.region_name, **{f: outputs[key] for f, key in STACK_OUTPUTS.items()})


def redrive(target: RedriveTarget, *, sqs: Any, lam: Any, visibility_timeout: int = 120,
            wait_seconds: int = 1) -> Iterator[Outcome]:
    """Re-invoke the start function with every queued event; yields one ``Outcome`` per message.

    A message stays in the queue (visible again after ``visibility_timeout``) when its
    invocation fails or it holds no S3 event; each message is tried at most once per run.
    ``visibility_timeout`` must exceed the start function's timeout (15 s).
    """
    seen: set[str] = set()
    while True:
        response = sqs.receive_message(QueueUrl=target.queue_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=visibility_timeout, WaitTimeSeconds=wait_seconds)
        fresh = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield _redrive_one(message, target, sqs, lam)


def _redrive_one(message: dict, target: RedriveTarget, sqs: Any, lam: Any) -> Outcome:
    outcome = Outcome(message_id=message["MessageId"], outcome=UNREADABLE)
    try:
        record = json.loads(message["Body"])
        event = record["requestPayload"]
        outcome.condition = record.get("requestContext", {}).get("condition")
        outcome.keys = [r["s3"]["object"]["key"] for r in event["Records"]]
    except (ValueError, KeyError, TypeError) as exc:
        outcome.error = type(exc).__name__
        return outcome
    response = lam.invoke(FunctionName=target.function_name, InvocationType="RequestResponse",
                          Payload=json.dumps(event).encode())
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        try:
            outcome.error = json.loads(payload or b"{}").get("errorType") or response["FunctionError"]
        except ValueError:
            outcome.error = response["FunctionError"]
        outcome.outcome = FAILED
        return outcome
    # Only now: a message deleted before the invocation succeeded would be an event lost again.
    sqs.delete_message(QueueUrl=target.queue_url, ReceiptHandle=message["ReceiptHandle"])
    outcome.outcome = REDRIVEN
    return outcome
