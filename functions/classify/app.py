"""Classify one batch of frames with open_nsfw and any plug-in ONNX models; sessions live for the container."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.adapters.aws import deps
from mediaguard.models import ClassifyInput
from mediaguard.stages import pipeline

logger = Logger(service="mediaguard")


@logger.inject_lambda_context
@event_parser(model=ClassifyInput)
def handler(event: ClassifyInput, context: LambdaContext) -> dict:
    return pipeline.classify(event, deps()).model_dump()
