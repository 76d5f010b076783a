"""The pipeline stages as plain functions: one per Lambda, no AWS imports.

Every stage reads its typed input, does one job, records the result on the item
and in the item's audit chain, and returns a typed result for the next state.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from aws_lambda_powertools import Logger

from mediaguard import errors
from mediaguard.analysis.matching import DELTA_SECONDS, MANIFEST_KEY, BankReader, BuiltIndex, Matcher, Query, fetch, publish
from mediaguard.decisions.scoring import ScoreInputs, score, select_policies
from mediaguard.ingress.ingest import prepare
from mediaguard.ingress.media import check_size, load_rgb, open_image
from mediaguard.ingress.video import VideoFormat, sniff_video
from mediaguard.models import (
    ClassifyInput,
    ClassifyResult,
    EnforceInput,
    EnforceResult,
    FailureInput,
    FailureResult,
    Fingerprints,
    FrameBatch,
    FrameRef,
    FrameScores,
    FramesInput,
    FramesResult,
    ModelRef,
    SanitizeResult,
    ScoreInput,
    ScoreResult,
    SimilarityInput,
    SimilarityResult,
    Upload,
)
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)

UPLOAD_PREFIX = "uploads/"


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
    history = deps.extras.get("history")
    if history is not None:
        from mediaguard.decisions.review import uploader_of

        uploader = uploader_of(upload.media_id, deps)
        if uploader:  # uploads outside the upload API (e.g. the CLI) have no uploader
            history.record_upload(uploader, upload.media_id)
    logger.info("workflow started", extra={"media_id": upload.media_id})
    return {"media_id": upload.media_id, "started": True, "execution": execution}


# --- sanitize + fingerprint -------------------------------------------------


def sanitize_and_fingerprint(upload: Upload, deps: Deps) -> SanitizeResult:
    """Sniff, strip metadata, fingerprint; write the sanitized copy, keep the original.

    A video is only sniffed and size-checked here: ffmpeg lives in the frames stage's
    layer (173 MB would push this function past Lambda's 250 MB), which remuxes it.
    """
    t0 = time.perf_counter()
    settings = deps.settings
    data, declared = deps.blobs.get(upload.bucket, upload.key)
    # Recorded before any check, so a rejected upload still carries its evidence hash.
    sha256 = hashlib.sha256(data).hexdigest()
    deps.items.update(upload.media_id, {"sha256": sha256, "size": len(data), "content_type": declared})
    fmt = sniff_video(data[:4096])
    if fmt is not None:
        return _accept_video(upload, data, declared, fmt, sha256, deps)
    prepared = prepare(data, declared, settings)
    clean, fps = prepared.sanitized, prepared.fingerprints
    served = clean.kind  # HEIC is served as JPEG/PNG, TIFF as PNG
    key = f"media/{upload.media_id}/sanitized.{served.extension}"
    deps.blobs.put(_require(settings.media_bucket, "MEDIA_BUCKET"), key, clean.data, served.content_type)
    animated = served.name in ("gif", "webp", "png") and getattr(open_image(clean.data, settings.max_pixels),
                                                                    "n_frames", 1) > 1
    result = SanitizeResult(
        media_id=upload.media_id,
        kind=prepared.kind.name,
        media_type="animation" if animated else "image",
        content_type=served.content_type,
        sanitized_key=key,
        sanitized_sha256=clean.sha256,
        method=clean.method,
        metadata_removed=clean.removed,
        width=clean.width,
        height=clean.height,
        fingerprints=fps,
        provenance=prepared.provenance,
        frames=None if animated else still_frames(key, fps),
    )
    deps.items.update(
        upload.media_id,
        {
            "status": "sanitized",
            "kind": prepared.kind.name,
            "media_type": result.media_type,
            "provenance": result.provenance.model_dump() if result.provenance else None,
            "sanitized_key": key,
            "sanitized_sha256": clean.sha256,
            "metadata_removed": clean.removed,
            **fps.item_fields(),  # pdq, pdq_quality, phash, dhash: what signals.item_fields() names
        },
    )
    deps.items.append_audit(
        upload.media_id,
        "system:sanitize",
        "sanitized",
        {"sha256": fps.sha256, "sanitized_sha256": clean.sha256, "removed": clean.removed, "pdq": fps.pdq,
         "ai_generated": result.provenance.ai_generated if result.provenance else False,
         "c2pa": result.provenance.c2pa.state if result.provenance else None},
    )
    logger.info(
        "sanitized",
        extra={"media_id": upload.media_id, "sha256": fps.sha256, "pdq_quality": fps.pdq_quality,
               "media_type": result.media_type, "ms": round((time.perf_counter() - t0) * 1000, 1)},
    )
    return result


def still_frames(key: str, fps: Fingerprints) -> FramesResult:
    """A still is its own single frame, so the classifier and matcher see one shape."""
    frame = FrameRef(index=0, key=key, pdq=fps.pdq, pdq_quality=fps.pdq_quality)
    return FramesResult(media_type="image", method="still", count=1, sanitized_key=key, poster_key=key,
                        frames=[frame], batches=[FrameBatch(batch=0, keys=[key])])


def _accept_video(upload: Upload, data: bytes, declared: str | None, fmt: VideoFormat, sha256: str,
                  deps: Deps) -> SanitizeResult:
    settings = deps.settings
    check_size(data, settings.max_video_bytes)
    declared_type = (declared or "").split(";")[0].strip().lower()
    if declared_type not in ("", fmt.content_type, "application/octet-stream"):
        raise errors.ContentTypeMismatchError(f"declared {declared_type!r} but the bytes are {fmt.content_type}")
    deps.items.update(upload.media_id, {"status": "sanitized", "kind": fmt.name, "media_type": "video"})
    deps.items.append_audit(upload.media_id, "system:sanitize", "video_accepted", {"sha256": sha256, "kind": fmt.name})
    logger.info("video accepted for frames", extra={"media_id": upload.media_id, "sha256": sha256, "kind": fmt.name})
    return SanitizeResult(
        media_id=upload.media_id, kind=fmt.name, media_type="video", content_type=fmt.content_type,
        sanitized_key=None, sanitized_sha256=None, method="remux", metadata_removed=[], width=0, height=0,
        fingerprints=None, provenance=None,
    )


# --- frames -------------------------------------------------------------------

FRAME_BATCH = 8  # frames per classifier invocation: one forward pass, well inside 256 KB of results


def frames(request: FramesInput, deps: Deps) -> FramesResult:
    """Cut an animation or a video into the frames the classifier and matcher use.

    A video is remuxed here without metadata (the served copy); an animation was
    already sanitized and is read back from the media bucket.
    """
    from mediaguard.ingress import video  # ffmpeg (imageio-ffmpeg) is only in this stage's layer

    t0 = time.perf_counter()
    settings = deps.settings
    bucket = _require(settings.media_bucket, "MEDIA_BUCKET")
    media_id = request.media_id
    limits = video.VideoLimits.from_settings(settings)
    if request.sanitize.media_type == "video":
        data, _ = deps.blobs.get(request.bucket, request.key)
        with tempfile.TemporaryDirectory(prefix="mg-frames-") as tmp:
            src = Path(tmp) / "original"
            src.write_bytes(data)
            del data
            video.probe(src, limits)  # duration, size and codec caps before any decoding
            clean = Path(tmp) / "clean"
            fmt = video.remux_clean(src, clean, timeout=limits.timeout_s)
            frameset = video.extract_frames(clean, limits)
            sanitized_key = f"media/{media_id}/sanitized.{fmt.extension}"
            clean_bytes = clean.read_bytes()
            # Recorded like a still's: enforcement checks the evidence copy against it.
            sanitized_sha256 = hashlib.sha256(clean_bytes).hexdigest()
            deps.blobs.put(bucket, sanitized_key, clean_bytes, fmt.content_type)
            del clean_bytes
    else:
        sanitized_key = _require(request.sanitize.sanitized_key, "sanitized_key")
        sanitized_sha256 = request.sanitize.sanitized_sha256
        data, _ = deps.blobs.get(bucket, sanitized_key)
        frameset = video.extract_animated_frames(data, limits)
    hashes = video.pdq_frames(frameset)
    refs = []
    for frame, (pdq, quality) in zip(frameset.frames, hashes, strict=True):
        key = f"media/{media_id}/frames/{frame.index:05d}.jpg"
        buf = io.BytesIO()
        frame.image.save(buf, "JPEG", quality=90)
        deps.blobs.put(bucket, key, buf.getvalue(), "image/jpeg")
        refs.append(FrameRef(index=frame.index, t=round(frame.t_seconds, 3), key=key, pdq=pdq, pdq_quality=quality))
    if not refs:
        raise errors.CorruptMediaError("no decodable frames")
    keys = [r.key for r in refs]
    batches = [FrameBatch(batch=i // FRAME_BATCH, keys=keys[i : i + FRAME_BATCH]) for i in range(0, len(keys), FRAME_BATCH)]
    result = FramesResult(
        media_type=request.sanitize.media_type, method=frameset.method, count=len(refs), truncated=frameset.truncated,
        duration_s=frameset.duration_s, sanitized_key=sanitized_key, poster_key=refs[0].key, frames=refs, batches=batches,
    )
    deps.items.update(media_id, {"sanitized_key": sanitized_key, "sanitized_sha256": sanitized_sha256,
                                 "poster_key": result.poster_key, "frames": {
        "count": result.count, "method": result.method, "truncated": result.truncated, "duration_s": result.duration_s}})
    deps.items.append_audit(media_id, "system:frames", "frames", {
        "count": result.count, "method": result.method, "truncated": result.truncated,
        "pdq": [r.pdq for r in refs]})
    logger.info("frames", extra={"media_id": media_id, "count": result.count, "method": result.method,
                                 "truncated": result.truncated, "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result


# --- classify ---------------------------------------------------------------


def classify(request: ClassifyInput, deps: Deps) -> ClassifyResult:
    """Score one batch of frames with every configured model in one forward pass each.

    The embeddings (open_nsfw's pooled layer, free with the same pass) go to the media
    bucket as one .npy per batch for the similarity stage.
    """
    from mediaguard.analysis.classify import get_classifiers  # onnxruntime is only in the classifier's layer

    t0 = time.perf_counter()
    settings = deps.settings
    bucket = _require(settings.media_bucket, "MEDIA_BUCKET")
    # Draft-decode to >= 256 px: every model resizes to 224-256 px anyway.
    images = [load_rgb(open_image(deps.blobs.get(bucket, key)[0], settings.max_pixels), min_side=256)
              for key in request.batch.keys]
    scores: list[dict[str, float]] = [{} for _ in images]
    embeddings = None
    models = []
    for classifier in get_classifiers(settings):
        outputs = classifier.classify_batch(images)
        for frame_scores, output in zip(scores, outputs, strict=True):
            frame_scores.update({name: round(float(v), 6) for name, v in output.scores.items()})
        if embeddings is None and outputs and outputs[0].embedding is not None:
            embeddings = np.stack([o.embedding for o in outputs]).astype(np.float32)
        models.append(ModelRef(id=classifier.model_id, sha256=classifier.sha256))
    embeddings_key = None
    if embeddings is not None:
        embeddings_key = f"media/{request.media_id}/embeddings/{request.batch.batch:04d}.npy"
        buf = io.BytesIO()
        np.save(buf, embeddings, allow_pickle=False)
        deps.blobs.put(bucket, embeddings_key, buf.getvalue(), "application/octet-stream")
    result = ClassifyResult(
        batch=request.batch.batch,
        frames=[FrameScores(key=k, scores=sc) for k, sc in zip(request.batch.keys, scores, strict=True)],
        models=models,
        embeddings_key=embeddings_key,
    )
    logger.info("classified", extra={"media_id": request.media_id, "batch": request.batch.batch,
                                     "frames": len(images), "max": result.max_scores(),
                                     "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result


# --- similarity -------------------------------------------------------------


def similarity(request: SimilarityInput, deps: Deps) -> SimilarityResult:
    """Match every frame (PDQ and, for stills, its eight rotations/mirrors; vPDQ for videos)
    and every frame's embedding against the banks: the newest index build plus the delta."""
    t0 = time.perf_counter()
    settings = deps.settings
    matcher = get_matcher(deps)
    embeddings = []
    for batch in sorted(request.classify, key=lambda b: b.batch):
        if batch.embeddings_key:
            data, _ = deps.blobs.get(_require(settings.media_bucket, "MEDIA_BUCKET"), batch.embeddings_key)
            embeddings.append(np.load(io.BytesIO(data), allow_pickle=False))
    frames = request.frames
    query = Query(
        frames=[(f.pdq, f.pdq_quality) for f in frames.frames],
        dihedral=request.fingerprints.pdq_dihedral if request.fingerprints and frames.media_type == "image" else [],
        embeddings=np.concatenate(embeddings) if embeddings else None,
        is_video=frames.media_type != "image",
    )
    matches = matcher.match(query)
    result = SimilarityResult(matches=matches, banks_checked=matcher.banks_checked)
    deps.items.update(request.media_id, {"matches": [m.model_dump() for m in matches]})
    logger.info("matched", extra={"media_id": request.media_id, "matches": len(matches),
                                  "signals": sorted({m.signal for m in matches}), "delta": matcher.delta_size,
                                  "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result


def get_matcher(deps: Deps) -> Matcher:
    """One matcher per process (kept on the cached deps), switched to a newer index build
    when the manifest changes; the delta refreshes itself inside ``match``."""
    state = deps.extras.setdefault("matching", {"matcher": None, "checked": float("-inf")})

    def clock() -> float:
        # Replaceable (deps.extras["clock"]) so a test can let a minute pass without waiting one.
        return deps.extras.get("clock", time.time)()

    matcher: Matcher | None = state["matcher"]
    if matcher is None:
        matcher = state["matcher"] = Matcher(_require_reader(deps), clock=clock,
                                             default_cosine=deps.settings.embedding_min_cosine)
    now = clock()
    if now - state["checked"] >= DELTA_SECONDS:
        state["checked"] = now
        bucket = _require(deps.settings.media_bucket, "MEDIA_BUCKET")
        manifest = deps.blobs.get_json(bucket, MANIFEST_KEY)
        if manifest and float(manifest["built_at"]) != matcher.build.built_at:
            root = Path(tempfile.gettempdir()) / "mediaguard-index"
            matcher.use_build(fetch(manifest, lambda key, path: deps.blobs.download(bucket, key, path), root))
            logger.info("index loaded", extra={"built_at": manifest["built_at"], "pdq": manifest["pdq_entries"],
                                               "embeddings": manifest["embedding_entries"]})
    return matcher


def _require_reader(deps: Deps) -> BankReader:
    if deps.bank_reader is None:
        raise errors.MediaguardError("no bank reader configured", reason="misconfigured")
    return deps.bank_reader


def build_index(deps: Deps) -> dict:
    """Rebuild the bank index from every active entry and publish it (scheduled).

    The build is stamped with the time *before* the entries are read, so anything that
    changes while they are read is still picked up by the similarity stage's delta."""
    t0 = time.perf_counter()
    built_at = time.time()
    build = BuiltIndex.build(_require_reader(deps).active_entries(), built_at)
    bucket = _require(deps.settings.media_bucket, "MEDIA_BUCKET")
    manifest = publish(build, lambda key, data: deps.blobs.put(bucket, key, data, "application/octet-stream"))
    logger.info("index published", extra={"built_at": built_at, "pdq": manifest["pdq_entries"],
                                          "embeddings": manifest["embedding_entries"],
                                          "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return {k: manifest[k] for k in ("built_at", "pdq_entries", "embedding_entries")}


# --- score ------------------------------------------------------------------


def score_item(request: ScoreInput, deps: Deps) -> ScoreResult:
    """Composite risk with every signal's contribution, the active policy's action and what
    the shadow policy would have done; the inputs are stored so the decision can be replayed."""
    settings = deps.settings
    active, shadow = select_policies(settings.policy, settings.shadow_policy)
    from mediaguard.decisions.review import uploader_of

    item = deps.items.get(request.media_id) or {}
    history = deps.extras.get("history")
    uploader = uploader_of(request.media_id, deps, item) if history is not None else None
    snapshot = history.snapshot(uploader) if history is not None and uploader else None
    inputs = ScoreInputs(classifier=request.classifier_scores(), matches=request.similarity.matches,
                         provenance=request.provenance, history=snapshot)
    result = score(inputs, active, shadow)
    models = {m.id: m.sha256 for batch in request.classify for m in batch.models}
    deps.items.update(
        request.media_id,
        {"risk": result.risk, "action": result.action, "signals": [s.model_dump() for s in result.signals],
         "policy_version": result.policy_version, "override": result.override, "escalate": result.escalate,
         "shadow": result.shadow.model_dump() if result.shadow else None,
         "score_inputs": inputs.model_dump(mode="json"), "scores": inputs.classifier,
         "models": [{"id": k, "sha256": v} for k, v in sorted(models.items())]},
    )
    deps.items.append_audit(request.media_id, "system:score", "scored",
                            {**result.model_dump(), "models": sorted(models.items())})
    logger.info("scored", extra={"media_id": request.media_id, "risk": result.risk, "action": result.action,
                                 "escalate": result.escalate,
                                 "shadow_differs": bool(result.shadow and result.shadow.differs)})
    return result


# --- enforce ----------------------------------------------------------------


def enforce(request: EnforceInput, deps: Deps) -> EnforceResult:
    """Apply the scored action: audited, evented, safe to retry (see :mod:`mediaguard.decisions.enforcement`)."""
    from mediaguard.decisions import enforcement
    from mediaguard.decisions.review import upload_facts

    score = request.score
    item = deps.items.get(request.media_id) or {}
    uploader, reach = upload_facts(request.media_id, deps, item)
    context = {"risk": score.risk, "policy_version": score.policy_version, "sanitized_key": request.sanitized_key,
               "poster_key": request.poster_key, "reach": reach}
    decision = enforcement.apply(request.media_id, score.action, actor="system:enforce",
                                 reason=enforcement.reason_from_score(score), context=context, deps=deps)
    deps.items.update(request.media_id, {"status": "done", "reach": reach})
    history = deps.extras.get("history")
    if history is not None and uploader:
        history.record_outcome(uploader, request.media_id, decision.action,
                               {m["kind"] for m in item.get("matches") or []})
    logger.info("enforced", extra={"media_id": request.media_id, "action": decision.action})
    return EnforceResult(action=decision.action, served_key=decision.served_key, derivative_key=decision.derivative_key)


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
