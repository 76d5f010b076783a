"""The errors both HTTP APIs answer with, and the one body they answer in.

Every refusal is an :class:`ApiError`: an HTTP status, a stable reason code and a safe
message. The body is always ``{"reason": <code>, "message": <text>}``, plus
``media_id`` when the refusal concerns an upload the API already named (the upload API
audits a refused request under that id), and ``fields`` for a request that does not
match the schema (field paths and pydantic's messages, never the submitted values).
The console and the upload page read ``reason`` and ``message``.

The review services raise these too (a lost claim race is a 409 wherever it is found),
so the classes live in :mod:`mediaguard.errors`, the bottom layer, and this module only
turns them into responses.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from mediaguard.errors import (  # noqa: F401 (the API's errors, defined with every other typed error)
    ApiError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    UnauthorizedError,
)


def answer(status: int, reason: str, message: str, **extra: Any) -> Response:
    """A JSON error response in the one body format."""
    return Response(status, content_types.APPLICATION_JSON, {"reason": reason, "message": message, **extra})


def install(app: APIGatewayHttpResolver, *, validation_status: int = 400,
            always: dict[str, Any] | None = None, powertools_detail: bool = False) -> None:
    """Answer :class:`ApiError`, schema violations and unknown routes in the one format.

    ``validation_status`` is 400 for the review API and 422 for the upload API, the
    statuses each has always answered a malformed request with. ``always`` names fields
    an API has always sent, with their value when there is none (the upload API's
    ``media_id`` is ``null`` before an id is assigned, e.g. on a 401).
    ``powertools_detail`` keeps ``statusCode`` and ``detail`` (locations and error types)
    in a validation answer: the upload API answered with Powertools' default body before
    it had this one, and a client may still read those fields.
    """
    defaults = always or {}

    @app.exception_handler(ApiError)
    def refused(error: ApiError) -> Response:
        return Response(error.status, content_types.APPLICATION_JSON, defaults | error.body())

    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response:
        # Field paths and pydantic's messages only: the submitted values are never echoed.
        fields = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
                  for e in error.errors()]
        legacy = ({"statusCode": validation_status,
                   "detail": [{"loc": e["loc"], "type": e["type"]} for e in error.errors()]}
                  if powertools_detail else {})
        return answer(validation_status, "invalid_request", "the request does not match the schema",
                      **defaults, fields=fields, **legacy)

    @app.not_found
    def not_found(_: Exception) -> Response:
        return answer(404, "not_found", "no such route", **defaults)
