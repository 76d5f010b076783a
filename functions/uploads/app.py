"""POST /v1/uploads: pre-upload screening, then a presigned POST for exactly one object."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.api import uploads as api
from mediaguard.observability import observed
from mediaguard.wiring import presigner, uploads_deps

logger = Logger(service="mediaguard")
api.use(uploads_deps, presigner)


# Never log_event: the body holds hashes of someone's photo and the response a credential.
@observed("uploads")
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return api.app.resolve(event, context)
