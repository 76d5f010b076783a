"""Cut a video or an animation into frames (keyframes + scene changes); remux a video without metadata."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import FramesInput
from mediaguard.observability import observed
from mediaguard.stages.frames import frames
from mediaguard.wiring import frames_deps

logger = Logger(service="mediaguard")


@observed("frames")
@logger.inject_lambda_context
@event_parser(model=FramesInput)
def handler(event: FramesInput, context: LambdaContext) -> dict:
    return frames(event, frames_deps()).model_dump()
