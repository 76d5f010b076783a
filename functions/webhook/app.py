"""EventBridge rule target: deliver one decision event to the platform's webhook, signed."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import envelopes, event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.decisions.events import DecisionEvent
from mediaguard.observability import observed
from mediaguard.wiring import webhook_sink

logger = Logger(service="mediaguard")


@observed("webhook")
@logger.inject_lambda_context
@event_parser(model=DecisionEvent, envelope=envelopes.EventBridgeEnvelope)
def handler(event: DecisionEvent, context: LambdaContext) -> dict:
    # Raising after the sink's bounded retries hands the event to Lambda's async retries,
    # then to the dead-letter queue: a receiver outage never loses a decision silently.
    delivery = webhook_sink().deliver(event)
    return {"decision_id": event.decision_id, "status": delivery.status, "attempts": delivery.attempts}
