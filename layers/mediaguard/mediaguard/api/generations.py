"""The generation guard's route: ``POST /v1/generations`` on the upload API (the platform's JWT).

The caller is the platform's backend, authenticated like an upload client (the JWT
authorizer of the upload API; the local dev token in local mode). The body names the end
user the request is for; the tenant is the JWT claim ``tenant`` (setting ``tenant_claim``)
or, without one, the caller's subject. Answers:

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
from mediaguard.api.auth import authenticate_uploader, credentials
from mediaguard.errors import ForbiddenError
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


def platform_caller(jwt_claims: dict[str, Any] | None, authorization: str | None, settings: Settings,
                    tenant_claim: str) -> tuple[str, str]:
    """``(caller subject, tenant)`` of a request: the tenant claim, else the subject."""
    sub = authenticate_uploader(jwt_claims, authorization, settings)
    tenant = str((jwt_claims or {}).get(tenant_claim) or sub)
    if not re.match(ID_PATTERN, tenant) or not re.match(ID_PATTERN, sub):
        raise ForbiddenError("the token's subject or tenant is not a usable id")
    return sub, tenant


@app.post("/v1/generations", summary="Decide whether a generation request may run (screening and quotas)")
def create_generation(request: Annotated[GenerationRequest, Body()]) -> Response[GenerationAllowed]:
    if _providers is None:
        raise RuntimeError("mediaguard.api.generations.use() was not called")
    guard = _providers.guard()
    sub, tenant = platform_caller(*credentials(app.current_event), _providers.settings(), guard.settings.tenant_claim)
    allowed = request_generation(request, tenant, f"platform:{sub}", guard)
    return Response(200, content_types.APPLICATION_JSON, allowed)
