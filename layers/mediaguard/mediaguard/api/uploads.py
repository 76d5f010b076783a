"""The upload API's library: validate a declared upload, screen it, and hand out a
presigned POST that admits exactly one object.

The API never sees the bytes. It sees what the client *declares* (type, length,
optionally a sha256 and a PDQ hash it computed on the device) and answers with an
S3 POST form whose signed policy pins the key, the Content-Type, a length range and
a short expiry; S3 enforces those on the upload itself. Everything declared here is
untrusted: the S3-triggered pipeline sniffs, hashes and matches the bytes that
actually land, so pre-upload screening only saves honest clients (and the
platform) an upload that is certain to be removed.

Audit: every grant and every refusal is appended to the chain ``upload:{media_id}``.
The item's own chain (``{media_id}``, written by the pipeline) starts at
``received``; keeping the request in a chain of its own means a refused request,
which never becomes an item, still has a verifiable record.

The routes (``POST /v1/uploads``, answers 201 with the grant; ``GET /v1/uploads/{media_id}``,
where the uploader follows the decision on their own upload; ``GET /v1/uploads``, their
uploads of the last week) are :data:`app`, a Powertools
resolver; the handler (``functions/uploads/app.py``) plugs in the adapters with
:func:`use`. Refusals answer in the one error format of :mod:`mediaguard.api.errors`
(``reason``, ``message``, ``media_id``); a request that does not match the schema gets 422,
a body that cannot be read at all 400 or 413, before authentication (``media_id`` null).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mediaguard.api import errors
from mediaguard.api.auth import authenticate_uploader, credentials
from mediaguard.api.errors import ApiError
from mediaguard.decisions.review.queue import REACH_CAP
from mediaguard.decisions.review.uploader import uploader_of
from mediaguard.errors import MediaguardError, NotFoundError
from mediaguard.ingress.grant import GRANTED, REFUSED, client_actor, grant_chain, upload_key
from mediaguard.ingress.kinds import AUDIO_FORMATS, STILL_KINDS, VIDEO_FORMATS
from mediaguard.models import Match
from mediaguard.ports import Deps
from mediaguard.settings import Settings
from mediaguard.signals import PdqSignal

logger = Logger(service="mediaguard", child=True)


def accepted_content_types() -> tuple[str, ...]:
    """The content types the sanitize and frames stages can handle, so they never disagree."""
    stills = tuple(t for kind in STILL_KINDS for t in (kind.content_type, *getattr(kind, "aliases", ())))
    audio = tuple(t for fmt in AUDIO_FORMATS for t in (fmt.content_type, *fmt.aliases))
    videos = tuple(dict.fromkeys(t for fmt in VIDEO_FORMATS for t in (fmt.content_type, *fmt.aliases)))
    return stills + videos + audio


def max_bytes_for(content_type: str, settings: Settings) -> int:
    videos = {t for fmt in VIDEO_FORMATS for t in (fmt.content_type, *fmt.aliases)}
    audio = {t for fmt in AUDIO_FORMATS for t in (fmt.content_type, *fmt.aliases)}
    if content_type in audio:
        return settings.max_audio_bytes
    return settings.max_video_bytes if content_type in videos else settings.max_image_bytes


# --- errors -------------------------------------------------------------------


class UploadRefusedError(ApiError):
    """Pre-upload screening said no; the refusal is audited before this is raised."""

    status = 400


class UnsupportedUploadTypeError(UploadRefusedError):
    status = 415
    reason = "unsupported_media_type"


class UploadTooLargeError(UploadRefusedError):
    status = 413
    reason = "too_large"


class BlockedByBankError(UploadRefusedError):
    # 403, not 451: the match is an abuse signal, not a legal restriction by country.
    status = 403
    reason = "blocked_by_bank"


# --- models -------------------------------------------------------------------


class UploadRequest(BaseModel):
    """What a client declares before uploading.

    >>> UploadRequest(content_type="image/jpeg", content_length=123_456).content_type
    'image/jpeg'
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    content_type: str = Field(min_length=3, max_length=100)
    # Strict: JSON's true is not a length (lax pydantic reads it as 1).
    content_length: int = Field(gt=0, strict=True)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    pdq: str | None = None
    pdq_quality: int | None = Field(default=None, ge=0, le=100, strict=True)
    # Audience size of the uploader (followers); a later risk signal, recorded now. Capped
    # where the review queue stops counting (REACH_CAP): a larger number changes no
    # priority, and an unbounded integer would be stored in the audit chain as sent.
    reach: int | None = Field(default=None, ge=0, le=REACH_CAP, strict=True)

    @field_validator("content_type")
    @classmethod
    def _normalise_type(cls, value: str) -> str:
        return value.split(";")[0].strip().lower()

    @field_validator("sha256")
    @classmethod
    def _lower_sha(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @field_validator("pdq")
    @classmethod
    def _valid_pdq(cls, value: str | None) -> str | None:
        return PdqSignal.validate(value) if value is not None else None

    @model_validator(mode="after")
    def _pdq_needs_quality(self) -> UploadRequest:
        # Without its quality a PDQ hash cannot be trusted to match: flat images collide.
        if self.pdq is not None and self.pdq_quality is None:
            raise ValueError("pdq_quality is required with pdq")
        return self


class PresignedPost(BaseModel):
    url: str
    fields: dict[str, str]


class UploadGrant(BaseModel):
    media_id: str
    key: str
    expires_in: int
    max_bytes: int
    upload: PresignedPost


class UploadStatus(BaseModel):
    """Where an upload stands, as its uploader may see it: no scores, matches or reviewers.

    ``status`` is ``pending`` until the pipeline has the file, then the item's status
    (``received``, ``sanitized``, ..., ``done``, ``rejected``, ``failed``); ``final`` says
    whether it will change again; ``action`` is the policy's action once scored (``review``
    means people decide next); ``reason`` is the rejection's reason code.
    """

    media_id: str
    status: str
    final: bool
    action: str | None = None
    reason: str | None = None


# The pipeline writes no further status after these (stages/enforce.py, stages/failure.py).
FINAL_STATUSES = frozenset({"done", "rejected", "failed"})
MEDIA_ID = r"^[A-Za-z0-9_-]{1,80}$"


class Presigner(Protocol):
    def presign_post(self, bucket: str, key: str, fields: dict[str, str], conditions: list,
                     expires_in: int) -> dict:
        """``{"url": ..., "fields": {...}}`` as ``generate_presigned_post`` returns it."""


# --- the steps ------------------------------------------------------------------


def check_declaration(request: UploadRequest, settings: Settings, media_id: str | None = None) -> None:
    """Refuse types the pipeline cannot sanitize and lengths over the image limit."""
    if request.content_type not in accepted_content_types():
        raise UnsupportedUploadTypeError(
            f"{request.content_type} is not accepted; use one of {', '.join(accepted_content_types())}",
            media_id=media_id)
    limit = max_bytes_for(request.content_type, settings)
    if request.content_length > limit:
        raise UploadTooLargeError(f"uploads of this type are limited to {limit} bytes", media_id=media_id)


def screen(request: UploadRequest, deps: Deps) -> Match | None:
    """The closest block-bank match of the client's PDQ, if any, unless an allow bank vouches for it.

    Same matcher as the similarity stage (index build + live delta, the bank's threshold,
    quality >= 50 on both sides). Flag banks do not refuse uploads; the pipeline applies
    them to the real bytes.
    """
    if request.pdq is None or (request.pdq_quality or 0) < PdqSignal.min_quality:
        return None
    # The index is numpy arrays: loaded with the first request that declares a PDQ, so a
    # cold start that only hands out forms (most clients send no hash) never pays for it.
    from mediaguard.analysis.matching import Query
    from mediaguard.stages.similarity import get_matcher

    matches = get_matcher(deps).match(Query(frames=[(request.pdq, request.pdq_quality or 0)]))
    if any(m.kind == "allow" for m in matches):
        return None  # third-party hashes can be wrong: a verified original is never refused
    return next((m for m in matches if m.kind == "block"), None)


def post_policy(request: UploadRequest) -> tuple[dict[str, str], list]:
    """Extra form fields and policy conditions beyond the key and bucket (which
    ``generate_presigned_post`` pins itself): the exact Content-Type and a length
    range that ends at the declared length, so a client cannot swap in a bigger file."""
    fields = {"Content-Type": request.content_type}
    conditions: list = [
        {"Content-Type": request.content_type},
        ["content-length-range", 1, request.content_length],
    ]
    return fields, conditions


def request_upload(request: UploadRequest, caller: str, deps: Deps, presigner: Presigner,
                   *, media_id: str | None = None) -> UploadGrant:
    """Screen a declared upload and return the presigned POST for ``uploads/{media_id}``.

    Raises an :class:`UploadRefusedError` subclass (audited first) when the type is
    not accepted, the length is over the limit, or the client's PDQ matches a block bank.

    Example::

        grant = request_upload(UploadRequest(content_type="image/jpeg", content_length=200_000),
                               "user-42", deps(), presigner())
        requests.post(grant.upload.url, data=grant.upload.fields, files={"file": data})
    """
    settings = deps.settings
    media_id = media_id or uuid.uuid4().hex
    chain, actor = grant_chain(media_id), client_actor(caller)
    declared = request.model_dump(exclude_none=True)
    try:
        check_declaration(request, settings, media_id)
        hit = screen(request, deps)
        if hit is not None:
            declared |= {"bank": hit.bank, "ref": hit.ref, "distance": hit.distance}
            # The message names neither bank nor entry: the answer must not help anyone
            # probe what a bank holds.
            raise BlockedByBankError("this image cannot be uploaded", media_id=media_id)
    except UploadRefusedError as refusal:
        deps.items.append_audit(chain, actor, REFUSED, {"reason": refusal.reason, **declared})
        logger.info("upload refused", extra={"media_id": media_id, "reason": refusal.reason})
        raise
    if not settings.upload_bucket:
        raise MediaguardError("setting UPLOAD_BUCKET is not configured", reason="misconfigured")
    key = upload_key(media_id)
    fields, conditions = post_policy(request)
    presigned = presigner.presign_post(settings.upload_bucket, key, fields, conditions, settings.upload_ttl_seconds)
    deps.items.append_audit(chain, actor, GRANTED,
                            {"key": key, "expires_in": settings.upload_ttl_seconds, **declared})
    # Ids only: the presigned form is a credential and never goes to the logs.
    logger.info("upload granted", extra={"media_id": media_id, "content_length": request.content_length})
    return UploadGrant(media_id=media_id, key=key, expires_in=settings.upload_ttl_seconds,
                       max_bytes=request.content_length,
                       upload=PresignedPost(url=presigned["url"], fields=presigned["fields"]))


def upload_status(media_id: str, caller: str, deps: Deps) -> UploadStatus:
    """The status of ``media_id`` for ``caller``; :class:`NotFoundError` unless ``caller`` was
    granted the upload, so the route does not confirm which ids exist.

    >>> upload_status(grant.media_id, "user-42", deps()).status  # doctest: +SKIP
    'pending'
    """
    item = deps.items.get(media_id)
    if uploader_of(media_id, deps) != caller:
        raise NotFoundError("no such upload of yours")
    if item is None:
        return UploadStatus(media_id=media_id, status="pending", final=False)
    status = str(item.get("status") or "received")
    return UploadStatus(media_id=media_id, status=status, final=status in FINAL_STATUSES,
                        action=item.get("action"),
                        reason=item.get("error_reason") if status == "rejected" else None)


class MyUpload(UploadStatus):
    uploaded_at: str  # when the pipeline counted it (received)


class MyUploads(BaseModel):
    """The caller's uploads of the last week (what the uploader history keeps per item),
    newest first; an upload still ``pending`` (granted, not yet received) is not listed."""

    items: list[MyUpload]


def my_uploads(caller: str, deps: Deps, limit: int = 20) -> MyUploads:
    """The caller's recent uploads with their status: one Query on the uploader history's
    partition of the caller (keyed by its HMAC, no Scan) and one GetItem per upload."""
    history = deps.history
    if history is None:
        raise MediaguardError("the uploader history is not configured", reason="misconfigured")
    out = []
    for media_id, at in history.recent_uploads(caller, limit):
        status = upload_status(media_id, caller, deps)
        out.append(MyUpload(**status.model_dump(), uploaded_at=at.isoformat()))
    return MyUploads(items=out)


# --- the route ----------------------------------------------------------------------

app = errors.ApiResolver(enable_validation=True)
# 422 for a malformed declaration, and media_id in every error body: what this API has
# always answered, before the two APIs shared one error format.
errors.install(app, validation_status=422, always={"media_id": None}, powertools_detail=True)


@dataclass
class _Providers:
    deps: Callable[[], Deps]
    presigner: Callable[[], Presigner]


_providers: _Providers | None = None


def use(deps: Callable[[], Deps], presigner: Callable[[], Presigner]) -> None:
    """Plug in the providers the route calls (each cached by whoever passes it)."""
    global _providers
    _providers = _Providers(deps, presigner)


@app.post("/v1/uploads", summary="Screen a declared upload and grant a presigned POST for it")
def create_upload(request: Annotated[UploadRequest, Body()]) -> Response[UploadGrant]:
    if _providers is None:
        raise RuntimeError("mediaguard.api.uploads.use() was not called")
    deps = _providers.deps()
    caller = authenticate_uploader(*credentials(app.current_event), deps.settings)
    grant = request_upload(request, caller, deps, _providers.presigner())
    return Response(201, content_types.APPLICATION_JSON, grant)


@app.get("/v1/uploads", summary="The caller's uploads of the last week, newest first, with their status")
def list_uploads(limit: Annotated[int, Query(ge=1, le=50)] = 20) -> MyUploads:
    if _providers is None:
        raise RuntimeError("mediaguard.api.uploads.use() was not called")
    deps = _providers.deps()
    caller = authenticate_uploader(*credentials(app.current_event), deps.settings)
    return my_uploads(caller, deps, limit)


@app.get("/v1/uploads/<media_id>", summary="The status and action of the caller's own upload")
def get_upload(media_id: Annotated[str, Path(pattern=MEDIA_ID)]) -> UploadStatus:
    if _providers is None:
        raise RuntimeError("mediaguard.api.uploads.use() was not called")
    deps = _providers.deps()
    caller = authenticate_uploader(*credentials(app.current_event), deps.settings)
    return upload_status(media_id, caller, deps)
