"""Find faces and score AI-generated likelihood on one batch of frames; sessions live for the container."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import DetectInput
from mediaguard.observability import observed
from mediaguard.stages.detect import detect
from mediaguard.wiring import detect_deps

logger = Logger(service="mediaguard")


@observed("detect")
@logger.inject_lambda_context
@event_parser(model=DetectInput)
def handler(event: DetectInput, context: LambdaContext) -> dict:
    return detect(event, detect_deps()).model_dump()
