"""The review and admin HTTP API (API Gateway HTTP API, payload v2), on Powertools' resolver.

Routes, roles (cumulative: reviewer < senior-reviewer < admin) and answers:

=======  ====================================  ===============  ====================================
method   path                                  role             answer
=======  ====================================  ===============  ====================================
GET      /review/queue?lane=&limit=            reviewer         {items: [task]}; lane=escalated: senior
POST     /review/{media_id}/claim              reviewer         task (lease)
GET      /items/{media_id}                     reviewer         item view; 5-minute link to the sanitized copy
                                                                (after a removal: seniors only, from evidence)
POST     /items/{media_id}/reveal              reviewer         reveal receipt: the media was un-blurred
                                                                (audited as media_revealed)
GET      /review/me                            reviewer         who is signed in: name, roles, exposures today
GET      /review/search?media_id=|sha256=&     reviewer         {items, method, scanned, truncated}: by id a
         uploader=&action=&since=&until=                        GetItem; otherwise a bounded Scan (2,000 items)
GET      /review/decided?day=YYYY-MM-DD        reviewer         that day's decisions, newest first (a Query per shard)
POST     /review/{media_id}/decision           reviewer         decision
POST     /items/{media_id}/appeal              the uploader     appeal receipt (201)
GET      /appeals?state=open|decided           senior-reviewer  {items: [appeal]}
POST     /appeals/{appeal_id}/decision         senior-reviewer  appeal (not by the original decider)
GET      /admin/geofence                       admin            {items: [rule]}
POST     /admin/geofence                       admin            rule (201); 409 if it exists, unless replace
DELETE   /admin/geofence?country=&scope=       admin            204
GET      /admin/banks                          admin            {items: [bank]}
POST     /admin/items/{media_id}/redrive       admin            the new run (202); 404, or 409 if the item
                                                                is not failed, start_failed or received
GET      /review/reasons                       reviewer         the documented reason codes
GET      /streams?state=&limit=                reviewer         {items: [stream]}, newest first;
                                                                state defaults to restricted
GET      /streams/{stream_id}                  reviewer         stream (state, overlays, the segment
                                                                that restricted it and its review item)
POST     /streams/{stream_id}/moderate         reviewer: clear  stream; 404, or 409 (reason stream_state)
                                               senior: block    when the state does not allow it
GET      /openapi.json, /docs                  none             OpenAPI document, Swagger UI
=======  ====================================  ===============  ====================================

Who may call a route is checked before its request is validated (401, then 403, then
400): :func:`check_caller` runs on the raw event, ahead of Powertools' validation.

Errors are ``{"reason": <stable code>, "message": <safe text>}`` (:mod:`mediaguard.api.errors`)
with 400 (invalid request, including schema validation, which adds ``fields``; a body that is
not UTF-8 or nests too deep: ``malformed_body``), 401, 403, 404, 409, 413 (``body_too_large``)
or 415; nothing internal is echoed. ``/docs`` carries a Content-Security-Policy.

The handler (``functions/api/app.py``) plugs in the services with :func:`use`, so this
module stays free of AWS clients and tests can hand it their own.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from mediaguard.api import errors
from mediaguard.api.auth import authenticate_reviewer, credentials
from mediaguard.api.errors import ConflictError, InvalidRequestError, NotFoundError
from mediaguard.decisions import geofence
from mediaguard.decisions import redrive as redrives
from mediaguard.decisions.history import Pseudonymiser
from mediaguard.decisions.live import ModeratorDecision, Overlay, StreamState, StreamStateError
from mediaguard.decisions.review.appeals import (
    AppealDecisionRequest,
    AppealPage,
    AppealReceipt,
    AppealRequest,
    AppealState,
    AppealView,
)
from mediaguard.decisions.review.models import (
    DecisionRequest,
    ItemView,
    Lane,
    Me,
    QueuePage,
    RevealReceipt,
    ReviewDecision,
    SearchPage,
    Task,
)
from mediaguard.decisions.review.reasons import APPEAL_REASONS, REVIEW_REASONS, reason_table
from mediaguard.decisions.review.roles import Caller
from mediaguard.decisions.review.service import ReviewService
from mediaguard.errors import RedriveRefusedError
from mediaguard.ports import Deps, StreamRecord
from mediaguard.stages.segment import (
    StreamContentionError,
    StreamNotFoundError,
    moderate_stream,
    segment_media_id,
)

TITLE, VERSION = "mediaguard review API", "1.0.0"
MEDIA_ID = r"^[A-Za-z0-9_-]{1,80}$"
APPEAL_ID = r"^ap-[A-Za-z0-9_-]{1,80}$"
STREAM_ID = r"^[A-Za-z0-9-]{1,64}$"  # an IVS recording id

app = errors.ApiResolver(enable_validation=True)
_SECURITY = {"security_schemes": {"jwt": HTTPBearer(bearerFormat="JWT")}, "security": [{"jwt": []}]}
app.configure_openapi(title=TITLE, version=VERSION, **_SECURITY)

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def docs_policy(html: str) -> str:
    """The Content-Security-Policy for a Swagger UI page: its own inline scripts and styles
    (by hash, so nothing injected runs), images from itself or data: URIs (its icons), and
    requests ("Try it out") to this API only.

    Powertools inlines Swagger UI's assets and the spec into the page, so hashes of what
    the page holds are the whole allow-list; the page is served without a login, on the
    API's own origin, which is why it must not run anything else there.
    """
    sources: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        sources[tag].append(f"'sha256-{digest}'")
    scripts, styles = (" ".join(sources[tag]) or "'none'" for tag in ("script", "style"))
    return (f"default-src 'none'; script-src {scripts}; style-src {styles}; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _docs_headers(app: errors.ApiResolver, next_middleware) -> Response:
    response = next_middleware(app)
    if isinstance(response.body, str) and response.body.lstrip().startswith("<"):
        response.headers["Content-Security-Policy"] = docs_policy(response.body)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# Swagger UI's assets are inlined by Powertools: nothing is fetched from a CDN.
app.enable_swagger(path="/docs", title=TITLE, version=VERSION, middlewares=[_docs_headers], **_SECURITY)
errors.install(app, validation_status=400)


# --- wiring ------------------------------------------------------------------------------


@dataclass
class GeofenceAdmin:
    """The geofence table and, for ``uploader:<id>`` scopes, the uploader pseudonymiser."""

    store: geofence.GeofenceStore
    pseudonymiser: Pseudonymiser | None = None


@dataclass
class Services:
    review: Callable[[], ReviewService]
    geofence: Callable[[], GeofenceAdmin] | None = None
    banks: Callable[[], list[dict[str, Any]]] | None = None
    redrive: Callable[[], Deps] | None = None
    streams: Callable[[], Deps] | None = None


_services: Services | None = None


def use(review_service: Callable[[], ReviewService], *, geofence: Callable[[], GeofenceAdmin] | None = None,
        banks: Callable[[], list[dict[str, Any]]] | None = None, redrive: Callable[[], Deps] | None = None,
        streams: Callable[[], Deps] | None = None) -> None:
    """Plug in the providers the routes call (each cached by whoever passes it)."""
    global _services
    _services = Services(review_service, geofence, banks, redrive, streams)


def _svc() -> ReviewService:
    if _services is None:
        raise RuntimeError("mediaguard.api.review.use() was not called")
    return _services.review()


def caller() -> Caller:
    """The authenticated caller of the current request (401 when there is none)."""
    return authenticate_reviewer(*credentials(app.current_event), _svc().settings)


# The least role each route with a body needs, checked before the body is validated, so a
# caller without the role hears 403 (not a 400 about a body they may not send anyway).
# Routes not listed need an authenticated caller; the route itself checks the rest.
_ROUTE_ROLES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/review/[^/]+/(claim|decision)$"), "reviewer"),
    ("POST", re.compile(r"/items/[^/]+/reveal$"), "reviewer"),
    ("POST", re.compile(r"/appeals/[^/]+/decision$"), "senior-reviewer"),
    ("POST", re.compile(r"/streams/[^/]+/moderate$"), "reviewer"),
    ("POST", re.compile(r"/admin/"), "admin"),
    ("DELETE", re.compile(r"/admin/"), "admin"),
]
_PUBLIC = re.compile(r"/(openapi\.json|docs)$")


def check_caller(event: dict[str, Any]) -> None:
    """401 without a valid token, 403 without the route's role: before validation runs."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method, path = str(http.get("method") or "").upper(), str(event.get("rawPath") or http.get("path") or "")
    if method == "OPTIONS" or _PUBLIC.search(path):
        return
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    who = authenticate_reviewer(claims, headers.get("authorization"), _svc().settings)
    for verb, pattern, role in _ROUTE_ROLES:
        if verb == method and pattern.search(path):
            who.require(role)
            return


