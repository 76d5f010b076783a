"""Frames: cut a video or an animation into the frames the classifier and matcher use;
fingerprint the first audio track of a video or an audio-only upload."""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
from pathlib import Path

from aws_lambda_powertools import Logger

from mediaguard import errors
from mediaguard.ingress import audio, video
from mediaguard.models import AudioTrack, FrameBatch, FrameRef, FramesInput, FramesResult
from mediaguard.ports import Deps
from mediaguard.signals import AudioSignal
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
    if request.sanitize.media_type == "audio":
        return _audio_only(request, deps, t0)
    track, removed = None, {}  # an animation's list was made by sanitize
    if request.sanitize.media_type == "video":
        # The version sanitize read and hashed, not whatever the key holds now.
        data, _ = blobs.get(request.bucket, request.key, version_id=request.sanitize.original_version_id)
        with tempfile.TemporaryDirectory(prefix="mg-frames-") as tmp:
            src = Path(tmp) / "original"
            src.write_bytes(data)
            del data
            info = video.probe(src, limits)  # duration, size and codec caps before any decoding
            # What the remux drops, listed as a still's sanitize lists it (scan --json's metadata_removed).
            removed = {"metadata_removed": list(info.metadata)}
            clean = Path(tmp) / "clean"
            plan = audio.video_audio_plan(info.container, info.audio_codec)
            fmt = video.remux_clean(src, clean, timeout=limits.timeout_s, audio=plan)
            frameset = video.extract_frames(clean, limits)
            if plan != "drop":
                track = _track(clean, fmt.demuxer, info.audio_codec or "", info.duration_s, plan, limits)
            elif info.audio_codec:
                logger.info("audio track dropped", extra={"media_id": media_id, "codec": info.audio_codec})
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
        audio=track,
    )
    items.update(media_id, {"sanitized_key": served_key, "sanitized_sha256": sanitized_sha256,
                            "poster_key": result.poster_key, "audio": audio_summary(track), **removed, "frames": {
        "count": result.count, "method": result.method, "truncated": result.truncated, "duration_s": result.duration_s,
        # Each analysed frame's time: the console draws the frames strip from the served video.
        "t": [r.t for r in refs]}})
    items.append_audit(media_id, "system:frames", "frames", {
        "count": result.count, "method": result.method, "truncated": result.truncated,
        "pdq": [r.pdq for r in refs], **({"audio_fingerprint": track.fingerprint} if track else {}), **removed})
    logger.info("frames", extra={"media_id": media_id, "count": result.count, "method": result.method,
                                 "truncated": result.truncated, "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result


def _track(path: Path, demuxer: str, codec: str, duration_s: float, plan: str, limits: video.VideoLimits) -> AudioTrack:
    """The served copy's first audio track, fingerprinted (what is served is what is matched)."""
    words = audio.fingerprint(path, demuxer, timeout=limits.timeout_s, max_seconds=limits.max_seconds)
    if plan == "reencode":
        codec = "opus" if demuxer == "matroska" else "aac"
    return AudioTrack(codec=codec, duration_s=duration_s, fingerprint_kind=audio.FINGERPRINT_KIND,
                      fingerprint=AudioSignal.format(words) if len(words) else None,
                      sanitize="reencode" if plan == "reencode" else "copy")


def audio_summary(track: AudioTrack | None) -> dict:
    """The item's ``audio`` field (and ``scan --json``'s): ``present`` false with null
    details when the media has no audio track (or one in a codec that is never decoded)."""
    if track is None:
        return {"present": False, "codec": None, "duration_s": None, "fingerprint_kind": None}
    return {"present": True, "codec": track.codec, "duration_s": track.duration_s,
            "fingerprint_kind": track.fingerprint_kind if track.fingerprint else None}


def _audio_only(request: FramesInput, deps: Deps, t0: float) -> FramesResult:
    """An audio-only upload: probed against the audio limits, rewritten without metadata
    (stream copy), fingerprinted from the rewritten copy. It has no frame: the classifier
    and detect maps run over no batch, and the similarity stage matches the fingerprint."""
    settings, blobs, items = deps.settings, deps.need("blobs"), deps.need("items")
    bucket = require(settings.media_bucket, "MEDIA_BUCKET")
    media_id = request.media_id
    limits = audio.AudioLimits.from_settings(settings)
    deadline = time.monotonic() + limits.timeout_s
    data, _ = blobs.get(request.bucket, request.key, version_id=request.sanitize.original_version_id)
    with tempfile.TemporaryDirectory(prefix="mg-audio-") as tmp:
        src = Path(tmp) / "original"
        src.write_bytes(data)
        del data
        info = audio.probe_audio(src, limits, deadline=deadline)
        clean = Path(tmp) / "clean"
        fmt = audio.remux_audio_clean(src, clean, timeout=max(0.1, deadline - time.monotonic()))
        words = audio.fingerprint(clean, fmt.demuxer, timeout=max(0.1, deadline - time.monotonic()),
                                  max_seconds=limits.max_seconds)
        served_key = sanitized_key(media_id, fmt.extension)
        clean_bytes = clean.read_bytes()
    sanitized_sha256 = hashlib.sha256(clean_bytes).hexdigest()
    blobs.put(bucket, served_key, clean_bytes, fmt.content_type)
    track = AudioTrack(codec=info.codec, duration_s=info.duration_s, fingerprint_kind=audio.FINGERPRINT_KIND,
                       fingerprint=AudioSignal.format(words) if len(words) else None)
    result = FramesResult(media_type="audio", method="audio", count=0, duration_s=info.duration_s,
                          sanitized_key=served_key, poster_key=None, frames=[], batches=[], audio=track)
    # What the remux dropped, listed as a still's sanitize lists it (scan --json's metadata_removed).
    removed = {"metadata_removed": list(info.metadata)}
    items.update(media_id, {"sanitized_key": served_key, "sanitized_sha256": sanitized_sha256,
                            "audio": audio_summary(track), **removed, "frames": {
        "count": 0, "method": "audio", "truncated": False, "duration_s": info.duration_s}})
    items.append_audit(media_id, "system:frames", "audio", {
        "codec": info.codec, "duration_s": info.duration_s, "audio_fingerprint": track.fingerprint, **removed})
    logger.info("audio", extra={"media_id": media_id, "codec": info.codec, "words": len(words),
                                "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result
