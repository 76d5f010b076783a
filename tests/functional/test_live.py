"""Live streams through the local stack: ffmpeg-made broadcasts cut into HLS segments, each
stored in the live recording bucket, so S3 → SegmentFunction → Classify/Detect → matching →
scoring → the stream's state runs as on AWS (IVS calls moto lacks are recorded locally)."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bench import audio as clips
from mediaguard import wiring
from mediaguard.analysis.matching import DELTA_SECONDS
from mediaguard.audit import chain as audit
from mediaguard.cli.live import cut_hls, simulate
from mediaguard.cli.scan import load_banks
from mediaguard.ingress.video import ffmpeg_exe
from mediaguard.stages.segment import moderate_stream, segment_media_id, stream_chain
from tests.conftest import load_event, photo


def _video(path: Path, seconds: int, banked: Path | None = None, from_s: int = 8) -> Path:
    """testsrc2 at 720p with a tone; with ``banked``, that photo fills the frame from ``from_s`` on."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if banked is not None:
        cmd += ["-loop", "1", "-i", str(banked), "-filter_complex",
                f"[2:v]scale=1280:720,setsar=1[p];[0:v][p]overlay=0:0:enable='gte(t,{from_s})'[v]", "-map", "[v]"]
    else:
        cmd += ["-map", "0:v"]
    cmd += ["-map", "1:a", "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", str(path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return path


def _voiced(path: Path, seconds: int, voice: Path, from_s: int) -> Path:
    """testsrc2 at 720p whose sound is ``voice`` from ``from_s`` on (silence before), AAC."""
    delay = from_s * 1000
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}", "-i", str(voice),
                    "-filter_complex", f"[1:a]adelay={delay}|{delay},apad[a]", "-map", "0:v", "-map", "[a]",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "96k", str(path)], check=True, capture_output=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def stack(cloud, tmp_path_factory):
    """One local stack with a block bank holding a real photo (scikit-image's astronaut)."""
    root = tmp_path_factory.mktemp("live")
    (root / "bank").mkdir()
    photo("astronaut").save(root / "bank" / "astronaut.png")
    load_banks(cloud, [f"ncii:block={root / 'bank'}"])
    return cloud, root


def _segments(root: Path, name: str, video: Path, seconds: float):
    out = root / name
    out.mkdir()
    return cut_hls(video, out, seconds)


def test_a_banked_image_at_second_8_restricts_a_gated_stream_before_it_is_ever_shown(stack):
    cloud, root = stack
    # GIVEN an unverified streamer whose picture shows a banked photo from second 8
    video = _video(root / "banked.mp4", 12, banked=root / "bank" / "astronaut.png")
    # WHEN the broadcast's 2 s segments arrive
    lines, summary = simulate(cloud, _segments(root, "banked", video, 2.0), verified=False)
    # THEN the stream goes gating -> restricted (then ends with the recording)
    assert summary["transitions"] == ["gating->restricted", "restricted->ended"]
    states = [line["state"] for line in lines]
    first = states.index("restricted")
    # AND the segment that restricts it is the one holding second 8, decided by the block bank
    assert (lines[first]["t_start"], lines[first]["action"]) == (8.0, "remove")
    assert any(m["bank"] == "ncii" and m["signal"] == "pdq" for m in lines[first]["matches"])
    # AND it was never shown unblurred: every segment before is still gating (not shown at all),
    # every segment from then on is restricted under a blur
    assert set(states[:first]) == {"gating"}
    assert all(line["state"] == "restricted" and "blur" in line["overlays"] for line in lines[first:])
    assert all(line["action"] != "remove" for line in lines[:first])
    # AND players were told: the latest timed metadata names the blur
    metadata = cloud.ivs.of("PutMetadata")
    assert '"state":"restricted"' in metadata[-1]["metadata"] and '"blur"' in metadata[-1]["metadata"]
    # AND the restricting segment waits for people in the fast lane
    media_id = segment_media_id(summary["stream_id"], lines[first]["segment"])
    task = wiring.task_queue().tasks.get(media_id)
    assert task is not None and task.lane == "fast" and task.reason == "live:remove"
    # AND each transition is an audit record on the stream's verified chain
    records = cloud.deps().items.audit_chain(stream_chain(summary["stream_id"]))
    assert [r.event for r in records] == ["stream_started", "stream_segment", "stream_ended"]
    assert audit.verify(records) == []


