"""Catch target: record a rejection or failure on the item and in its audit chain."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import FailureInput
from mediaguard.observability import observed
from mediaguard.stages.failure import record_failure
from mediaguard.wiring import failure_deps

logger = Logger(service="mediaguard")


@observed("failure")
@logger.inject_lambda_context
@event_parser(model=FailureInput)
def handler(event: FailureInput, context: LambdaContext) -> dict:
    return record_failure(event, failure_deps()).model_dump()
