"""Sanitize + fingerprint: strip metadata, hash, write the sanitized copy; the original stays put."""

from __future__ import annotations

import hashlib
import time

from aws_lambda_powertools import Logger

from mediaguard import errors, observability
from mediaguard.ingress.audio import AudioFormat, sniff_av
from mediaguard.ingress.ingest import prepare
from mediaguard.ingress.kinds import M4A, MP4, WEBA
from mediaguard.ingress.media import check_size, open_image
from mediaguard.ingress.video import VideoFormat
from mediaguard.models import Fingerprints, FrameBatch, FrameRef, FramesResult, SanitizeResult, Upload
from mediaguard.ports import Deps
from mediaguard.stages.common import require, sanitized_key

logger = Logger(service="mediaguard", child=True)


def sanitize_and_fingerprint(upload: Upload, deps: Deps) -> SanitizeResult:
    """Sniff, strip metadata, fingerprint; write the sanitized copy, keep the original.

    A video is only sniffed and size-checked here: ffmpeg lives in the frames stage's
    layer (173 MB would push this function past Lambda's 250 MB), which remuxes it.
    """
    t0 = time.perf_counter()
    blobs, items = deps.need("blobs"), deps.need("items")
    if upload.run is not None and not items.claim_run(upload.media_id, upload.run, upload.execution or upload.run):
        # A duplicate of an ambiguous StartExecution, or a run a re-drive replaced: the
        # item's current run does the work; this one ends quietly (state ``Superseded``).
        logger.info("superseded run stopped", extra={"media_id": upload.media_id, "run": upload.run})
        raise errors.SupersededRunError("this execution is not the item's current run")
    # Exactly the pinned version: a reused upload form may have put newer bytes at the key.
    data, declared = blobs.get(upload.bucket, upload.key, version_id=upload.version_id)
    sha256 = hashlib.sha256(data).hexdigest()
    received = {"sha256": sha256, "size": len(data), "content_type": declared}
    fmt = sniff_av(data)
    if fmt is not None:
        items.update(upload.media_id, received)
        if isinstance(fmt, VideoFormat):
            return _accept_for_frames(upload, data, declared, fmt, sha256, deps, "video",
                                      deps.settings.max_video_bytes)
        return _accept_for_frames(upload, data, declared, fmt, sha256, deps, "audio",
                                  deps.settings.max_audio_bytes)
    try:
        return _sanitize_image(upload, data, declared, received, deps, t0)
    except Exception:
        # A rejected (or failed) upload still carries its evidence hash; an accepted one
        # gets it with the sanitized fields, in one write instead of two.
        items.update(upload.media_id, received)
        raise


def _sanitize_image(upload: Upload, data: bytes, declared: str | None, received: dict, deps: Deps,
                    t0: float) -> SanitizeResult:
    settings, blobs, items = deps.settings, deps.need("blobs"), deps.need("items")
    prepared = prepare(data, declared, settings)
    clean, fps = prepared.sanitized, prepared.fingerprints
    served = clean.kind  # HEIC is served as JPEG/PNG, TIFF as PNG
    key = sanitized_key(upload.media_id, served.extension)
    blobs.put(require(settings.media_bucket, "MEDIA_BUCKET"), key, clean.data, served.content_type)
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
        original_version_id=upload.version_id,
    )
    items.update(
        upload.media_id,
        {
            **received,
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
    items.append_audit(
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
    observability.count("Uploads", media_type=result.media_type)
    return result


def still_frames(key: str, fps: Fingerprints) -> FramesResult:
    """A still is its own single frame, so the classifier and matcher see one shape."""
    frame = FrameRef(index=0, key=key, pdq=fps.pdq, pdq_quality=fps.pdq_quality)
    return FramesResult(media_type="image", method="still", count=1, sanitized_key=key, poster_key=key,
                        frames=[frame], batches=[FrameBatch(batch=0, keys=[key], inline=True)])


def _accept_for_frames(upload: Upload, data: bytes, declared: str | None, fmt: AudioFormat | VideoFormat,
                       sha256: str, deps: Deps, media_type: str, max_bytes: int) -> SanitizeResult:
    """Video and audio are only sniffed and size-checked here: the frames stage (ffmpeg)
    probes them, rewrites them without metadata and fingerprints them."""
    items = deps.need("items")
    check_size(data, max_bytes)
    declared_type = (declared or "").split(";")[0].strip().lower()
    # An audio-only .mp4 or .webm is commonly declared as video (the file extension's type,
    # or a recorder's; for MP4 any of the ISO family the upload API grants): the container
    # is the same, and the audio size limit still applies.
    twin = {M4A: (MP4.content_type, *MP4.aliases), WEBA: ("video/webm",)}.get(fmt, ())
    if declared_type not in ("", fmt.content_type, *getattr(fmt, "aliases", ()), *twin, "application/octet-stream"):
        raise errors.ContentTypeMismatchError(f"declared {declared_type!r} but the bytes are {fmt.content_type}")
    items.update(upload.media_id, {"status": "sanitized", "kind": fmt.name, "media_type": media_type})
    items.append_audit(upload.media_id, "system:sanitize", f"{media_type}_accepted", {"sha256": sha256, "kind": fmt.name})
    observability.count("Uploads", media_type=media_type)
    logger.info(f"{media_type} accepted for frames",
                extra={"media_id": upload.media_id, "sha256": sha256, "kind": fmt.name})
    return SanitizeResult(
        media_id=upload.media_id, kind=fmt.name, media_type=media_type, content_type=fmt.content_type,
        sanitized_key=None, sanitized_sha256=None, method="remux", metadata_removed=[], width=0, height=0,
        fingerprints=None, provenance=None, original_version_id=upload.version_id,
    )
