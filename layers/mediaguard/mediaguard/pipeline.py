"""The pipeline stages as plain functions: one per Lambda, no AWS imports.

Every stage reads its typed input, does one job, records the result on the item
and in the item's audit chain, and returns a typed result for the next state.
"""

from __future__ import annotations

import hashlib
import io
import json
import time

from aws_lambda_powertools import Logger
from PIL import ImageFilter

from . import errors
from .ingest import prepare
from .media import load_rgb, open_image
from .models import (
    ClassifyInput,
    ClassifyResult,
    EnforceInput,
    EnforceResult,
    FailureInput,
    FailureResult,
    Match,
    SanitizeResult,
    ScoreInput,
    ScoreResult,
    SimilarityInput,
    SimilarityResult,
    Upload,
)
from .ports import Deps
from .scoring import load_policy, score

logger = Logger(service="mediaguard", child=True)

UPLOAD_PREFIX = "uploads/"
PDQ_MIN_QUALITY = 50  # below this PDQ hashes of flat images collide (industry practice)
PDQ_MAX_DISTANCE = 31


def upload_key(media_id: str) -> str:
    # The key carries no file name: names are user data and never leave the client.
    return f"{UPLOAD_PREFIX}{media_id}"


def media_id_from_key(key: str) -> str:
    if not key.startswith(UPLOAD_PREFIX) or "/" in key[len(UPLOAD_PREFIX) :]:
        raise errors.MediaRejectedError("object key is outside the upload prefix", reason="bad_key")
    return key[len(UPLOAD_PREFIX) :]


def _require(value: str | None, name: str) -> str:
    if not value:
        raise errors.MediaguardError(f"setting {name} is not configured", reason="misconfigured")
    return value


# --- start ------------------------------------------------------------------


def start(upload: Upload, deps: Deps) -> dict:
    """Start the workflow once per upload, however often S3 delivers the event.

    Express workflows do not deduplicate by execution name, so the item claim (a
    conditional write) is what makes a duplicated S3 event a no-op.
    """
    if not deps.items.claim(upload):
        logger.info("duplicate upload event ignored", extra={"media_id": upload.media_id})
        return {"media_id": upload.media_id, "started": False}
    # Audited before the execution starts, so "received" is always the chain's first record.
    deps.items.append_audit(upload.media_id, "system:start", "received", {"key": upload.key})
    try:
        execution = deps.workflow.start(upload.media_id, upload.model_dump())
    except Exception:
        deps.items.release_claim(upload.media_id)  # let S3's retry start it
        raise
    logger.info("workflow started", extra={"media_id": upload.media_id})
    return {"media_id": upload.media_id, "started": True, "execution": execution}


# --- sanitize + fingerprint -------------------------------------------------


def sanitize_and_fingerprint(upload: Upload, deps: Deps) -> SanitizeResult:
    """Sniff, strip metadata, fingerprint; write the sanitized copy, keep the original."""
    t0 = time.perf_counter()
    settings = deps.settings
    data, declared = deps.blobs.get(upload.bucket, upload.key)
    # Recorded before any check, so a rejected upload still carries its evidence hash.
    deps.items.update(
        upload.media_id,
        {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "content_type": declared},
    )
    prepared = prepare(data, declared, settings)
    clean, fps = prepared.sanitized, prepared.fingerprints
    served = clean.kind  # HEIC is served as JPEG/PNG, TIFF as PNG
    key = f"media/{upload.media_id}/sanitized.{served.extension}"
    deps.blobs.put(_require(settings.media_bucket, "MEDIA_BUCKET"), key, clean.data, served.content_type)
    result = SanitizeResult(
        media_id=upload.media_id,
        kind=prepared.kind.name,
        content_type=served.content_type,
        sanitized_key=key,
        sanitized_sha256=clean.sha256,
        method=clean.method,
        metadata_removed=clean.removed,
        width=clean.width,
        height=clean.height,
        fingerprints=fps,
        provenance=prepared.provenance,
    )
    deps.items.update(
        upload.media_id,
        {
            "status": "sanitized",
            "kind": prepared.kind.name,
            "provenance": result.provenance.model_dump(),
            "sanitized_key": key,
            "sanitized_sha256": clean.sha256,
            "metadata_removed": clean.removed,
            "pdq": fps.pdq,
            "pdq_quality": fps.pdq_quality,
            "phash": fps.phash,
            "dhash": fps.dhash,
        },
    )
    deps.items.append_audit(
        upload.media_id,
        "system:sanitize",
        "sanitized",
        {"sha256": fps.sha256, "sanitized_sha256": clean.sha256, "removed": clean.removed, "pdq": fps.pdq,
         "ai_generated": result.provenance.ai_generated, "c2pa": result.provenance.c2pa.state},
    )
    logger.info(
        "sanitized",
        extra={"media_id": upload.media_id, "sha256": fps.sha256, "pdq_quality": fps.pdq_quality,
               "ms": round((time.perf_counter() - t0) * 1000, 1)},
    )
    return result


# --- classify ---------------------------------------------------------------


