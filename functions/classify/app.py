"""Classify one batch of frames with open_nsfw and any plug-in ONNX models; sessions live for the container."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import ClassifyInput
from mediaguard.observability import observed
from mediaguard.stages.classify import classify
from mediaguard.wiring import classify_deps

logger = Logger(service="mediaguard")


@observed("classify")
@logger.inject_lambda_context
@event_parser(model=ClassifyInput)
def handler(event: ClassifyInput, context: LambdaContext) -> dict:
    return classify(event, classify_deps()).model_dump()
