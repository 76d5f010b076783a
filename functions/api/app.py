"""The review and admin API: queue, claims, decisions, item view, appeals, geofence rules, live streams."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.api import governance
from mediaguard.api import review as api
from mediaguard.observability import observed
from mediaguard.wiring import geofence_admin, governance_services, list_banks, moderation_deps, redrive_deps, review_service

logger = Logger(service="mediaguard")
api.use(review_service, geofence=geofence_admin, banks=list_banks, redrive=redrive_deps, streams=moderation_deps)
governance.use(governance_services)  # /admin/report, /admin/legal, /admin/erasure


# Never log_event: bodies carry appeal statements and responses presigned media links.
@observed("api")
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return api.app.resolve(event, context)
