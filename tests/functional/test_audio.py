"""Audio through the whole pipeline: an audio-only upload becomes ``media_type: audio``,
is served without metadata, fingerprinted and matched against banked audio; a video's
audio track is fingerprinted too."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bench import audio as clips
from bench.clips import ffmpeg, photos, slideshow
from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.featurize import media_featurizer
from mediaguard.cli.scan import scan_result

pytestmark = pytest.mark.skipif(clips.espeak() is None,
                                reason="espeak-ng is not installed (scripts/setup.sh installs it with apt)")


@pytest.fixture(scope="module")
def voices(cloud, tmp_path_factory) -> dict[str, Path]:
    """A block bank holding one voice clip (banked as MP3); the clip's other speech as a stranger."""
    tmp = tmp_path_factory.mktemp("voices")
    banked = clips.encode(clips.speech_wav(0, tmp), tmp / "banked.mp3", "-c:a", "libmp3lame", "-b:a", "192k")
    banks = dynamo_bank_service(cloud.deps().settings)
    banks.create_bank("voices", "block", actor="test")
    report = banks.add_media("voices", "voice-1", banked.read_bytes(), actor="test", declared="audio/mpeg",
                             featurizer=media_featurizer(cloud.deps().settings, embeddings=False))
    assert report.added == 1
    # Bank changes are matchable within 60 s without an index rebuild: let a minute pass.
    cloud.set_clock(lambda: time.time() + 61)
    return {"banked": banked, "source": tmp / "speech0.wav", "stranger": clips.speech_wav(1, tmp), "tmp": tmp}


def _scan(cloud, data: bytes, content_type: str) -> tuple[dict, list[str]]:
    media_id = cloud.upload(data, content_type)
    run = cloud.wait(media_id)
    return cloud.item(media_id), run.states


def test_a_mono_opus_copy_of_a_banked_voice_is_audio_matched_and_removed(cloud, voices):
    # GIVEN the banked voice re-encoded as tagged mono Opus at 32 kb/s, 2 s trimmed off the start
    copy = voices["tmp"] / "copy.ogg"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-ss", "2", "-i", str(voices["source"]), "-ac", "1",
                    "-c:a", "libopus", "-b:a", "32k", "-metadata", "title=Secret Title", str(copy)], check=True)
    # WHEN it is uploaded
    item, states = _scan(cloud, copy.read_bytes(), "audio/ogg")
    # THEN it is audio: no frame was classified, the similarity stage matched it by audio,
    # and the block bank's default removed it
    assert states == ["Sanitize", "MediaType", "Frames", "Classify", "Detect", "Similarity", "Score", "Enforce",
                      "Done"]
    assert item["media_type"] == "audio" and item["kind"] == "ogg"
    audio = [m for m in item["matches"] if m["signal"] == "audio"]
    assert audio and audio[0]["bank"] == "voices" and audio[0]["ref"] == "voice-1"
    assert audio[0]["frames_matched"] >= 0.9
    assert item["action"] == "remove"
    # AND scan --json reports the track and the match
    result = scan_result("copy.ogg", item["media_id"], item, states)
    assert result["audio"] == {"present": True, "codec": "opus", "duration_s": pytest.approx(7.6, abs=0.6),
                               "fingerprint_kind": "chromaprint-v1-raw32"}
    assert result["matches"][0]["signal"] == "audio"


def test_a_sound_only_mp4_declared_as_video_is_audio_matched_and_removed(cloud, voices):
    # GIVEN the banked voice as AAC in an MP4 as ffmpeg and Android write it (brand isom, the
    # moov box after the media), declared video/mp4 as its extension says
    copy = voices["tmp"] / "voice-only.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(voices["source"]), "-c:a", "aac", "-b:a", "64k",
                    "-f", "mp4", str(copy)], check=True)
    # WHEN it is uploaded
    item, states = _scan(cloud, copy.read_bytes(), "video/mp4")
    # THEN it went the audio way (it was refused as "no video stream" before), served as M4A
    assert item["media_type"] == "audio" and item["kind"] == "m4a" and item["status"] == "done"
    assert item["sanitized_key"].endswith(".m4a") and "Classify" in states
    # AND its fingerprint matched the banked voice, and the block bank removed it
    assert any(m["signal"] == "audio" and m["ref"] == "voice-1" for m in item["matches"])
    assert item["action"] == "remove"



def test_a_browser_voice_note_in_webm_is_audio_matched_and_removed(cloud, voices):
    # GIVEN the banked voice as a browser's MediaRecorder writes it: Opus in a live WebM
    note = voices["tmp"] / "voice-note.webm"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(voices["source"]), "-ac", "1", "-c:a", "libopus",
                    "-b:a", "24k", "-f", "webm", "-live", "1", str(note)], check=True)
    # WHEN it is uploaded as the recorder labels it
    item, _ = _scan(cloud, note.read_bytes(), "audio/webm")
    # THEN it went the audio way (refused as "no video stream" before), served as WebM audio
    assert (item["media_type"], item["kind"], item["status"]) == ("audio", "weba", "done")
    # AND its fingerprint matched the banked voice, and the block bank removed it
    assert any(m["signal"] == "audio" and m["ref"] == "voice-1" for m in item["matches"])
    assert item["action"] == "remove"

def test_unrelated_speech_is_served_without_metadata_and_matches_nothing(cloud, voices):
    # GIVEN other speech in the same synthetic voice, as a tagged M4A
    upload = voices["tmp"] / "stranger.m4a"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(voices["stranger"]), "-c:a", "aac", "-b:a", "96k",
                    "-metadata", "title=Secret Title", str(upload)], check=True)
    # WHEN it is uploaded
    item, _ = _scan(cloud, upload.read_bytes(), "audio/mp4")
    # THEN nothing matches, and the served copy is the same AAC without the tag
    assert item["media_type"] == "audio" and item["status"] == "done"
    assert item["matches"] == [] and item["action"] == "allow"
    served = cloud.client("s3").get_object(Bucket=cloud.output("MediaBucket"), Key=item["sanitized_key"])
    body = served["Body"].read()
    assert item["sanitized_key"].endswith(".m4a") and b"Secret Title" not in body
    # AND the item names what was dropped, as a still's sanitize does ([] before)
    assert "title" in item["metadata_removed"]


def test_a_video_carrying_the_banked_voice_matches_by_audio(cloud, voices):
    # GIVEN a slideshow whose sound track is the banked voice, re-encoded as AAC
    video = slideshow(photos(2, offset=6), seconds_each=4.0, size=(320, 180))
    silent = voices["tmp"] / "silent.mp4"
    silent.write_bytes(video)
    with_voice = voices["tmp"] / "voice.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(silent), "-i", str(voices["source"]), "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-shortest", str(with_voice)],
                   check=True)
    # WHEN it is uploaded
    item, _ = _scan(cloud, with_voice.read_bytes(), "video/mp4")
    # THEN the video's audio track was fingerprinted and matched the banked voice
    assert item["media_type"] == "video" and item["audio"]["present"] and item["audio"]["codec"] == "aac"
    assert any(m["signal"] == "audio" and m["ref"] == "voice-1" for m in item["matches"])


def test_media_without_audio_reports_it_absent(cloud, voices):
    # GIVEN a silent video WHEN it is uploaded THEN its audio summary says absent, with null details
    item, states = _scan(cloud, (voices["tmp"] / "silent.mp4").read_bytes(), "video/mp4")
    assert scan_result("silent.mp4", item["media_id"], item, states)["audio"] == {
        "present": False, "codec": None, "duration_s": None, "fingerprint_kind": None}
