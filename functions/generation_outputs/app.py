"""POST /v1/generations/{generation_id}/outputs: watermark, sign, record and bank a generated output."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.api import generation_outputs as api
from mediaguard.observability import observed
from mediaguard.wiring import generation_output_ports

logger = Logger(service="mediaguard")
api.use(generation_output_ports)


# Never log_event: the body is the generated image, the answer its marked copy.
@observed("generation_outputs")
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return api.app.resolve(event, context)
