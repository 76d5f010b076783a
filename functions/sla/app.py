"""Scheduled SLA sweep: review tasks past their deadline move to the senior reviewers' lane."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.observability import observed
from mediaguard.stages.sla import sla_sweep
from mediaguard.wiring import task_queue

logger = Logger(service="mediaguard")


@observed("sla")
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    # The scheduled event carries nothing we need; the sweep also reports the queue's levels.
    return sla_sweep(task_queue())
