"""Audio: sniffing, metadata-free remux without re-encoding, Chromaprint fingerprints, and
matching of re-encoded copies (and non-matching of unrelated clips)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench import audio as clips
from bench.clips import ffmpeg
from mediaguard.analysis.audio_index import AudioIndex
from mediaguard.errors import AudioTooLongError, UnsupportedMediaError
from mediaguard.ingress.audio import (
    AudioLimits,
    fingerprint,
    probe_audio,
    remux_audio_clean,
    sniff_audio,
    sniff_av,
    video_audio_plan,
)
from mediaguard.signals import AudioSignal

needs_espeak = pytest.mark.skipif(clips.espeak() is None,
                                  reason="espeak-ng is not installed (scripts/setup.sh installs it with apt)")
LIMITS = AudioLimits(max_bytes=50 * 1024 * 1024, max_seconds=600, timeout_s=30)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def music(tmp) -> list[Path]:
    return [clips.music_wav(i, tmp, seconds=10) for i in range(2)]


@pytest.fixture(scope="module")
def speech(tmp) -> list[Path]:
    if clips.espeak() is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it with apt)")
    return [clips.speech_wav(i, tmp) for i in range(2)]


def _tagged(src: Path, dst: Path, *args: str) -> Path:
    # A title and an artist, as a phone or an editor writes them.
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(src), "-metadata", "title=Secret Title",
                    "-metadata", "artist=Jane Doe", *args, str(dst)], check=True)
    return dst


@pytest.mark.parametrize(("suffix", "args", "name", "codec"), [
    ("mp3", ["-c:a", "libmp3lame", "-b:a", "128k"], "mp3", "mp3"),
    ("aac", ["-c:a", "aac", "-b:a", "96k", "-f", "adts"], "aac", "aac"),
    ("m4a", ["-c:a", "aac", "-b:a", "96k"], "m4a", "aac"),
    ("ogg", ["-c:a", "libvorbis", "-q:a", "3"], "ogg", "vorbis"),
    ("opus", ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"], "ogg", "opus"),
    ("wav", ["-c:a", "pcm_s16le"], "wav", "pcm_s16le"),
    ("flac", ["-c:a", "flac"], "flac", "flac"),
])
def test_each_accepted_format_is_sniffed_probed_and_remuxed_without_tags_or_reencoding(
        tmp, music, suffix, args, name, codec):
    # GIVEN a tagged file of an accepted audio format
    src = _tagged(music[0], tmp / f"tagged.{suffix}", *args)
    # WHEN it is sniffed, probed and remuxed
    fmt = sniff_audio(src.read_bytes()[:4096])
    info = probe_audio(src, LIMITS)
    clean = tmp / f"clean.{suffix}"
    remux_audio_clean(src, clean)
    # THEN its kind and codec are recognised, the tags are gone, and the codec is unchanged
    assert fmt is not None and fmt.name == name and info.codec == codec
    assert 9.5 <= info.duration_s <= 10.5
    cleaned = clean.read_bytes()
    assert b"Secret Title" not in cleaned and b"Jane Doe" not in cleaned
    assert b"Secret Title" in src.read_bytes() or name == "aac"  # raw ADTS has nowhere to put a tag
    assert probe_audio(clean, LIMITS).codec == codec
    # AND the fingerprint of the clean copy is the fingerprint of the upload
    assert AudioSignal.align(fingerprint(clean, fmt.demuxer), fingerprint(src, fmt.demuxer)).share == 1.0


@pytest.mark.parametrize("movflags", [[], ["-movflags", "+faststart"]], ids=["moov-last", "faststart"])
def test_an_audio_only_mp4_is_audio_and_a_video_mp4_stays_video(tmp, music, movflags):
    # GIVEN AAC in an MP4 as ffmpeg and Android write it (brand isom, not M4A), and a video MP4
    sound = _tagged(music[0], tmp / "sound.mp4", "-c:a", "aac", "-b:a", "96k", *movflags, "-f", "mp4")
    video = tmp / "picture.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=2",
                    "-i", str(music[0]), "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", *movflags, str(video)], check=True)
    assert sniff_audio(sound.read_bytes()[:4096]) is None  # its brands alone say video
    # WHEN each whole file is sniffed
    # THEN the sound-only one is M4A: probed, remuxed without tags and fingerprinted as audio
    assert sniff_av(sound.read_bytes()).name == "m4a"
    assert probe_audio(sound, LIMITS).codec == "aac"
    clean = tmp / "sound-clean.m4a"
    assert remux_audio_clean(sound, clean).name == "m4a" and b"Secret Title" not in clean.read_bytes()
    # AND the one with a picture stays a video
    assert sniff_av(video.read_bytes()).name == "mp4"


@pytest.mark.parametrize("args", [
    ["-c:a", "libopus", "-b:a", "32k", "-f", "webm", "-live", "1"],  # as a browser's MediaRecorder streams it
    ["-c:a", "libvorbis", "-q:a", "3", "-f", "webm"],
], ids=["opus-live", "vorbis"])
def test_an_audio_only_webm_is_audio_and_a_video_webm_stays_video(tmp, music, args):
    # GIVEN a tagged voice note as browsers record it (WebM, audio only), and a video WebM
    sound = _tagged(music[0], tmp / "note.webm", *args)
    video = tmp / "picture.webm"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=2",
                    "-i", str(music[0]), "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libvpx",
                    "-c:a", "libopus", str(video)], check=True)
    # WHEN each whole file is sniffed
    # THEN the sound-only one is audio WebM: probed, remuxed without tags, fingerprinted alike
    assert sniff_av(sound.read_bytes()).name == "weba"
    assert probe_audio(sound, LIMITS).codec == args[1].removeprefix("lib")
    clean = tmp / "note-clean.webm"
    fmt = remux_audio_clean(sound, clean)
    assert fmt.name == "weba" and b"Secret Title" not in clean.read_bytes()
    assert AudioSignal.align(fingerprint(clean, fmt.demuxer), fingerprint(sound, fmt.demuxer)).share == 1.0
    # AND the one with a picture stays a video
    assert sniff_av(video.read_bytes()).name == "webm"



def test_the_upload_api_grants_audio_webm_under_the_audio_size_limit():
    from mediaguard.api.uploads import accepted_content_types, max_bytes_for
    from mediaguard.settings import Settings

    # GIVEN the declared type a browser's recorder gives a voice note
    # WHEN the upload API checks it THEN it is accepted, held to the audio limit
    assert "audio/webm" in accepted_content_types()
    assert max_bytes_for("audio/webm", Settings()) == Settings().max_audio_bytes

def test_non_audio_bytes_are_not_sniffed_as_audio():
    assert sniff_audio(b"\xff\xd8\xff\xe0" + bytes(64)) is None  # JPEG
    assert sniff_audio(b"RIFF\x00\x00\x00\x00WEBPVP8 ") is None
    assert sniff_audio(b"\xff\xfb" + bytes(64)) is None  # one MP3 sync word and nothing behind it


def test_a_codec_outside_the_allow_list_and_an_over_long_file_are_refused(tmp, music):
    # GIVEN a WAV holding A-law (a codec never decoded) and a file longer than the limit
    alaw = subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(music[0]), "-c:a", "pcm_alaw",
                           str(tmp / "alaw.wav")], check=True) and tmp / "alaw.wav"
    # WHEN they are probed THEN the rejections are typed
    with pytest.raises(UnsupportedMediaError):
        probe_audio(alaw, LIMITS)
    with pytest.raises(AudioTooLongError):
        probe_audio(music[0], AudioLimits(max_bytes=LIMITS.max_bytes, max_seconds=5, timeout_s=30))


def test_a_video_track_is_copied_when_its_container_carries_it_and_dropped_when_never_decoded():
    assert video_audio_plan("mp4", "aac") == "copy"
    assert video_audio_plan("webm", "opus") == "copy"
    assert video_audio_plan("mp4", "pcm_s16le") == "reencode"
    assert video_audio_plan("mov", "amr_nb") == "drop"
    assert video_audio_plan("mp4", None) == "drop"


def test_digital_silence_is_not_judged_so_padded_unrelated_clips_do_not_match(tmp, music):
    # GIVEN two unrelated tunes, each after 6 s of digital silence (which Chromaprint
    # writes as one repeated word)
    padded = []
    for i, src in enumerate(music):
        out = tmp / f"padded{i}.wav"
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(src), "-af", "adelay=6000:all=1", str(out)],
                       check=True)
        padded.append(fingerprint(out, "wav"))
    # THEN the silences agree word for word, but the comparison does not count them
    assert len(set(padded[0][:20].tolist())) == 1
    assert AudioSignal.align(padded[0], padded[1]).share < 0.2


@needs_espeak
def test_reencoded_noisy_and_trimmed_copies_match_and_unrelated_clips_do_not(tmp, speech, music):
    # GIVEN two speech clips and two tunes banked as MP3 192k
    sources = {"speech0": speech[0], "speech1": speech[1], "music0": music[0], "music1": music[1]}
    banked = {k: fingerprint(clips.encode(v, tmp / f"{k}-bank.mp3", "-c:a", "libmp3lame", "-b:a", "192k"), "mp3")
              for k, v in sources.items()}
    names = list(banked)
    index = AudioIndex.build(list(banked.values()), ids=range(len(names)))
    for stem in ("speech0", "music0"):
        for case, path in clips.copies(sources[stem], tmp, stem).items():
            # WHEN a re-encoded copy (other codec and bitrate, mono, 20 dB SNR noise, trimmed) is searched
            words = fingerprint(path, {".ogg": "ogg", ".m4a": "mov", ".flac": "flac"}[path.suffix])
            found = index.query(words)
            # THEN the index finds its source alone, well above the threshold
            assert [names[i] for i, _ in found] == [stem], case
            assert found[0][1].share >= 0.9, case
    # AND no two unrelated clips come near the threshold
    for a in names:
        for b in names:
            if a != b:
                assert AudioSignal.align(banked[a], banked[b]).share < 0.2, (a, b)


def test_index_survives_save_and_load(tmp):
    rng = np.random.default_rng(3)
    clips_ = [rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32) for n in (60, 90)]
    index = AudioIndex.build(clips_, ids=[7, 9])
    index.save(tmp / "idx")
    again = AudioIndex.load(tmp / "idx")
    assert [(i, a.offset) for i, a in again.query(clips_[1][30:80])] == [(9, 30)]