app.before_validation = check_caller


# --- review ------------------------------------------------------------------------------------


@app.get("/review/queue", summary="Open review tasks of one lane, highest priority first")
def get_queue(lane: Annotated[Lane, Query()] = "fast",
              limit: Annotated[int, Query(ge=1, le=100)] = 20) -> QueuePage:
    return _svc().queue(caller(), lane, limit)


@app.post("/review/<media_id>/claim", summary="Claim (or renew) the lease on a task")
def claim(media_id: Annotated[str, Path(pattern=MEDIA_ID)]) -> Task:
    return _svc().claim(caller(), media_id)


@app.post("/review/<media_id>/decision", summary="Decide a claimed task (a reason code is required)")
def decide(media_id: Annotated[str, Path(pattern=MEDIA_ID)], request: Annotated[DecisionRequest, Body()]) -> ReviewDecision:
    return _svc().decide(caller(), media_id, request)


class ReasonCode(BaseModel):
    code: str
    description: str
    actions: list[str]


class ReasonCodes(BaseModel):
    review: list[ReasonCode]
    appeal: list[ReasonCode]


@app.get("/review/reasons", summary="The documented reason codes and the actions each can justify")
def reasons() -> ReasonCodes:
    caller().require("reviewer")
    return ReasonCodes.model_validate({"review": reason_table(REVIEW_REASONS),
                                       "appeal": reason_table(APPEAL_REASONS)})


