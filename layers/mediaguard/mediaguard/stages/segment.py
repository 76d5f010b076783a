"""Segment: one live HLS segment (an S3 object IVS recorded) through the upload pipeline's
analysis, then the stream's state machine (``decisions.live``) and its effects.

Per segment: remux MPEG-TS to MP4 (no re-encode) → keyframes with the frames stage's
``video.extract_frames`` → PDQ per frame → the Classify and Detect functions on those
frames (the very handlers uploads go through) → bank matching with the similarity
stage's matcher (PDQ of each frame, a banked still seen in a frame, vPDQ, embeddings,
and the Chromaprint fingerprint of the stream's last ~10 s of audio: ``audio_window``)
→ ``scoring.score`` with the active policy → ``live.observe``. A change of state or
overlays is audited on ``stream:<id>``, published as a ``mediaguard.stream`` event and,
when a stream is first restricted, the segment becomes a review item in the fast lane.
The stream's current state goes to the player as IVS timed metadata with every segment:
timed metadata reaches only viewers watching at that moment, so a viewer who joins a
restricted stream later learns its overlays from the next segment's.

Key layout IVS writes (Low-Latency User Guide, "Auto-Record to Amazon S3")::

    ivs/v1/<account>/<channel_id>/<y>/<m>/<d>/<h>/<min>/<recording_id>/media/hls/<rendition>/<n>.ts
    ivs/v1/<account>/<channel_id>/<y>/<m>/<d>/<h>/<min>/<recording_id>/events/recording-ended.json
"""

from __future__ import annotations

import io
import json
import math
import re
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from mediaguard.analysis.matching import Query
from mediaguard.decisions import live
from mediaguard.decisions.scoring import ScoreInputs, score, select_policies
from mediaguard.errors import MediaguardError, ObjectMissingError
from mediaguard.ingress import audio, video
from mediaguard.models import ClassifyInput, DetectInput, FrameBatch, Match
from mediaguard.ports import BlobStore, Deps, LivePorts, MissingPortError, StreamRecord
from mediaguard.signals import AudioSignal
from mediaguard.stages import embeddings as carried
from mediaguard.stages.common import frame_key, require, sanitized_key
from mediaguard.stages.similarity import get_matcher

logger = Logger(service="mediaguard", child=True)

RECORDING_KEY = re.compile(
    r"^ivs/v1/(?P<account>\d{12})/(?P<channel>[A-Za-z0-9-]{1,64})/\d{4}/\d{1,2}/\d{1,2}/\d{1,2}/\d{1,2}/"
    r"(?P<recording>[A-Za-z0-9-]{1,64})/(?P<rest>.+)$")
SEGMENT_FILE = re.compile(r"^media/hls/(?P<rendition>[A-Za-z0-9_-]{1,32})/(?P<name>[A-Za-z0-9_-]*?)(?P<n>\d{1,9})\.ts$")
ENDED_FILE = "events/recording-ended.json"
# An IVS segment is a few seconds of video: anything this large is not one.
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
# Concurrent writers on one stream (segments analysed in parallel) retry their write this often.
MAX_WRITE_ATTEMPTS = 8
# The audio a segment is matched by: the stream's last ~10 s, this segment included. A 2 s
# segment alone yields no Chromaprint word at all (its filters need ~2.3 s of audio before
# the first; measured: 0 words per 2 s HLS segment, 27 for 6 s, 59 for 10 s), and a
# match needs AudioSignal.min_words (24) judged words, so one segment can never match.
# 10 s is the pre-broadcast gate's length: a voice heard from the start is matched before
# the gate opens. The window is re-read from the recording bucket (the earlier segments,
# ~1-2 MB in all) rather than kept on the stream's row: it is the same bytes whatever
# order the segments' events arrive in, it needs no write, and words cannot be kept per
# segment anyway (each segment's words depend on the audio before it).
AUDIO_WINDOW_SECONDS = 10.0
MAX_WINDOW_SEGMENTS = 10


class UnknownRecordingKeyError(MediaguardError):
    """An object in the recording bucket that is not an IVS segment or recording event."""

    reason = "unknown_recording_key"


