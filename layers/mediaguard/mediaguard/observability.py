"""Metrics (CloudWatch Embedded Metric Format) and X-Ray traces, in one place (issue 13 #1).

Every handler wears one decorator, ``observed(stage)``: an X-Ray subsegment for the
invocation (Powertools Tracer) and a ``StageDuration`` metric. Library code counts what
happened with ``count`` / ``gauge``; each call writes one EMF line to stdout, which Lambda
ships to CloudWatch Logs, where CloudWatch turns it into a metric (no PutMetricData call,
no extra latency).

Why one line per metric (Powertools' ``single_metric`` shape) rather than one buffered
``Metrics`` object: an EMF document has one set of dimensions for all its metrics, and ours
differ per metric (``action`` for decisions, ``bank_kind`` + ``signal`` for matches). And
in local mode every handler shares one process and runs on several threads: a fresh
document per call shares no state, and one ``write`` per line keeps lines whole.

Dimensions are low-cardinality on purpose (stage, action, reason, media_type, bank_kind,
signal, lane, outcome): each distinct combination is a billed custom metric, and an id
as a dimension would be one metric per upload. Ids go to the logs, never here.

Namespace: ``POWERTOOLS_METRICS_NAMESPACE`` (set to ``mediaguard`` in the template's
function Globals, where the alarms and dashboard read it; there is no parameter for it),
``mediaguard`` when unset. ``POWERTOOLS_METRICS_DISABLED=true`` silences the
lines (the local CLI does, so ``mediaguard scan`` prints results, not telemetry).

Tracing: the Tracer patches botocore only (S3, DynamoDB, Step Functions, EventBridge
calls, pynamodb's included), not every library aws-xray-sdk knows. It is off outside
Lambda and wherever ``POWERTOOLS_TRACE_DISABLED=true`` (local mode sets it: there is no
X-Ray daemon), and then it is not even built: constructing a Powertools Tracer imports
aws-xray-sdk, whose recorder creates two botocore X-Ray clients for its sampler (about
0.3 s measured here), a cost only a traced Lambda should pay. Responses are never
recorded on a trace (an upload grant holds a credential), nor are exception messages (they
may quote ids or personal data): a failed invocation still shows as a fault.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

DEFAULT_NAMESPACE = "mediaguard"
MAX_DIMENSIONS = 9  # CloudWatch's limit on dimensions per metric is 30; ours stay far below
_UNITS = {"Count", "Milliseconds", "Seconds"}



def tracing_enabled() -> bool:
    """Powertools' own rule (``Tracer._is_tracer_disabled``): in Lambda, not under SAM
    local or Chalice, and not switched off by ``POWERTOOLS_TRACE_DISABLED``."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on"):
        return False
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    return in_lambda and not (os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))


# Built at import, i.e. in Lambda's init phase, and only where it will record anything.
tracer: Tracer | None = Tracer(service="mediaguard", patch_modules=("botocore",)) if tracing_enabled() else None


def namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE


def emf_line(name: str, value: float, unit: str, dimensions: dict[str, str], timestamp_ms: int) -> str:
    """The EMF document for one metric with its own dimensions.

    >>> emf_line("Decisions", 1, "Count", {"action": "allow"}, 0)[:40]
    '{"_aws":{"Timestamp":0,"CloudWatchMetri'
    """
    if unit not in _UNITS:
        raise ValueError(f"unit {unit!r} is not one of {sorted(_UNITS)}")
    if len(dimensions) > MAX_DIMENSIONS:
        raise ValueError("too many dimensions for one metric")
    doc: dict[str, Any] = {
        "_aws": {"Timestamp": timestamp_ms,
                 "CloudWatchMetrics": [{"Namespace": namespace(), "Dimensions": [sorted(dimensions)],
                                        "Metrics": [{"Name": name, "Unit": unit}]}]},
        **dimensions,
        name: float(value),
    }
    return json.dumps(doc, separators=(",", ":"))


def count(name: str, value: float = 1, **dimensions: str | None) -> None:
    """Count something that happened: ``count("Decisions", action="allow")``.

    A dimension whose value is None is left out (an unknown media type is not a value)."""
    _emit(name, value, "Count", dimensions)


def gauge(name: str, value: float, unit: str = "Count", **dimensions: str | None) -> None:
    """A level at the time of the call: ``gauge("ReviewQueueDepth", 12, lane="fast")``."""
    _emit(name, value, unit, dimensions)


def _emit(name: str, value: float, unit: str, dimensions: dict[str, str | None]) -> None:
    if is_metrics_disabled():
        return
    dims = {k: str(v) for k, v in dimensions.items() if v is not None}
    line = emf_line(name, value, unit, dims, int(time.time() * 1000))
    # One write per line: handlers on other threads (local mode) never split it.
    sys.stdout.write(line + "\n")


def observed(stage: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a Lambda handler: a traced invocation and its ``StageDuration`` (ms, by stage).

    The duration is counted on failure too (the error still cost the time)."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        traced = (tracer.capture_lambda_handler(handler, capture_response=False, capture_error=False)
                  if tracer is not None else handler)

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return traced(event, context)
            finally:
                gauge("StageDuration", round((time.perf_counter() - t0) * 1000, 1), "Milliseconds", stage=stage)

        return wrapper

    return decorate