@app.get("/items/<media_id>", summary="Everything a reviewer needs to decide an item")
def get_item(media_id: Annotated[str, Path(pattern=MEDIA_ID)]) -> ItemView:
    return _svc().item_view(caller(), media_id)


@app.post("/items/<media_id>/reveal", summary="Record that the caller un-blurred the item's media")
def reveal(media_id: Annotated[str, Path(pattern=MEDIA_ID)]) -> RevealReceipt:
    return _svc().reveal(caller(), media_id)


@app.get("/review/search", summary="Find items by id, hash, uploader, action in force, day received")
def search(media_id: Annotated[str | None, Query(pattern=MEDIA_ID)] = None,
           sha256: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
           uploader: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
           action: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None,
           since: Annotated[datetime | None, Query()] = None,
           until: Annotated[datetime | None, Query()] = None,
           limit: Annotated[int, Query(ge=1, le=100)] = 50) -> SearchPage:
    return _svc().search(caller(), media_id=media_id, sha256=sha256, uploader=uploader, action=action,
                         since=_utc(since), until=_utc(until), limit=limit)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@app.get("/review/decided", summary="One UTC day's reviewer decisions, newest first")
def decided(day: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]) -> SearchPage:
    return _svc().decided(caller(), day)


@app.get("/review/me", summary="Who is signed in: name, roles, today's exposure count")
def whoami() -> Me:
    return _svc().whoami(caller())


# --- appeals ------------------------------------------------------------------------------------


@app.post("/items/<media_id>/appeal", summary="The uploader appeals the action on their item")
def appeal(media_id: Annotated[str, Path(pattern=MEDIA_ID)],
           request: Annotated[AppealRequest, Body()]) -> Response[AppealReceipt]:
    receipt = _svc().open_appeal(caller(), media_id, request)
    return Response(201, content_types.APPLICATION_JSON, receipt)


@app.get("/appeals", summary="Appeals by state, oldest first")
def list_appeals(state: Annotated[AppealState, Query()] = "open",
                 limit: Annotated[int, Query(ge=1, le=100)] = 50) -> AppealPage:
    return _svc().list_appeals(caller(), state, limit)


@app.post("/appeals/<appeal_id>/decision", summary="Uphold or overturn (not by the original decider)")
def decide_appeal(appeal_id: Annotated[str, Path(pattern=APPEAL_ID)],
                  request: Annotated[AppealDecisionRequest, Body()]) -> AppealView:
    return _svc().decide_appeal(caller(), appeal_id, request)


# --- admin ------------------------------------------------------------------------------------------


