"""Scheduled: anchor the audit chains appended since the last digest (S3 Object Lock + digest chain)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.observability import observed
from mediaguard.wiring import audit_store

logger = Logger(service="mediaguard")


@observed("digest")
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    # The scheduled event carries nothing we need: the pending heads say what to anchor.
    return audit_store().write_digest().to_dict()
