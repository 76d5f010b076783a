"""Scheduled: rebuild the bank index (PDQ multi-index + embeddings) and publish it to the media bucket."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.observability import observed
from mediaguard.stages.index_build import build_index
from mediaguard.wiring import index_build_deps

logger = Logger(service="mediaguard")


@observed("index_build")
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    # The scheduled event carries nothing we need: every run rebuilds from the tables.
    return build_index(index_build_deps())
