"""Pure rules of local mode's fidelity patches: Object Lock retention, schedule rates, fault plans."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mediaguard.local.faults import FaultInjector, FaultPlan, FaultPlanError
from mediaguard.local.objectlock import retention_change_allowed
from mediaguard.local.schedules import ScheduleError, rate_seconds

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _at(days: float) -> str:
    return (NOW + timedelta(days=days)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("current", "new", "bypass", "allowed"), [
    (("COMPLIANCE", 30), ("COMPLIANCE", 60), False, True),     # extend
    (("COMPLIANCE", 30), ("COMPLIANCE", 1), True, False),      # shorten: nobody, bypass or not
    (("COMPLIANCE", 30), ("GOVERNANCE", 90), True, False),     # weaken the mode
    (("COMPLIANCE", -1), ("GOVERNANCE", 1), False, True),      # expired: free
    (("GOVERNANCE", 30), ("COMPLIANCE", 30), False, True),     # strengthen
    (("GOVERNANCE", 30), ("GOVERNANCE", 1), False, False),     # shorten without bypass
    (("GOVERNANCE", 30), ("GOVERNANCE", 1), True, True),       # ... with it
])
def test_retention_changes_follow_s3s_object_lock_rules(current, new, bypass, allowed):
    # GIVEN an object's retention WHEN a change is asked THEN S3's answer
    assert retention_change_allowed(current[0], _at(current[1]), new[0], _at(new[1]),
                                    bypass=bypass, now=NOW) is allowed


def test_rate_expressions_become_periods_and_anything_else_is_refused():
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(2 days)") == 172800
    for bad in ("rate(1 minutes)", "rate(5 minute)", "cron(0 12 * * ? *)", "rate(0 minutes)"):
        with pytest.raises(ScheduleError):
            rate_seconds(bad)


def test_a_fault_plan_is_validated_and_reproducible():
    # GIVEN two injectors with the same seed WHEN they roll for the same calls THEN the same faults
    with pytest.raises(FaultPlanError):
        FaultPlan(rate=1.0)
    with pytest.raises(FaultPlanError):
        FaultPlan(rate=0.1, services=frozenset({"sqs"}))
    a, b = FaultInjector(FaultPlan(rate=0.3, seed=5)), FaultInjector(FaultPlan(rate=0.3, seed=5))
    rolls = [(a.roll("dynamodb"), b.roll("dynamodb")) for _ in range(200)]
    assert all(x == y for x, y in rolls)
    assert 30 <= a.stats.total <= 90  # about 30 % of 200
    # AND without a plan nothing is ever injected
    off = FaultInjector(None)
    assert all(off.roll("s3") is None for _ in range(100)) and off.stats.total == 0


class _Queue:
    """An SQS client that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict:  # noqa: N803 - boto3's names
        return {"QueueUrl": f"https://sqs.local/{QueueOwnerAWSAccountId}/{QueueName}"}

    def send_message(self, **kwargs) -> dict:
        self.sent.append(kwargs)
        return {"MessageId": "1"}


def _template_with_on_failure() -> dict:
    return {"Resources": {
        "StartDLQ": {"Type": "AWS::SQS::Queue"},
        "StartFunction": {"Type": "AWS::Serverless::Function", "Properties": {
            "EventInvokeConfig": {"MaximumRetryAttempts": 2, "DestinationConfig": {
                "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["StartDLQ", "Arn"]}}}}}},
        "SlaFunction": {"Type": "AWS::Serverless::Function", "Properties": {}},
    }}


def test_an_async_event_is_tried_three_times_then_parked_on_the_on_failure_destination(tmp_path):
    # GIVEN a template whose start function declares an SQS on-failure destination, and a
    # function that always fails, and Lambda throttling the first delivery once
    from mediaguard.local.asyncinvoke import AsyncInvoker, async_configs
    from mediaguard.local.faults import FaultStats
    from mediaguard.local.template import Stack

    stack = Stack(_template_with_on_failure(), tmp_path, name="s")
    configs = async_configs(stack)
    assert configs["StartFunction"].on_failure == "arn:aws:sqs:us-east-1:123456789012:s-StartDLQ"
    calls, queue, stats = [], _Queue(), FaultStats()
    throttles = iter([(429, "TooManyRequestsException")])
    invoker = AsyncInvoker(lambda name, event: (calls.append(name), ('{"errorType": "Boom"}', True, ""))[1],
                           configs, {"s-StartFunction": "StartFunction"}.get, lambda: queue,
                           roll_fault=lambda: next(throttles, None), stats=stats, time_scale=0.0001)

    # WHEN S3 delivers one event
    ran = invoker.deliver("s-StartFunction", {"Records": [{"s3": {}}]})

    # THEN the function ran three times (the throttle used no attempt), and the event was
    # parked with Lambda's invocation record
    assert ran is False and len(calls) == 3
    assert stats.async_retries == 3 and stats.async_parked == 1
    record = json.loads(queue.sent[0]["MessageBody"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == {"Records": [{"s3": {}}]}
    assert record["responsePayload"] == {"errorType": "Boom"}


def test_an_async_event_without_a_destination_is_dropped_and_counted(tmp_path):
    from mediaguard.local.asyncinvoke import AsyncInvoker, async_configs
    from mediaguard.local.faults import FaultStats
    from mediaguard.local.template import Stack

    stack = Stack(_template_with_on_failure(), tmp_path, name="s")
    stats, queue = FaultStats(), _Queue()
    invoker = AsyncInvoker(lambda name, event: ("{}", True, ""), async_configs(stack), {"s-SlaFunction": "SlaFunction"}.get,
                           lambda: queue, roll_fault=lambda: None, stats=stats, time_scale=0.0001)
    assert invoker.deliver("s-SlaFunction", {}) is False
    assert stats.async_dropped == 1 and queue.sent == []