class StreamNotFoundError(MediaguardError):
    """No stream with this id (no segment of that recording was ever analysed)."""

    reason = "stream_not_found"


class StreamContentionError(MediaguardError):
    """The stream kept changing under a write (segments and a person acting at once)."""

    reason = "contention"


@dataclass(frozen=True)
class RecordingObject:
    channel_arn: str
    stream_id: str  # the IVS recording id: one per broadcast
    kind: str  # "segment" | "ended"
    segment: int | None = None


def parse_key(key: str, region: str, partition: str = "aws") -> RecordingObject:
    """Which stream and segment a recording-bucket key belongs to."""
    m = RECORDING_KEY.match(key)
    if not m:
        raise UnknownRecordingKeyError("not an IVS recording key")
    arn = f"arn:{partition}:ivs:{region}:{m['account']}:channel/{m['channel']}"
    if m["rest"] == ENDED_FILE:
        return RecordingObject(arn, m["recording"], "ended")
    seg = SEGMENT_FILE.match(m["rest"])
    if not seg:
        raise UnknownRecordingKeyError("not an HLS segment of an IVS recording")
    return RecordingObject(arn, m["recording"], "segment", int(seg["n"]))


def segment_media_id(stream_id: str, segment: int) -> str:
    """The review item of one segment (the review API accepts ``[A-Za-z0-9_-]{1,80}``, so not
    ``stream:<id>:<n>``); the audit chain of the stream itself is ``stream:<id>``."""
    return f"live-{stream_id}-{segment:06d}"


def stream_chain(stream_id: str) -> str:
    return f"stream:{stream_id}"


def sibling_key(key: str, segment: int) -> str:
    """The key of segment ``segment`` of the same recording and rendition as ``key``."""
    head, name = key.rsplit("/", 1)
    m = SEGMENT_FILE.match(f"media/hls/x/{name}")
    if not m:
        raise UnknownRecordingKeyError("not an HLS segment of an IVS recording")
    return f"{head}/{m['name']}{segment}.ts"


def window_segments(segment: int, duration_s: float) -> list[int]:
    """The earlier segments whose audio joins ``segment``'s in its audio window, oldest first.

    >>> window_segments(7, 2.0)
    [3, 4, 5, 6]
    """
    per = max(duration_s, AUDIO_WINDOW_SECONDS / MAX_WINDOW_SEGMENTS)
    count = min(segment, math.ceil(AUDIO_WINDOW_SECONDS / per - 0.01) - 1)
    return list(range(segment - count, segment))


def _earlier_segments(bucket: str, key: str, segment: int, blobs: BlobStore) -> Callable[[float], list[bytes]]:
    """Reads the window's earlier segments (in parallel) once the segment's duration is known.
    A missing or foreign one cuts the window there: only the contiguous run before the
    segment is used, so the audio that is fingerprinted is the audio that was broadcast."""

    def get(n: int) -> bytes | None:
        try:
            data, _ = blobs.get(bucket, sibling_key(key, n))
        except ObjectMissingError:
            return None
        return data if len(data) <= MAX_SEGMENT_BYTES and video.is_mpegts(data[:3 * video.TS_PACKET]) else None

    def fetch(duration_s: float) -> list[bytes]:
        numbers = window_segments(segment, duration_s)
        if not numbers:
            return []
        with ThreadPoolExecutor(max_workers=len(numbers)) as pool:
            found = list(pool.map(get, numbers))
        kept: list[bytes] = []
        for data in reversed(found):  # newest first: stop at the first gap
            if data is None:
                break
            kept.append(data)
        return kept[::-1]

    return fetch


def audio_window(segment_ts: Path, earlier: list[bytes], timeout: float) -> str | None:
    """The Chromaprint fingerprint (``AudioSignal``'s string form) of the stream's last
    ~``AUDIO_WINDOW_SECONDS``: the earlier segments' MPEG-TS bytes and this one's, joined
    (HLS segments of one rendition are one continuous transport stream cut at keyframes)
    and fingerprinted as one. None when the window is too short to fingerprint."""
    window = segment_ts.with_name("window.ts")
    window.write_bytes(b"".join([*earlier, segment_ts.read_bytes()]))
    words = audio.fingerprint(window, "mpegts", timeout=timeout)
    return AudioSignal.format(words) if len(words) else None


