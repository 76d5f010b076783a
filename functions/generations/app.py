"""POST /v1/generations: may this generation request run? Quotas, screening, the generation record."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.api import generations as api
from mediaguard.observability import observed
from mediaguard.settings import get_settings
from mediaguard.wiring import generations_guard

logger = Logger(service="mediaguard")
api.use(generations_guard, get_settings)


# Never log_event: the body holds a prompt, often naming a real person.
@observed("generations")
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return api.app.resolve(event, context)
