"""Scheduled SLA sweep: review tasks past their deadline move to the senior reviewers' lane."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.wiring import task_queue

logger = Logger(service="mediaguard")


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    escalated = task_queue().escalate_overdue()
    return {"escalated": len(escalated), "media_ids": escalated}
