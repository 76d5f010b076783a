"""S3 ObjectCreated -> one workflow execution per upload (idempotent under S3 redelivery)."""

from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.observability import observed
from mediaguard.stages.start import start, upload_from_key
from mediaguard.wiring import start_deps

logger = Logger(service="mediaguard")


# The S3Event data class (not the strict S3Model): it reads only the fields used here,
# so the same handler accepts real S3 events and moto's leaner ones.
@observed("start")
@logger.inject_lambda_context
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict:
    results = []
    for record in event.records:
        key = unquote_plus(record.s3.get_object.key)  # S3 URL-encodes keys in events
        # The version this event is about: the one the pipeline scans (stages.start).
        upload = upload_from_key(record.s3.bucket.name, key, record.s3.get_object.version_id)
        results.append(start(upload, start_deps()))
    return {"results": results}
