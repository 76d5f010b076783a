"""Composite, explainable risk and the policy's action."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.adapters.aws import deps
from mediaguard.models import ScoreInput
from mediaguard.stages import pipeline

logger = Logger(service="mediaguard")


@logger.inject_lambda_context
@event_parser(model=ScoreInput)
def handler(event: ScoreInput, context: LambdaContext) -> dict:
    return pipeline.score_item(event, deps()).model_dump()