def test_a_clean_stream_is_revealed_then_live(stack):
    cloud, root = stack
    # GIVEN an unverified streamer with a clean 20 s picture (4 s segments)
    video = _video(root / "clean.mp4", 20)
    lines, summary = simulate(cloud, _segments(root, "clean", video, 4.0), verified=False, end=False)
    # THEN it is gated for the first 10 s, shown reduced, and live after 20 s of clean analysis
    assert [line["state"] for line in lines] == ["gating", "gating", "reduced", "reduced", "live"]
    assert summary["final_state"] == "live"
    assert summary["transitions"] == ["gating->reduced", "reduced->live"]


def test_a_verified_streamer_starts_live_and_a_person_can_block_it(stack):
    cloud, root = stack
    # GIVEN a verified streamer
    video = _video(root / "verified.mp4", 4)
    lines, summary = simulate(cloud, _segments(root, "verified", video, 2.0), verified=True, end=False)
    # THEN its first segment is already live
    assert [line["state"] for line in lines] == ["live", "live"]
    # WHEN a person blocks the stream
    stream = moderate_stream(summary["stream_id"], "block", "reviewer:r1", wiring.segment_deps())
    # THEN it is blocked, the broadcast stopped and its stream key deleted through IVS
    assert stream.state == "blocked"
    channel = cloud.ivs.of("StopStream")[-1]["channelArn"]
    assert cloud.ivs.of("DeleteStreamKey")[-1]["arn"].startswith(channel.replace(":channel/", ":stream-key/"))


@pytest.fixture(scope="module")
def voices(stack):
    """A block bank holding one espeak-ng voice clip (MP3), loaded as ``--bank voices:block=DIR`` does."""
    if clips.espeak() is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it with apt)")
    cloud, root = stack
    (root / "voices").mkdir()
    voice = clips.speech_wav(0, root)
    clips.encode(voice, root / "voices" / "voice.mp3", "-c:a", "libmp3lame", "-b:a", "192k")
    load_banks(cloud, [f"voices:block={root / 'voices'}"])
    # A running matcher (the earlier tests' segments made one) looks for a new index build
    # every DELTA_SECONDS: let the stack's clock pass that, as it would between a bank load and
    # a broadcast. Without it the test passed or failed by how slowly the module had run.
    cloud.set_clock(lambda: time.time() + DELTA_SECONDS + 1)
    yield cloud, root, voice
    cloud.set_clock(time.time)


@pytest.fixture(scope="module")
def voiced(voices):
    """A verified streamer whose sound, from second 2, is the banked voice (re-encoded to AAC),
    its 2 s segments fed through the stack (each alone too short for one Chromaprint word)."""
    cloud, root, voice = voices
    video = _voiced(root / "voiced.mp4", 12, voice, from_s=2)
    return simulate(cloud, _segments(root, "voiced", video, 2.0), verified=True, end=False)


def test_a_stream_carrying_a_banked_voice_is_muted_not_blurred(voices, voiced):
    cloud = voices[0]
    # GIVEN / WHEN the stream carrying the banked voice (fixture ``voiced``)
    lines, summary = voiced
    # THEN the stream goes live -> restricted once the last 10 s of audio hold enough of the voice
    assert summary["transitions"] == ["live->restricted"]
    first = [line["state"] for line in lines].index("restricted")
    audio = [m for m in lines[first]["matches"] if m["signal"] == "audio"]
    assert audio and audio[0]["bank"] == "voices" and audio[0]["frames_matched"] >= 0.5
    assert lines[first]["action"] == "remove" and len(audio) == len(lines[first]["matches"])
    # AND it is muted with a warning, not blurred: the evidence is in the sound, not the picture
    assert all(line["overlays"] == ["mute", "warning"] for line in lines[first:])
    # AND no segment before it matched the voice (the window held too little of it)
    assert all(not line["matches"] for line in lines[:first])
    metadata = cloud.ivs.of("PutMetadata")[-1]["metadata"]
    assert '"mute"' in metadata and '"blur"' not in metadata


