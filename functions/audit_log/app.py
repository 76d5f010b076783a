"""Audit table stream -> the change log: each batch archived once under Object Lock (issue 14 #9)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.audit.chain import changes_from_stream
from mediaguard.observability import observed
from mediaguard.wiring import audit_store

logger = Logger(service="mediaguard")


@observed("audit_log")
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    # An error fails the whole batch: the event source mapping retries it until it is
    # archived (or expires from the stream after 24 h), never skipping a change.
    key = audit_store().log_changes(changes_from_stream(event.get("Records", [])))
    return {"key": key, "changes": len(event.get("Records", []))}
