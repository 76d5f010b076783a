"""Who is calling, for both HTTP APIs: the JWT claims API Gateway's authorizer validated,
or, where no authorizer ran (local mode), a bearer token from the local configuration.

On AWS every route but the review API's OpenAPI document sits behind a JWT authorizer, so
a request without a valid JWT never reaches a function, and the template leaves the dev
tokens empty: a dev token opens nothing there. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from mediaguard.decisions.review.roles import Caller
from mediaguard.decisions.review.settings import ReviewSettings, get_review_settings
from mediaguard.errors import UnauthorizedError
from mediaguard.settings import Settings

# The upload API's only local identity: uploads granted with the dev token belong to "dev".
DEV_UPLOADER = "dev"
UPLOADER_TOKEN_NEEDED = "this is not an uploader's token (review-console tokens cannot upload)"  # noqa: S105 - a message


def credentials(event: APIGatewayProxyEventV2) -> tuple[dict[str, Any] | None, str | None]:
    """``(jwt_claims, authorization header)`` of an HTTP API (payload v2) request."""
    return event.request_context.authorizer.jwt_claim, event.headers.get("authorization")


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, presented = (authorization or "").partition(" ")
    token = presented.strip()
    return token if scheme.lower() == "bearer" and token else None


def _same(presented: str, token: str) -> bool:
    return hmac.compare_digest(presented.encode(), token.encode())


def parse_groups(value: Any) -> frozenset[str]:
    """Groups from a ``cognito:groups`` claim.

    Cognito puts a JSON array in the token, but API Gateway HTTP APIs hand JWT claims to
    the integration flattened to strings, an array as ``"[reviewer admin]"``.

    >>> sorted(parse_groups("[reviewer admin]"))
    ['admin', 'reviewer']
    """
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(v) for v in value)
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return frozenset(str(v) for v in parsed)
        except json.JSONDecodeError:
            text = text.strip("[]")
    return frozenset(part for part in text.replace(",", " ").split() if part)


def authenticate_reviewer(jwt_claims: dict[str, Any] | None, authorization: str | None,
                          settings: ReviewSettings) -> Caller:
    """The review API's caller: subject and Cognito groups from the JWT claims, or, with no
    authorizer, the identity the dev token map (``MEDIAGUARD_DEV_TOKENS``) gives the token."""
    if jwt_claims and jwt_claims.get("sub"):
        name = jwt_claims.get("name") or jwt_claims.get("cognito:username")
        return Caller(str(jwt_claims["sub"]), parse_groups(jwt_claims.get("cognito:groups")),
                      name=str(name) if name else None)
    presented = bearer(authorization)
    if presented is not None:
        found = None
        for token, identity in settings.dev_identities().items():
            # Every token is compared, so timing does not reveal which one (or which prefix) matched.
            if _same(presented, token):
                found = identity
        if found is not None:
            return Caller(found.sub, frozenset(found.roles))
    raise UnauthorizedError("a valid bearer token is required")


def _reviewer_dev_token(presented: str, review: ReviewSettings) -> bool:
    """Whether ``presented`` is one of the review console's dev tokens (every one compared)."""
    hit = False
    for token in review.dev_identities():
        hit |= _same(presented, token)
    return hit


def authenticate_uploader(jwt_claims: dict[str, Any] | None, authorization: str | None, settings: Settings,
                          review: ReviewSettings | None = None) -> str:
    """The upload API's caller id: the JWT subject on AWS, ``dev`` for the local dev token
    (``DevToken``, configured only in local mode). ``review``: where the console's dev tokens
    are read from (default: the environment, which local mode shares between functions)."""
    if jwt_claims and jwt_claims.get("sub"):
        return str(jwt_claims["sub"])
    token = settings.dev_token.get_secret_value() if settings.dev_token else ""
    presented = bearer(authorization)
    if token and presented is not None and _same(presented, token):
        return DEV_UPLOADER
    if presented is not None and token and _reviewer_dev_token(presented, review or get_review_settings()):
        # Local mode: the upload API knows only the uploader's dev token, so a reviewer's
        # (valid in the console) lands here; say which token it wants, not "invalid". Any
        # other token gets the generic answer: it is not a reviewer's either.
        raise UnauthorizedError(UPLOADER_TOKEN_NEEDED)
    raise UnauthorizedError("a valid bearer token is required")
