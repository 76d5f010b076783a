"""Scheduled: re-drive uploads whose run never reached the pipeline's first stage."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.observability import observed
from mediaguard.stages.sweep import metrics, sweep
from mediaguard.wiring import sweep_deps

logger = Logger(service="mediaguard")


@observed("sweep")
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    # The scheduled event carries nothing we need: the start_pending index says what is stuck.
    return sweep(sweep_deps()).to_dict()
