"""Record the action; write the blurred derivative when the action is blur."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.models import EnforceInput
from mediaguard.observability import observed
from mediaguard.stages.enforce import enforce
from mediaguard.wiring import enforce_deps

logger = Logger(service="mediaguard")


@observed("enforce")
@logger.inject_lambda_context
@event_parser(model=EnforceInput)
def handler(event: EnforceInput, context: LambdaContext) -> dict:
    return enforce(event, enforce_deps()).model_dump()
