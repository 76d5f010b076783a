"""Composite, explainable risk and the policy's action."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import ScoreInput
from mediaguard.observability import observed
from mediaguard.stages.score import score_item
from mediaguard.wiring import score_deps

logger = Logger(service="mediaguard")


@observed("score")
@logger.inject_lambda_context
@event_parser(model=ScoreInput)
def handler(event: ScoreInput, context: LambdaContext) -> dict:
    return score_item(event, score_deps()).model_dump()
