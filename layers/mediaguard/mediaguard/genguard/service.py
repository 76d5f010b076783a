"""One generation request through the guard: quota, references, screening, record.

Order matters. The quota is spent first, by every request, refused or not: a refusal that
cost nothing would let anyone probe the rules as fast as they can send. Then the reference
media are looked up: only uploads of the request's own user, or of the platform's backend
itself, count (the upload grant's uploader, ``ingress.grant``); any other id, unknown or
someone else's, is the same 404, before the item is read, so neither its existence nor its
readiness (409) nor what screening finds in it leaks. Then the prompt and the references
are screened. A request that passes becomes a :class:`GenerationRecord` and the
first record of its audit chain; a refusal (403 or 429) goes to the user's refusal chain.

Knows nothing of AWS: the quota store, the record store, the audit trail and the reference
reader are ports (``mediaguard.adapters.generations`` has the DynamoDB ones).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from mediaguard.errors import ApiError
from mediaguard.genguard.config import GenGuardSettings
from mediaguard.genguard.quota import QuotaStore, buckets_for
from mediaguard.genguard.records import GenerationLedger, GenerationRecord, prompt_sha256
from mediaguard.genguard.screen import RATE_LIMITED, ReferenceEvidence, TextScore, Verdict, screen

logger = Logger(service="mediaguard", child=True)

# Ids the platform gives its users and tenants: they become audit chain and quota keys.
ID_PATTERN = r"^[A-Za-z0-9_.@:+=-]{1,128}$"
MEDIA_ID = r"^[A-Za-z0-9_-]{1,80}$"
# A prompt longer than any generator reads is not a prompt; the body limit (64 KiB) is the outer wall.
MAX_PROMPT_CHARS = 4000
MAX_REFERENCES = 8
# open_nsfw's score key as the pipeline stores it on the item (``scores``).
NSFW_KEY = "open_nsfw.nsfw"


class GenerationRequest(BaseModel):
    """``POST /v1/generations``: who asks (the platform's user id), what, from which uploads.

    >>> GenerationRequest(user="u-1", prompt="a lighthouse at dusk").reference_media_ids
    []
    """

    model_config = ConfigDict(extra="forbid")

    user: str = Field(pattern=ID_PATTERN)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    reference_media_ids: list[Annotated[str, Field(pattern=MEDIA_ID)]] = Field(default_factory=list,
                                                                              max_length=MAX_REFERENCES)
    model: str | None = Field(default=None, min_length=1, max_length=100)


class GenerationAllowed(BaseModel):
    generation_id: str
    allowed: Literal[True] = True
    quota: dict[str, Any]


class GenerationRefusedError(ApiError):
    """Screening refused the request (audited first). The body keeps the API's ``reason`` and
    ``message`` and adds ``allowed: false``, ``reasons`` (rule codes) and ``matched``."""

    status: ClassVar[int] = 403
    reason = "generation_refused"

    def __init__(self, verdict: Verdict) -> None:
        super().__init__("the request was refused by the generation guard")
        self.verdict = verdict

    def body(self) -> dict[str, Any]:
        return {**super().body(), "allowed": False, "reasons": self.verdict.reasons, "matched": self.verdict.matched}


class RateLimitedError(ApiError):
    """A quota is spent (audited first); the route adds ``Retry-After``."""

    status: ClassVar[int] = 429
    reason = RATE_LIMITED

    def __init__(self, retry_after: int, quota: dict[str, Any], exhausted: Sequence[str]) -> None:
        super().__init__(f"quota spent ({', '.join(exhausted)}); retry after {retry_after} s")
        self.retry_after = retry_after
        self.quota = quota
        self.exhausted = list(exhausted)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "allowed": False, "reasons": [RATE_LIMITED], "retry_after": self.retry_after,
                "quota": self.quota}


class UnknownReferenceError(ApiError):
    status: ClassVar[int] = 404
    reason = "unknown_reference"


class ReferenceNotReadyError(ApiError):
    """The upload exists but the pipeline has not scored it yet: try again shortly."""

    status: ClassVar[int] = 409
    reason = "reference_not_ready"


def reference_from_item(media_id: str, item: dict[str, Any] | None) -> ReferenceEvidence:
    """What the pipeline already learnt about an upload: the detect stage's face count, the
    classifier's open_nsfw score and any block-bank match, read from the item instead of
    running the models again (the API function carries no model; the pipeline ran CenterFace
    and open_nsfw on this very upload)."""
    if item is None:
        raise UnknownReferenceError("no upload with this media id", media_id=media_id)
    scores = item.get("scores")
    if not isinstance(scores, dict):
        raise ReferenceNotReadyError("the upload has not been scored yet", media_id=media_id)
    faces = item.get("faces") or {}
    matches = item.get("matches") or []
    return ReferenceEvidence(ref=media_id, faces=int(faces.get("count") or 0),
                             nsfw=float(scores[NSFW_KEY]) if NSFW_KEY in scores else None,
                             blocked=any(isinstance(m, dict) and m.get("kind") == "block" for m in matches),
                             source="pipeline")


def _own_reference(media_id: str, owners: set[str], guard: GenGuard) -> ReferenceEvidence:
    """The reference's evidence if ``owners`` uploaded it; otherwise exactly an unknown id's 404."""
    if guard.uploader_of(media_id) not in owners:
        raise UnknownReferenceError("no upload with this media id", media_id=media_id)
    return guard.references(media_id)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class GenGuard:
    """Everything one request needs, as ports. ``clock`` is epoch seconds (the quota's time)."""

    settings: GenGuardSettings
    quota: QuotaStore
    ledger: GenerationLedger
    references: Callable[[str], ReferenceEvidence]
    # Who uploaded a media id: the subject of its upload grant (``ingress.grant.read_facts``),
    # None without one. The grant records no tenant, so ownership is by that pseudonymous id:
    # the platform's ``user`` for an end user's upload, the platform's subject for its own.
    uploader_of: Callable[[str], str | None]
    text_scorer: Callable[[str], list[TextScore]] | None = None
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)


def request_generation(request: GenerationRequest, tenant: str, actor: str, guard: GenGuard,
                       caller: str | None = None) -> GenerationAllowed:
    """Decide one request: :class:`GenerationAllowed`, or raise :class:`RateLimitedError` (429),
    :class:`GenerationRefusedError` (403), :class:`UnknownReferenceError` (404) or
    :class:`ReferenceNotReadyError` (409). Refusals are audited before they are raised.
    ``caller``: the platform's own subject; its uploads are references of any of its users.

    Example::

        allowed = request_generation(GenerationRequest(user="u1", prompt="a red fox"), "acme",
                                     "platform:acme-web", guard)
        allowed.generation_id, allowed.quota["user"]["minute"]["remaining"]
    """
    settings, ledger = guard.settings, guard.ledger
    sha = prompt_sha256(request.prompt)
    refusal: dict[str, Any] = {"prompt_sha": sha, "reference_media_ids": request.reference_media_ids,
                               "model": request.model}
    # Logs name neither user, tenant nor prompt hash: the tenant falls back to the caller's
    # subject, and a short prompt's sha256 is reversed by guessing; the audit chains hold them.
    # Only whether the tenant came from a claim (not the subject) is logged.
    log_ids = {"tenant_claim": caller is not None and tenant != caller}
    decision = guard.quota.take(buckets_for(tenant, request.user, settings.limits), guard.clock())
    if not decision.allowed:
        ledger.refused(tenant, request.user, actor, status=429, reasons=[RATE_LIMITED],
                       matched=[{"rule": RATE_LIMITED, "exhausted": list(decision.exhausted)}],
                       extra={"retry_after": decision.retry_after}, **refusal)
        logger.info("generation rate limited", extra={"exhausted": decision.exhausted,
                                                      "retry_after": decision.retry_after, **log_ids})
        raise RateLimitedError(decision.retry_after, decision.quota, decision.exhausted)
    owners = {request.user} | ({caller} if caller else set())
    references = [_own_reference(media_id, owners, guard) for media_id in request.reference_media_ids]
    scores = guard.text_scorer(request.prompt) if guard.text_scorer is not None else []
    verdict = screen(request.prompt, references, scores, reference_nsfw_threshold=settings.reference_nsfw_threshold)
    if not verdict.allowed:
        ledger.refused(tenant, request.user, actor, status=403, reasons=verdict.reasons, matched=verdict.matched,
                       extra={"text_models": [{"model": s.model, "sha256": s.sha256} for s in scores]} if scores
                       else None, **refusal)
        logger.info("generation refused", extra={"reasons": verdict.reasons, **log_ids})
        raise GenerationRefusedError(verdict)
    record = GenerationRecord(
        generation_id=guard.new_id(), user=request.user, tenant=tenant, prompt_sha256=sha,
        reference_media_ids=request.reference_media_ids, model=request.model, created=_now_iso(),
        prompt=request.prompt if settings.store_prompts else None)
    ledger.create(record, actor)
    logger.info("generation allowed", extra={"generation_id": record.generation_id,
                                             "references": len(references), **log_ids})
    return GenerationAllowed(generation_id=record.generation_id, quota=decision.quota)
