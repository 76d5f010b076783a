"""Frames: cut a video or an animation into the frames the classifier and matcher use."""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
from pathlib import Path

from aws_lambda_powertools import Logger

from mediaguard import errors
from mediaguard.ingress import video
from mediaguard.models import FrameBatch, FrameRef, FramesInput, FramesResult
from mediaguard.ports import Deps
from mediaguard.stages.common import frame_key, require, sanitized_key

logger = Logger(service="mediaguard", child=True)

FRAME_BATCH = 8  # frames per classifier invocation: one forward pass, well inside 256 KB of results


def frames(request: FramesInput, deps: Deps) -> FramesResult:
    """A video is remuxed here without metadata (the served copy); an animation was
    already sanitized and is read back from the media bucket."""
    t0 = time.perf_counter()
    settings, blobs, items = deps.settings, deps.need("blobs"), deps.need("items")
    bucket = require(settings.media_bucket, "MEDIA_BUCKET")
    media_id = request.media_id
    limits = video.VideoLimits.from_settings(settings)
    if request.sanitize.media_type == "video":
        # The version sanitize read and hashed, not whatever the key holds now.
        data, _ = blobs.get(request.bucket, request.key, version_id=request.sanitize.original_version_id)
        with tempfile.TemporaryDirectory(prefix="mg-frames-") as tmp:
            src = Path(tmp) / "original"
            src.write_bytes(data)
            del data
            video.probe(src, limits)  # duration, size and codec caps before any decoding
            clean = Path(tmp) / "clean"
            fmt = video.remux_clean(src, clean, timeout=limits.timeout_s)
            frameset = video.extract_frames(clean, limits)
            served_key = sanitized_key(media_id, fmt.extension)
            clean_bytes = clean.read_bytes()
            # Recorded like a still's: enforcement checks the evidence copy against it.
            sanitized_sha256 = hashlib.sha256(clean_bytes).hexdigest()
            blobs.put(bucket, served_key, clean_bytes, fmt.content_type)
            del clean_bytes
    else:
        served_key = require(request.sanitize.sanitized_key, "sanitized_key")
        sanitized_sha256 = request.sanitize.sanitized_sha256
        data, _ = blobs.get(bucket, served_key)
        frameset = video.extract_animated_frames(data, limits)
    hashes = video.pdq_frames(frameset)
    refs = []
    for frame, (pdq, quality) in zip(frameset.frames, hashes, strict=True):
        key = frame_key(media_id, frame.index)
        buf = io.BytesIO()
        frame.image.save(buf, "JPEG", quality=90)
        blobs.put(bucket, key, buf.getvalue(), "image/jpeg")
        refs.append(FrameRef(index=frame.index, t=round(frame.t_seconds, 3), key=key, pdq=pdq, pdq_quality=quality))
    if not refs:
        raise errors.CorruptMediaError("no decodable frames")
    keys = [r.key for r in refs]
    batches = [FrameBatch(batch=i // FRAME_BATCH, keys=keys[i : i + FRAME_BATCH]) for i in range(0, len(keys), FRAME_BATCH)]
    result = FramesResult(
        media_type=request.sanitize.media_type, method=frameset.method, count=len(refs), truncated=frameset.truncated,
        duration_s=frameset.duration_s, sanitized_key=served_key, poster_key=refs[0].key, frames=refs, batches=batches,
    )
    items.update(media_id, {"sanitized_key": served_key, "sanitized_sha256": sanitized_sha256,
                            "poster_key": result.poster_key, "frames": {
        "count": result.count, "method": result.method, "truncated": result.truncated, "duration_s": result.duration_s}})
    items.append_audit(media_id, "system:frames", "frames", {
        "count": result.count, "method": result.method, "truncated": result.truncated,
        "pdq": [r.pdq for r in refs]})
    logger.info("frames", extra={"media_id": media_id, "count": result.count, "method": result.method,
                                 "truncated": result.truncated, "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result
