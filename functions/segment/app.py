"""S3 ObjectCreated on the live recording bucket -> one HLS segment analysed, the stream's state moved."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.observability import observed
from mediaguard.stages.segment import handle_event
from mediaguard.wiring import segment_deps

logger = Logger(service="mediaguard")


# The raw S3 notification (not Powertools' S3Model): IVS keys are parsed by the stage,
# which reads only bucket, key, size and eventTime, so moto's leaner events pass too.
@observed("segment")
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    return {"results": handle_event(event, segment_deps())}
