"""Sanitize + fingerprint: strip metadata, hash, write the sanitized copy; the original stays put."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import Upload
from mediaguard.observability import observed
from mediaguard.stages.sanitize import sanitize_and_fingerprint
from mediaguard.wiring import sanitize_deps

logger = Logger(service="mediaguard")


@observed("sanitize")
@logger.inject_lambda_context
@event_parser(model=Upload)
def handler(event: Upload, context: LambdaContext) -> dict:
    return sanitize_and_fingerprint(event, sanitize_deps()).model_dump()
