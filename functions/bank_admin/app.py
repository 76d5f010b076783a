"""Bank administration (admin only): create, add hashes or a CSV, bank a held item, confirm, withdraw."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.api import bank_admin as api
from mediaguard.observability import observed
from mediaguard.wiring import bank_admin

logger = Logger(service="mediaguard")
api.use(bank_admin)


# Never log_event: bodies carry hashes and CSVs of banked entries.
@observed("bank_admin")
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return api.app.resolve(event, context)