def test_a_stream_with_other_speech_is_not_muted(voices):
    cloud, root, _ = voices
    # GIVEN a verified streamer speaking other words in the same synthetic voice
    other = clips.speech_wav(1, root)
    video = _voiced(root / "other.mp4", 12, other, from_s=2)
    # WHEN its segments arrive
    lines, summary = simulate(cloud, _segments(root, "other", video, 2.0), verified=True, end=False)
    # THEN nothing matches and it stays live, never muted
    assert summary["transitions"] == []
    assert all(line["state"] == "live" and not line["overlays"] and not line["matches"] for line in lines)


# --- moderation through the review API ---------------------------------------------------------------

ALICE = {"sub": "alice", "cognito:groups": "[reviewer]"}
SAM = {"sub": "sam", "cognito:groups": "[senior-reviewer]"}


def _api(cloud, method: str, path: str, claims: dict | None, body: dict | None = None,
         query: dict | None = None) -> tuple[int, dict | None]:
    """One request to the review API function as API Gateway hands it over (JWT claims validated)."""
    event = copy.deepcopy(load_event("api"))
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims or {}
    event["headers"].pop("authorization", None)
    event["rawQueryString"], event["queryStringParameters"] = urlencode(query or {}), query
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    result = cloud.invoke("ApiFunction", event)
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


def test_a_reviewer_lists_and_clears_a_restricted_stream_and_only_a_senior_blocks(voices, voiced):
    cloud = voices[0]
    stream_id = voiced[1]["stream_id"]
    # GIVEN the muted stream: it is listed among the restricted streams, with its restricting segment
    code, page = _api(cloud, "GET", "/streams", ALICE, query={"state": "restricted"})
    assert code == 200
    view = next(v for v in page["items"] if v["stream_id"] == stream_id)
    assert view["overlays"] == ["mute", "warning"] and view["cause_media_id"] == segment_media_id(
        stream_id, view["cause_segment"])
    assert _api(cloud, "GET", f"/streams/{stream_id}", ALICE)[1] == view
    # WHEN a reviewer tries to block it THEN that needs a senior (the stream key would be deleted)
    moderate = f"/streams/{stream_id}/moderate"
    code, body = _api(cloud, "POST", moderate, ALICE, {"decision": "block", "reason": "voice_clone"})
    assert (code, body["reason"]) == (403, "forbidden")
    # WHEN the reviewer clears it with a reason code
    code, cleared = _api(cloud, "POST", moderate, ALICE, {"decision": "clear", "reason": "licensed_voice"})
    # THEN it is live without overlays, players are told, and the chain records who and why
    assert code == 200 and (cleared["state"], cleared["overlays"]) == ("live", [])
    assert '"state":"live"' in cloud.ivs.of("PutMetadata")[-1]["metadata"]
    records = cloud.deps().items.audit_chain(stream_chain(stream_id))
    assert (records[-1].event, records[-1].actor, records[-1].detail["reason"]) == (
        "stream_moderator_clear", "reviewer:alice", "licensed_voice")
    assert audit.verify(records) == []
    # AND clearing again is a typed conflict; unknown streams are 404; no token is 401
    code, body = _api(cloud, "POST", moderate, ALICE, {"decision": "clear", "reason": "licensed_voice"})
    assert (code, body["reason"]) == (409, "stream_state")
    assert _api(cloud, "GET", "/streams/no-such-stream", ALICE)[0] == 404
    assert _api(cloud, "POST", "/streams/no-such-stream/moderate", SAM, {"decision": "block", "reason": "x"})[0] == 404
    assert _api(cloud, "GET", "/streams", None)[0] == 401
    # WHEN a senior blocks it THEN the broadcast is stopped through IVS
    code, blocked = _api(cloud, "POST", moderate, SAM, {"decision": "block", "reason": "voice_clone"})
    assert code == 200 and blocked["state"] == "blocked"
    assert cloud.ivs.of("StopStream")[-1]["channelArn"] == blocked["channel_arn"]