# --- the per-segment analysis (library calls only; no stream state) ------------------------


@dataclass
class SegmentAnalysis:
    media_id: str
    duration_s: float
    start_s: float  # presentation time of the segment's first packet
    frames: int
    matches: list[Match]
    result: Any  # models.ScoreResult
    served_key: str  # where the remuxed segment goes if it is queued for review (what a reviewer sees)
    poster_key: str
    mp4: bytes = b""  # the remuxed segment; stored only for a segment that goes to review


def analyse(data: bytes, media_id: str, deps: Deps, ports: LivePorts,
            earlier: Callable[[float], list[bytes]] | None = None) -> SegmentAnalysis:
    """Frames, classifier, faces/AI, matching and scoring of one segment's bytes; with
    ``earlier`` (the window's earlier segments, given this one's duration), its audio window too."""
    settings, blobs = deps.settings, deps.need("blobs")
    bucket = require(settings.media_bucket, "MEDIA_BUCKET")
    limits = video.VideoLimits.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="mg-live-") as tmp:
        src, mp4 = Path(tmp) / "segment.ts", Path(tmp) / "segment.mp4"
        src.write_bytes(data)
        video.remux_segment(src, mp4, timeout=limits.timeout_s)
        info = video.probe(mp4, limits)
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The audio window (S3 reads, then one ffmpeg) runs beside the keyframe extraction.
            fingerprint = pool.submit(_window_fingerprint, src, info, earlier, limits.timeout_s)
            frameset = video.extract_frames(mp4, limits)
            hashes = video.pdq_frames(frameset)
            window = fingerprint.result()
        served, mp4_bytes = sanitized_key(media_id, "mp4"), mp4.read_bytes()
    keys = []
    for frame in frameset.frames:
        buf = io.BytesIO()
        frame.image.save(buf, "JPEG", quality=90)
        keys.append(frame_key(media_id, frame.index))
        blobs.put(bucket, keys[-1], buf.getvalue(), "image/jpeg")
    batch = FrameBatch(batch=0, keys=keys)
    # Classify (open_nsfw + plug-ins) and Detect (faces, AI probe) side by side: they are
    # separate functions, and the segment's latency is the slower of the two, not the sum.
    frames = ports.analysis
    if frames is None:
        raise MissingPortError("the segment stage needs the classify/detect functions")
    with ThreadPoolExecutor(max_workers=2) as pool:
        classified = pool.submit(frames.classify, ClassifyInput(media_id=media_id, batch=batch))
        detected = pool.submit(frames.detect, DetectInput(media_id=media_id, batch=batch))
        classify, detect = classified.result(), detected.result()
    embeddings = carried.load(classify, blobs, bucket)
    query = Query(frames=list(hashes), embeddings=embeddings, is_video=True, audio=window)
    matches = sorted(get_matcher(deps).match(query), key=lambda m: (m.distance, m.bank, m.ref))
    scores = classify.max_scores()
    for frame in detect.frames:
        for name, value in frame.scores.items():
            scores[name] = max(value, scores.get(name, 0.0))
    faces = max((len(f.faces) for f in detect.frames), default=0)
    active, shadow = select_policies(settings.policy, settings.shadow_policy)
    result = score(ScoreInputs(classifier=scores, matches=matches, faces=faces), active, shadow)
    return SegmentAnalysis(media_id=media_id, duration_s=info.duration_s, start_s=info.start_s,
                           frames=len(keys), matches=matches, result=result, served_key=served, poster_key=keys[0],
                           mp4=mp4_bytes)


def _window_fingerprint(src: Path, info: video.VideoInfo, earlier: Callable[[float], list[bytes]] | None,
                        timeout: float) -> str | None:
    if info.audio_codec is None or info.audio_codec not in audio.AUDIO_CODECS:
        return None  # no track, or one in a codec that is never decoded
    return audio_window(src, earlier(info.duration_s) if earlier else [], timeout)


# --- the stage -----------------------------------------------------------------------------


