"""Match the frames (PDQ, its rotations and mirrors, vPDQ) and embeddings against the hash banks."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import SimilarityInput
from mediaguard.observability import observed
from mediaguard.stages.similarity import similarity
from mediaguard.wiring import similarity_deps

logger = Logger(service="mediaguard")


@observed("similarity")
@logger.inject_lambda_context
@event_parser(model=SimilarityInput)
def handler(event: SimilarityInput, context: LambdaContext) -> dict:
    return similarity(event, similarity_deps()).model_dump()
