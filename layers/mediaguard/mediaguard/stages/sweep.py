"""Sweep: re-drive uploads stuck before their first stage (issue 14 #10), with metrics.

``StuckUploads`` counts what each run found, ``RedrivenUploads`` what it restarted and
``RedriveFailures`` what it could not (the function then fails too). Nothing alarms on
them in this template yet: an alarm belongs with the stack's alarm topic.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mediaguard.decisions.redrive import SweepIncompleteError, SweepOutcome, sweep_stuck
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)
metrics = Metrics(namespace="mediaguard", service="mediaguard")


def sweep(deps: Deps) -> SweepOutcome:
    """One sweep run; raises ``SweepIncompleteError`` after the others when an item could not be re-driven."""
    outcome = sweep_stuck(deps, datetime.fromtimestamp(deps.clock(), UTC))
    metrics.add_metric(name="StuckUploads", unit=MetricUnit.Count, value=outcome.stuck)
    metrics.add_metric(name="RedrivenUploads", unit=MetricUnit.Count, value=len(outcome.redriven))
    metrics.add_metric(name="RedriveFailures", unit=MetricUnit.Count, value=len(outcome.failed))
    if outcome.stuck:
        logger.warning("stuck uploads re-driven", extra={"stuck": outcome.stuck, "redriven": outcome.redriven,
                                                         "failed": outcome.failed})
    if outcome.failed:
        raise SweepIncompleteError(f"{len(outcome.failed)} stuck item(s) could not be re-driven")
    return outcome