def _policy(deps: Deps) -> live.LivePolicy:
    return live.LivePolicy(gate_seconds=deps.settings.live_gate_seconds,
                           reveal_seconds=deps.settings.live_reveal_seconds)


def _stored_at(record: dict) -> float | None:
    when = record.get("eventTime")
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() if when else None
    except ValueError:
        return None


def handle_record(record: dict, deps: Deps) -> dict[str, Any]:
    """One S3 ObjectCreated record from the recording bucket; returns the segment's result line."""
    t0 = time.time()
    stored_at = _stored_at(record) or t0
    ports: LivePorts = deps.need("live")
    s3 = record["s3"]
    key = unquote_plus(s3["object"]["key"])  # S3 URL-encodes keys in events
    obj = parse_key(key, deps.settings.region)
    if obj.kind == "ended":
        return _apply(obj, deps, ports, lambda stream, origin: live.end(stream), last=None)
    size = int(s3["object"].get("size") or 0)
    if size > MAX_SEGMENT_BYTES:
        raise MediaguardError("the live segment exceeds the segment size limit", reason="too_large")
    data, _ = deps.need("blobs").get(s3["bucket"]["name"], key)
    assert obj.segment is not None
    media_id = segment_media_id(obj.stream_id, obj.segment)
    earlier = _earlier_segments(s3["bucket"]["name"], key, obj.segment, deps.need("blobs"))
    analysis = analyse(data, media_id, deps, ports, earlier)
    result = analysis.result
    audio = any(m.signal == "audio" for m in analysis.matches)
    visual = not analysis.matches or any(m.signal != "audio" for m in analysis.matches)
    policy = _policy(deps)

    def step(stream: live.Stream, origin: float | None) -> tuple[live.Stream, list[live.Transition]]:
        t_start = round(analysis.start_s - (origin or 0.0), 3)
        verdict = live.SegmentVerdict(segment=obj.segment, t_start=t_start, t_end=round(t_start + analysis.duration_s, 3),
                                      action=result.action, risk=result.risk, visual=visual, audio=audio)
        return live.observe(stream, verdict, policy)

    out = _apply(obj, deps, ports, step, last=analysis, stored_at=stored_at)
    logger.info("segment", extra={"stream_id": obj.stream_id, "segment": obj.segment, "state": out["state"],
                                  "action": result.action, "risk": result.risk, "frames": analysis.frames,
                                  "matches": len(analysis.matches), "latency_ms": out["latency_ms"]})
    return out


def _apply(obj: RecordingObject, deps: Deps, ports: LivePorts, step, *, last: SegmentAnalysis | None,
           stored_at: float | None = None) -> dict[str, Any]:
    """Read the stream, apply ``step``, write it back (retrying a lost race), then act."""
    for _ in range(MAX_WRITE_ATTEMPTS):
        record = ports.streams.get(obj.stream_id)
        started: list[live.Transition] = []
        if record is None:
            stream, first = live.start(obj.stream_id, verified=ports.control.verified(obj.channel_arn))
            record, started = StreamRecord(stream=stream, channel_arn=obj.channel_arn), [first]
        if last is not None and (record.origin_s is None or last.start_s < record.origin_s):
            # The earliest segment seen defines t = 0 (segments may arrive out of order).
            record.origin_s = last.start_s
        stream, transitions = step(record.stream, record.origin_s)
        line = _line(obj, stream, last, record.origin_s, stored_at) if last is not None else record.last
        updated = replace(record, stream=stream, last=line)
        if ports.streams.put(updated):
            break
    else:
        raise StreamContentionError("the stream kept changing under this segment")
    _act(updated, [*started, *transitions], deps, ports, last)
    return line or {"segment": None, "state": stream.state}


def _line(obj: RecordingObject, stream: live.Stream, analysis: SegmentAnalysis, origin: float | None,
          stored_at: float | None) -> dict[str, Any]:
    """What ``mediaguard live simulate`` prints per segment (ids, codes and scores only)."""
    result = analysis.result
    t_start = round(analysis.start_s - (origin or 0.0), 3)
    decided = time.time()
    return {"segment": obj.segment, "t_start": t_start, "t_end": round(t_start + analysis.duration_s, 3),
            "state": stream.state, "action": result.action, "risk": result.risk, "overlays": list(stream.overlays),
            "signals": [s.model_dump() for s in result.signals if s.contribution],
            "matches": [m.model_dump(exclude_none=True) for m in analysis.matches],
            "policy_version": result.policy_version, "frames": analysis.frames,
            "latency_ms": round((decided - stored_at) * 1000, 1) if stored_at else None, "decided_at": decided}