def classify(request: ClassifyInput, deps: Deps) -> ClassifyResult:
    from .classify import get_classifier  # onnxruntime is only in the classifier's layer

    settings = deps.settings
    data, _ = deps.blobs.get(_require(settings.media_bucket, "MEDIA_BUCKET"), request.sanitized_key)
    # Draft-decode to >= 256 px: the model resizes to 256x256 anyway.
    rgb = load_rgb(open_image(data, settings.max_pixels), min_side=256)
    result = get_classifier(settings.onnx_threads).classify(rgb)
    out = ClassifyResult(nsfw=result.nsfw, model_id=result.model_id, model_sha256=result.model_sha256)
    deps.items.update(request.media_id, {"nsfw": out.nsfw, "model_id": out.model_id, "model_sha256": out.model_sha256})
    logger.info("classified", extra={"media_id": request.media_id, "nsfw": out.nsfw, "model_id": out.model_id})
    return out


# --- similarity -------------------------------------------------------------


def similarity(request: SimilarityInput, deps: Deps) -> SimilarityResult:
    """PDQ match against every bank: distance <= 31, hashes of quality < 50 ignored on both sides."""
    fps = request.fingerprints
    entries = deps.items.bank_entries()
    matches: list[Match] = []
    if fps.pdq_quality >= PDQ_MIN_QUALITY:
        query = int(fps.pdq, 16)
        for entry in entries:
            if entry.signal != "pdq" or (entry.quality is not None and entry.quality < PDQ_MIN_QUALITY):
                continue
            distance = (query ^ int(entry.value, 16)).bit_count()
            if distance <= (entry.threshold if entry.threshold is not None else PDQ_MAX_DISTANCE):
                matches.append(
                    Match(bank=entry.bank, kind=entry.kind, ref=entry.ref, signal="pdq", distance=distance,
                          action=entry.action)
                )
    matches.sort(key=lambda m: (m.distance, m.bank, m.ref))
    result = SimilarityResult(matches=matches, banks_checked=len({e.bank for e in entries}))
    deps.items.update(request.media_id, {"matches": [m.model_dump() for m in matches]})
    logger.info("matched", extra={"media_id": request.media_id, "matches": len(matches)})
    return result


# --- score ------------------------------------------------------------------


def score_item(request: ScoreInput, deps: Deps) -> ScoreResult:
    result = score(request.classify, request.similarity, load_policy(), request.provenance)
    deps.items.update(
        request.media_id,
        {"risk": result.risk, "action": result.action, "signals": [s.model_dump() for s in result.signals],
         "policy_version": result.policy_version, "override": result.override},
    )
    deps.items.append_audit(request.media_id, "system:score", "scored", result.model_dump())
    logger.info("scored", extra={"media_id": request.media_id, "risk": result.risk, "action": result.action})
    return result


# --- enforce ----------------------------------------------------------------


def blur_image(data: bytes, max_pixels: int) -> bytes:
    """A blurred JPEG derivative strong enough that nothing explicit survives."""
    rgb = load_rgb(open_image(data, max_pixels), min_side=512)
    radius = max(8, max(rgb.size) // 30)
    buf = io.BytesIO()
    rgb.filter(ImageFilter.GaussianBlur(radius)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def enforce(request: EnforceInput, deps: Deps) -> EnforceResult:
    settings = deps.settings
    action = request.score.action
    served: str | None = request.sanitized_key
    derivative = None
    if action == "blur":
        bucket = _require(settings.media_bucket, "MEDIA_BUCKET")
        data, _ = deps.blobs.get(bucket, request.sanitized_key)
        derivative = f"media/{request.media_id}/blurred.jpg"
        deps.blobs.put(bucket, derivative, blur_image(data, settings.max_pixels), "image/jpeg")
        served = derivative
    elif action in ("remove", "review"):
        served = None  # nothing is served until a person decides
    result = EnforceResult(action=action, served_key=served, derivative_key=derivative)
    deps.items.update(
        request.media_id,
        {"status": "done", "action": action, "served_key": served, "derivative_key": derivative},
    )
    deps.items.append_audit(request.media_id, "system:enforce", "enforced", result.model_dump())
    logger.info("enforced", extra={"media_id": request.media_id, "action": action})
    return result


# --- rejection and failure (the state machine's Catch) ------------------------

_REJECTIONS = {cls.__name__: cls for cls in errors.REJECTION_ERRORS}


def record_failure(request: FailureInput, deps: Deps) -> FailureResult:
    """Terminal bookkeeping for a caught error: reason on the item, the original kept
    and marked restricted, an audit record. Internal error text never reaches the item."""
    error_type = str(request.error.get("Error", "Unknown"))
    message = ""
    try:
        message = json.loads(request.error.get("Cause", "{}")).get("errorMessage", "")
    except (json.JSONDecodeError, AttributeError):
        message = ""
    rejected = error_type in _REJECTIONS
    status = "rejected" if rejected else "failed"
    reason = _REJECTIONS[error_type].reason if rejected else "internal_error"
    safe_message = message if rejected else "processing failed; see the execution history"
    deps.blobs.tag(request.bucket, request.key, {"mediaguard-state": status, "mediaguard-reason": reason})
    deps.items.update(
        request.media_id,
        {"status": status, "error_type": error_type, "error_reason": reason, "error_message": safe_message},
    )
    deps.items.append_audit(
        request.media_id, "system:catch", status, {"error_type": error_type, "reason": reason}
    )
    log = logger.info if rejected else logger.warning  # a rejection is an expected outcome
    log(status, extra={"media_id": request.media_id, "error_type": error_type, "reason": reason})
    return FailureResult(status=status, error_type=error_type, reason=reason)
