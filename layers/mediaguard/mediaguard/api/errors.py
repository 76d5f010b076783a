"""The errors both HTTP APIs answer with, and the one body they answer in.

Every refusal is an :class:`ApiError`: an HTTP status, a stable reason code and a safe
message. The body is always ``{"reason": <code>, "message": <text>}``, plus
``media_id`` when the refusal concerns an upload the API already named (the upload API
audits a refused request under that id), and ``fields`` for a request that does not
match the schema (field paths and pydantic's messages, never the submitted values).
The console and the upload page read ``reason`` and ``message``.

Before a route, a middleware or validation sees a request, :class:`ApiResolver` checks its
body (:func:`check_body`): too large is 413, not UTF-8 or JSON nested deeper than any of our
models is 400. Either would otherwise reach Powertools' parser and fail there as a 500.

The review services raise these too (a lost claim race is a 409 wherever it is found),
so the classes live in :mod:`mediaguard.errors`, the bottom layer, and this module only
turns them into responses.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from mediaguard.errors import (  # noqa: F401 (the API's errors, defined with every other typed error)
    ApiError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    UnauthorizedError,
)


class MalformedBodyError(InvalidRequestError):
    """A body no route can read: not UTF-8, not base64 where flagged so, or nested too deep."""

    reason = "malformed_body"


class BodyTooLargeError(ApiError):
    status = 413
    reason = "body_too_large"


# The largest body either API reads is an appeal: a 1,000-character statement, which JSON
# escapes can stretch to 12 bytes a character (a \uXXXX surrogate pair). 64 KiB is five times
# that, and far under API Gateway's 10 MB, so nothing legitimate is refused.
MAX_BODY_BYTES = 64 * 1024
# Our request models nest two levels at most. Python's json recurses once per level and
# fails with RecursionError near 1,000: 32 leaves room for growth and stays far from it.
MAX_JSON_DEPTH = 32
# A JSON string, escapes included: its brackets do not count towards the depth.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest, counted without parsing it.

    >>> json_depth('{"a": [1, {"b": "[[["}]}')
    3
    """
    depth = deepest = 0
    for char in _JSON_STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_body(event: Mapping[str, Any], max_bytes: int = MAX_BODY_BYTES) -> None:
    """Refuse an HTTP API (payload v2) request body before anything parses it.

    API Gateway base64-encodes a body it does not take for text (``isBase64Encoded``); the
    decoded bytes must be UTF-8. A JSON body (``content-type`` JSON or none, what Powertools
    parses as JSON) must nest at most :data:`MAX_JSON_DEPTH` levels and hold no lone
    surrogate escape (``"\\ud800"`` parses, but no store or log can encode it). A body that
    is not valid JSON is left to the resolver, which has always refused it as a schema error.
    """
    body = event.get("body")
    if not body:
        return
    if not isinstance(body, str):
        raise MalformedBodyError("the request body is not text")
    encoded = bool(event.get("isBase64Encoded"))
    # Measured before decoding: an oversized body costs no more than its length.
    if (len(body) * 3 // 4 if encoded else len(body)) > max_bytes:
        raise BodyTooLargeError(f"request bodies are limited to {max_bytes} bytes")
    try:
        raw = base64.b64decode(body, validate=True) if encoded else body.encode("utf-8")
    except binascii.Error:
        raise MalformedBodyError("the request body is not valid base64") from None
    except UnicodeEncodeError:  # a lone surrogate in the event's own JSON
        raise MalformedBodyError("the request body is not UTF-8 text") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBodyError("the request body is not UTF-8 text") from None
    if len(raw) > max_bytes:
        raise BodyTooLargeError(f"request bodies are limited to {max_bytes} bytes")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = str(headers.get("content-type") or "").strip()
    if content_type and not content_type.startswith("application/json"):
        return
    if json_depth(text) > MAX_JSON_DEPTH:
        raise MalformedBodyError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        parsed = json.loads(text)
    except ValueError:
        return  # invalid JSON: the resolver's schema error, as before
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedBodyError("the request body is not UTF-8 text") from None


class ApiResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver, with :func:`check_body` run before routing.

    Powertools validates a body before any middleware of ours could run, so the check
    sits in :meth:`resolve`; its refusal is built here, in the one format, because no
    exception handler is reachable before the resolver has taken the event.
    """

    refusal_defaults: dict[str, Any]
    # Run on the raw event after check_body, before Powertools validates anything: who
    # may call a route is decided before what they sent is judged (401/403 before 400).
    before_validation: Callable[[Mapping[str, Any]], None] | None

    def __init__(self, *, max_body_bytes: int = MAX_BODY_BYTES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refusal_defaults = {}
        # Only a route that takes media in its body (a generated output) raises this.
        self.max_body_bytes = max_body_bytes
        self.before_validation = None

    def resolve(self, event: dict, context: Any) -> dict[str, Any]:
        try:
            check_body(event, self.max_body_bytes)
            if self.before_validation is not None:
                self.before_validation(event)
        except ApiError as error:
            return {"statusCode": error.status, "headers": {"Content-Type": content_types.APPLICATION_JSON},
                    "body": json.dumps(self.refusal_defaults | error.body()), "isBase64Encoded": False}
        return super().resolve(event, context)


def answer(status: int, reason: str, message: str, **extra: Any) -> Response:
    """A JSON error response in the one body format."""
    return Response(status, content_types.APPLICATION_JSON, {"reason": reason, "message": message, **extra})


def install(app: ApiResolver, *, validation_status: int = 400,
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
    app.refusal_defaults = dict(defaults)

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

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported(_: RequestUnsupportedContentType) -> Response:
        # 415 as Powertools answered, but in the one format rather than its own body.
        return answer(415, "unsupported_content_type", "send the body as application/json", **defaults)

    @app.not_found
    def not_found(_: Exception) -> Response:
        return answer(404, "not_found", "no such route", **defaults)