def _metadata(stream: live.Stream, segment: int | None) -> str:
    """The player's instruction (<= 1 KB, IVS's PutMetadata limit): state and overlays only."""
    return json.dumps({"mediaguard": {"v": 1, "state": stream.state, "overlays": list(stream.overlays),
                                      "segment": segment}}, separators=(",", ":"))


def _act(record: StreamRecord, transitions: list[live.Transition], deps: Deps, ports: LivePorts,
         analysis: SegmentAnalysis | None) -> None:
    stream, items = record.stream, deps.need("items")
    for t in transitions:
        items.append_audit(stream_chain(stream.stream_id), t.actor, f"stream_{t.cause.replace(':', '_')}", t.detail())
        if ports.events is not None:
            ports.events.publish(stream.stream_id, {"channel_arn": record.channel_arn, **t.detail()})
    entered = [t for t in transitions if t.to_state == "restricted" and t.from_state != "restricted"]
    if entered and analysis is not None:
        _queue_for_review(record, analysis, deps)
    if stream.state == "blocked" and any(t.to_state == "blocked" for t in transitions):
        ports.control.stop(record.channel_arn)
    elif stream.state != "ended":
        segment = (record.last or {}).get("segment") if analysis is not None else None
        ports.control.put_metadata(record.channel_arn, _metadata(stream, segment))


def _queue_for_review(record: StreamRecord, analysis: SegmentAnalysis, deps: Deps) -> None:
    """The segment that restricted the stream, as a review item in the fast lane: a
    live stream is urgent whatever its risk (the queue's lane comes from the wiring)."""
    result, items = analysis.result, deps.need("items")
    bucket = require(deps.settings.media_bucket, "MEDIA_BUCKET")
    deps.need("blobs").put(bucket, analysis.served_key, analysis.mp4, "video/mp4")
    items.update(analysis.media_id, {
        "status": "done", "media_type": "video", "stream_id": record.stream.stream_id,
        "sanitized_key": analysis.served_key, "poster_key": analysis.poster_key, "risk": result.risk,
        "proposed_action": result.action, "signals": [s.model_dump() for s in result.signals],
        "policy_version": result.policy_version, "matches": [m.model_dump() for m in analysis.matches]})
    items.append_audit(analysis.media_id, "system:live", "live_segment",
                       {"stream_id": record.stream.stream_id, "risk": result.risk, "action": result.action})
    deps.need("review").enqueue(analysis.media_id, result.risk, None, f"live:{result.action}")


def moderate_stream(stream_id: str, decision: live.ModeratorDecision, actor: str, deps: Deps,
                    reason: str | None = None) -> live.Stream:
    """A person clears or blocks a stream (``live.moderate``), with the same audit, event
    and IVS effects as a segment's transition. Raises :class:`StreamNotFoundError`,
    ``live.StreamStateError`` (e.g. clearing a stream that is not restricted) or
    :class:`StreamContentionError`."""
    ports: LivePorts = deps.need("live")
    for _ in range(MAX_WRITE_ATTEMPTS):
        record = ports.streams.get(stream_id)
        if record is None:
            raise StreamNotFoundError("no such stream")
        stream, transition = live.moderate(record.stream, decision, actor, reason)
        updated = replace(record, stream=stream, last={**(record.last or {}), "state": stream.state,
                                                       "overlays": list(stream.overlays)})
        if ports.streams.put(updated):
            _act(updated, [transition], deps, ports, None)
            return stream
    raise StreamContentionError("the stream kept changing under this decision")


def handle_event(event: dict, deps: Deps) -> list[dict[str, Any]]:
    """An S3 notification (one or more records), in order."""
    return [handle_record(r, deps) for r in event.get("Records", [])]
