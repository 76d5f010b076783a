"""POST /v1/uploads: pre-upload screening, then a presigned POST for exactly one object."""

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediaguard.api import uploads
from mediaguard.wiring import presigner, uploads_deps

logger = Logger(service="mediaguard")
app = APIGatewayHttpResolver(enable_validation=True)


@app.post("/v1/uploads")
def create_upload(request: Annotated[uploads.UploadRequest, Body()]) -> Response[uploads.UploadGrant]:
    event = app.current_event
    caller = uploads.authenticate(event.request_context.authorizer.jwt_claim, event.headers.get("authorization"),
                                  uploads_deps().settings)
    grant = uploads.request_upload(request, caller, uploads_deps(), presigner())
    return Response(201, content_types.APPLICATION_JSON, grant)


@app.exception_handler(uploads.UploadApiError)
def refused(error: uploads.UploadApiError) -> Response:
    return Response(error.status, content_types.APPLICATION_JSON, error.body())


# Never log_event: the body holds hashes of someone's photo and the response a credential.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
