"""The generation guard's route: ``POST /v1/generations`` on the upload API (the platform's JWT).

The caller is the platform's backend: a JWT of the upload API's authorizer that also
carries the platform role (scope ``mediaguard/generations`` or group ``platform``,
settings ``platform_scope``/``platform_group``), or locally a dev token whose roles hold
``platform``. An end user's upload token is 403: it could name any ``user`` and spend
their quota. The body names the end user the request is for; the tenant is the JWT claim
``tenant`` (setting ``tenant_claim``) or, without one, the caller's subject. Answers:

* ``200 {generation_id, allowed: true, quota}``: the generator may run;
* ``403 {allowed: false, reasons: [code, ...], matched: [...], reason, message}``: screening
  refused it (``genguard.screen.RULES``);
* ``429 {allowed: false, reasons: ["rate_limited"], retry_after, quota, ...}`` with a
  ``Retry-After`` header: a quota is spent;
* ``404 unknown_reference`` / ``409 reference_not_ready`` for a reference media id the
  pipeline does not know or has not scored yet; 401, 413, 422 as on ``/v1/uploads``.

The handler (``functions/generations/app.py``) plugs the guard in with :func:`use`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body

from mediaguard.api import errors
from mediaguard.api.auth import authenticate_reviewer, credentials, parse_groups
from mediaguard.decisions.review.settings import ReviewSettings
from mediaguard.errors import ForbiddenError
from mediaguard.genguard.config import GenGuardSettings
from mediaguard.genguard.service import (
    ID_PATTERN,
    GenerationAllowed,
    GenerationRequest,
    GenGuard,
    RateLimitedError,
    request_generation,
)
from mediaguard.settings import Settings

app = errors.ApiResolver(enable_validation=True)
errors.install(app, validation_status=422)


@app.exception_handler(RateLimitedError)
def rate_limited(error: RateLimitedError) -> Response:
    return Response(429, content_types.APPLICATION_JSON, error.body(),
                    headers={"Retry-After": str(error.retry_after)})


@dataclass
class _Providers:
    guard: Callable[[], GenGuard]
    settings: Callable[[], Settings]


_providers: _Providers | None = None


def use(guard: Callable[[], GenGuard], settings: Callable[[], Settings]) -> None:
    """Plug in the providers the route calls (each cached by whoever passes it)."""
    global _providers
    _providers = _Providers(guard, settings)


def platform_caller(jwt_claims: dict[str, Any] | None, authorization: str | None,
                    guard: GenGuardSettings) -> tuple[str, str]:
    """``(caller subject, tenant)`` of a request from the platform: the tenant claim, else the subject.

    401 without a valid token; 403 for a token without the platform role (an end user's
    upload token, a reviewer's dev token).
    """
    if jwt_claims and jwt_claims.get("sub"):
        sub = str(jwt_claims["sub"])
        platform = (guard.platform_scope in parse_groups(jwt_claims.get("scope"))
                    or guard.platform_group in parse_groups(jwt_claims.get("cognito:groups")))
    else:  # no authorizer ran: local mode, the dev token map
        caller = authenticate_reviewer(None, authorization, ReviewSettings(dev_tokens=guard.dev_tokens))
        sub, platform = caller.sub, guard.platform_group in caller.roles
    if not platform:
        raise ForbiddenError("this route is the platform's: the token lacks the platform role")
    tenant = str((jwt_claims or {}).get(guard.tenant_claim) or sub)
    if not re.match(ID_PATTERN, tenant) or not re.match(ID_PATTERN, sub):
        raise ForbiddenError("the token's subject or tenant is not a usable id")
    return sub, tenant


@app.post("/v1/generations", summary="Decide whether a generation request may run (screening and quotas)")
def create_generation(request: Annotated[GenerationRequest, Body()]) -> Response[GenerationAllowed]:
    if _providers is None:
        raise RuntimeError("mediaguard.api.generations.use() was not called")
    guard = _providers.guard()
    sub, tenant = platform_caller(*credentials(app.current_event), guard.settings)
    allowed = request_generation(request, tenant, f"platform:{sub}", guard, caller=sub)
    return Response(200, content_types.APPLICATION_JSON, allowed)