class GeofenceRuleIn(BaseModel):
    """A rule as an operator writes it; ``mediaguard.decisions.geofence.new_rule`` validates it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    country: str = Field(min_length=2, max_length=2)
    # global | media:<media id> | path:/<uri prefix> | uploader:<id> | uploader-key:<hex> | label:<label>
    scope: str = Field(default="global", max_length=600)
    legal_reference: str = Field(min_length=1, max_length=geofence.MAX_REFERENCE_CHARS)
    expires_at: datetime | None = None
    replace: bool = False


class GeofenceRuleOut(BaseModel):
    country: str
    scope: str
    stored_scope: str
    legal_reference: str
    expires_at: str | None = None
    expired: bool
    enforced_at_edge: bool
    created_at: str | None = None


class GeofencePage(BaseModel):
    items: list[GeofenceRuleOut]


class BankOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    kind: str
    action: str | None = None
    pdq_threshold: int | None = None
    embedding_threshold: float | None = None
    created_at: str | None = None
    created_by: str | None = None


class BankPage(BaseModel):
    items: list[BankOut]


def _admin() -> Caller:
    who = caller()
    who.require("admin")
    return who


def _geofence() -> GeofenceAdmin:
    if _services is None or _services.geofence is None:
        raise RuntimeError("no geofence service configured")
    return _services.geofence()


def _rule_error(error: geofence.GeofenceRuleError) -> InvalidRequestError:
    # geofence's messages never echo the submitted text (a scope may hold an uploader id).
    return InvalidRequestError(str(error), reason=error.reason)


@app.get("/admin/geofence", summary="Geofence rules the edge enforces (HTTP 451)")
def list_geofence() -> GeofencePage:
    _admin()
    now = datetime.now(UTC)
    return GeofencePage.model_validate({"items": [r.view(now) for r in geofence.sort_rules(_geofence().store.list())]})


@app.post("/admin/geofence", summary="Add (or with replace, overwrite) a geofence rule")
def add_geofence(request: Annotated[GeofenceRuleIn, Body()]) -> Response[GeofenceRuleOut]:
    who, admin, now = _admin(), _geofence(), datetime.now(UTC)
    try:
        rule = geofence.new_rule(request.country, request.scope, request.legal_reference, request.expires_at, now=now,
                                 pseudonymiser=admin.pseudonymiser)
    except geofence.GeofenceRuleError as error:
        raise _rule_error(error) from None
    if not admin.store.add(rule, replace=request.replace):
        raise ConflictError("a rule for this country and scope exists; send replace: true to overwrite",
                                   reason="rule_exists")
    _audit_rule(who, "geofence_added", rule)
    return Response(201, content_types.APPLICATION_JSON, GeofenceRuleOut.model_validate(rule.view(now)))


@app.delete("/admin/geofence", summary="Remove a geofence rule")
def remove_geofence(country: Annotated[str, Query(min_length=2, max_length=2)],
                    scope: Annotated[str, Query(max_length=600)] = "global") -> Response[None]:
    who, admin = _admin(), _geofence()
    try:
        code, stored = geofence.rule_key(country, scope, admin.pseudonymiser)
    except geofence.GeofenceRuleError as error:
        raise _rule_error(error) from None
    if not admin.store.remove(code, stored):
        raise NotFoundError("no such geofence rule")
    _audit_rule(who, "geofence_removed", geofence.GeoRule.model_construct(country=code, scope=stored,
                                                                          legal_reference=None))
    return Response(204, content_types.APPLICATION_JSON, "")


def _audit_rule(who: Caller, event: str, rule: geofence.GeoRule) -> None:
    """One chain per country: who restricted (or lifted) what, on which legal basis."""
    _svc().deps.items.append_audit(f"geofence:{rule.country}", f"admin:{who.sub}", event,
                                   {"scope": rule.scope, "legal_reference": rule.legal_reference,
                                    "expires_at": rule.expires_at})


@app.get("/admin/banks", summary="Hash banks and their matching configuration")
def list_banks() -> BankPage:
    _admin()
    if _services is None or _services.banks is None:
        raise RuntimeError("no bank listing configured")
    return BankPage.model_validate({"items": _services.banks()})


class RedriveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A short code for the audit trail (what was fixed), never free text.
    reason: str = Field(default="admin_redrive", pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")


class RedriveOut(BaseModel):
    media_id: str
    run: str
    previous_run: str | None = None
    previous_status: str


@app.post("/admin/items/<media_id>/redrive", summary="Start a new run of a failed or stuck item (audited)")
def redrive_item(media_id: Annotated[str, Path(pattern=MEDIA_ID)],
                 request: Annotated[RedriveIn | None, Body()] = None) -> Response[RedriveOut]:
    who = _admin()
    if _services is None or _services.redrive is None:
        raise RuntimeError("no re-drive configured")
    try:
        result = redrives.redrive(media_id, _services.redrive(), actor=f"admin:{who.sub}",
                                  reason=(request or RedriveIn()).reason)
    except redrives.ItemNotFoundError:
        raise NotFoundError("no such item") from None
    except RedriveRefusedError as error:
        raise ConflictError(str(error), reason=error.reason) from None
    # 202: the run has started, not finished.
    return Response(202, content_types.APPLICATION_JSON, RedriveOut.model_validate(result.to_dict()))


# --- live streams --------------------------------------------------------------------------


class StreamSegment(BaseModel):
    """The newest analysed segment of a stream (codes and scores only)."""

    model_config = ConfigDict(extra="ignore")

    segment: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    action: str | None = None
    risk: float | None = None
    latency_ms: float | None = None


class StreamView(BaseModel):
    stream_id: str
    channel_arn: str
    state: StreamState
    verified: bool
    overlays: list[Overlay]
    segments: int
    clean_seconds: float
    severity: str
    cause_segment: int | None = None  # the segment that restricted it
    cause_media_id: str | None = None  # that segment's review item (GET /items/{media_id})
    last: StreamSegment | None = None


class StreamPage(BaseModel):
    items: list[StreamView]


class ModerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: ModeratorDecision
    # A short code for the audit trail and the stream event, never free text.
    reason: str = Field(pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")


# Who may do what to a stream. Clearing lifts overlays and can be undone by the next
# restricting segment; blocking stops the broadcast and deletes the stream key, which
# only the platform can undo: a second-tier person, as for the escalated lane.
MODERATE_ROLE: dict[str, str] = {"clear": "reviewer", "block": "senior-reviewer"}


def _streams() -> Deps:
    if _services is None or _services.streams is None:
        raise RuntimeError("no stream moderation configured")
    return _services.streams()


def _stream_view(record: StreamRecord) -> StreamView:
    s = record.stream
    cause = segment_media_id(s.stream_id, s.cause_segment) if s.cause_segment is not None else None
    return StreamView(stream_id=s.stream_id, channel_arn=record.channel_arn, state=s.state, verified=s.verified,
                      overlays=list(s.overlays), segments=s.segments, clean_seconds=s.clean_seconds,
                      severity=s.severity, cause_segment=s.cause_segment, cause_media_id=cause,
                      last=StreamSegment.model_validate(record.last) if record.last else None)


@app.get("/streams", summary="Live streams in one state (restricted: what moderators must look at)")
def list_streams(state: Annotated[StreamState, Query()] = "restricted",
                 limit: Annotated[int, Query(ge=1, le=100)] = 50) -> StreamPage:
    caller().require("reviewer")
    records = _streams().need("live").streams.by_state(state, limit)
    return StreamPage(items=[_stream_view(r) for r in records])


@app.get("/streams/<stream_id>", summary="One live stream's state, overlays and restricting segment")
def get_stream(stream_id: Annotated[str, Path(pattern=STREAM_ID)]) -> StreamView:
    caller().require("reviewer")
    record = _streams().need("live").streams.get(stream_id)
    if record is None:
        raise NotFoundError("no such stream")
    return _stream_view(record)


@app.post("/streams/<stream_id>/moderate", summary="Clear a restricted stream (reviewer) or block it (senior)")
def moderate(stream_id: Annotated[str, Path(pattern=STREAM_ID)],
             request: Annotated[ModerateIn, Body()]) -> StreamView:
    who = caller()
    who.require(MODERATE_ROLE[request.decision])
    deps = _streams()
    try:
        moderate_stream(stream_id, request.decision, who.actor, deps, reason=request.reason)
    except StreamNotFoundError:
        raise NotFoundError("no such stream") from None
    except StreamStateError as error:
        raise ConflictError(str(error), reason="stream_state") from None
    except StreamContentionError as error:
        raise ConflictError(str(error), reason=error.reason) from None
    record = deps.need("live").streams.get(stream_id)
    assert record is not None
    return _stream_view(record)


# --- documents ---------------------------------------------------------------------------


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, app.get_openapi_json_schema(title=TITLE, version=VERSION,
                                                                                     **_SECURITY))
