"""Audio: sniff audio-only uploads, probe them, rewrite them without metadata, and
fingerprint any audio track with Chromaprint.

ffmpeg is the same static binary as :mod:`mediaguard.ingress.video` (imageio-ffmpeg),
run the same way: an argument list, the demuxer the sniff chose, the ``file`` protocol
only, no AWS credentials in its environment, a deadline. Its ``chromaprint`` muxer is
the fingerprinter (``-f chromaprint -fp_format raw``: little-endian 32-bit
sub-fingerprints, ~8.1 a second, each covering ~0.12 s of audio resampled to 11025 Hz
mono; ``-algorithm 1`` is Chromaprint's default, the one fpcalc and AcoustID use).

Measured with ``python -m bench.audio`` (espeak-ng speech and ``aevalsrc`` tones, one
core, shared machine): 50-150 ms per 10 s clip and ~320 ms per 30 s WAV, decode included;
~4 bytes x 7.4-8.1 a second, i.e.
~1.9 KB of raw fingerprint per minute (~2.6 KB as base64).

Codecs: only the ones in :data:`AUDIO_CODECS` are decoded at all, as video keeps to
``video.ALLOWED_CODECS``. Sanitizing copies the first audio track as it is (no
re-encode) when its container may carry it; a video's track in a codec outside the
list is dropped from the served copy (and listed as removed), never decoded.
"""

from __future__ import annotations

import base64
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mediaguard.errors import (
    AudioTooLongError,
    CorruptMediaError,
    EmptyMediaError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from mediaguard.formats import audio, isobmff, webm
from mediaguard.ingress.kinds import (  # noqa: F401
    AAC,
    AUDIO_FORMATS,
    FLAC,
    M4A,
    MP3,
    MP4,
    OGG,
    WAV,
    WEBA,
    WEBM,
    AudioFormat,
    VideoFormat,
)
from mediaguard.ingress.video import _DURATION, _OUT_TIME, _STREAM, _base_cmd, _run, removed_metadata, sniff_video
from mediaguard.settings import Settings

# Audio codecs decoded at all, in any container (ffmpeg decoder names). What the accepted
# audio-only formats carry, plus what phones and browsers put in MP4/MOV/WebM.
AUDIO_CODECS = frozenset({
    "aac", "mp3", "opus", "vorbis", "flac", "alac",
    "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s32le", "pcm_u8", "pcm_f32le", "pcm_f64le",
})
# Audio codecs each video container's muxer takes as a stream copy (ffmpeg's mp4/mov/webm).
VIDEO_COPY_CODECS = {
    "mp4": frozenset({"aac", "mp3", "opus", "flac", "alac"}),
    "mov": frozenset({"aac", "mp3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s32le", "pcm_f32le"}),
    "webm": frozenset({"opus", "vorbis"}),
}
# The fingerprint: Chromaprint's default algorithm, raw 32-bit words.
FINGERPRINT_KIND = "chromaprint-v1-raw32"
_PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int
    max_seconds: float
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> AudioLimits:
        return cls(max_bytes=settings.max_audio_bytes, max_seconds=settings.max_audio_seconds,
                   timeout_s=settings.video_timeout_seconds)


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    duration_s: float
    container: str  # AudioFormat.name
    metadata: tuple[str, ...] = ()  # what the remux drops (video.removed_metadata)


def sniff_audio(head: bytes) -> AudioFormat | None:
    """The audio-only container named by the first bytes (give it the first 4 KiB), or None.

    Ogg holding anything but Vorbis or Opus (Theora video, Speex, FLAC-in-Ogg) is not
    accepted as audio: it raises :class:`UnsupportedMediaError` rather than returning None,
    so it cannot fall through to the image sniff's generic refusal with a vaguer reason.

    >>> sniff_audio(b"fLaC\\x00\\x00\\x00\\x22" + bytes(34)).name
    'flac'
    """
    brands = isobmff.ftyp_brands(head)
    if brands is not None:
        return M4A if isobmff.major_brand(head) in audio.M4A_BRANDS else None
    if audio.is_wav(head):
        return WAV
    if audio.is_flac(head):
        return FLAC
    codec = audio.ogg_codec(head)
    if codec is not None:
        if codec not in ("vorbis", "opus"):
            raise UnsupportedMediaError("Ogg files are accepted with Vorbis or Opus audio only")
        return OGG
    if audio.is_mp3(head):
        return MP3
    if audio.is_adts(head):
        return AAC
    return None


def sound_only_mp4(head: bytes, fh: BinaryIO) -> bool:
    """Whether an MP4 (by its brands) lists sound tracks and no video track: ffmpeg, Android
    and most encoders brand such files ``isom``/``mp42`` like video, not ``M4A ``. It is
    then M4A (the same container, remuxed with the same muxer). ``head`` is the first bytes
    of the file ``fh`` reads."""
    if sniff_video(head) is not MP4:
        return False
    handlers = isobmff.track_handlers(fh)
    return handlers is not None and b"soun" in handlers and b"vide" not in handlers


# How much of a WebM :func:`webm.track_types` reads: Tracks come before the first Cluster.
WEBM_TRACKS_BYTES = 1 << 16


def sound_only_webm(head: bytes) -> bool:
    """Whether a WebM lists audio tracks and no video track (a browser's MediaRecorder
    voice note); ``head``: its first :data:`WEBM_TRACKS_BYTES`."""
    types = webm.track_types(head)
    return types is not None and webm.AUDIO_TRACK in types and webm.VIDEO_TRACK not in types


def sniff_av(data: bytes) -> VideoFormat | AudioFormat | None:
    """The video or audio-only container of a whole file, or None (an image, or nothing
    accepted): an MP4 or a WebM with sound only is audio (M4A, WEBA), then
    :func:`sniff_video` and :func:`sniff_audio` decide."""
    head = data[:4096]
    if sound_only_mp4(head, io.BytesIO(data)):
        return M4A
    video = sniff_video(head)
    if video is WEBM and sound_only_webm(data[:WEBM_TRACKS_BYTES]):
        return WEBA
    return video or sniff_audio(head)


def _sniff_file(path: str | Path) -> AudioFormat:
    with open(path, "rb") as fh:
        head = fh.read(WEBM_TRACKS_BYTES)
        if not head:
            raise EmptyMediaError("the upload is empty")
        if sound_only_mp4(head[:4096], fh):
            fmt = M4A
        elif sniff_video(head[:4096]) is WEBM:
            fmt = WEBA if sound_only_webm(head) else None
        else:
            fmt = sniff_audio(head[:4096])
    if fmt is None:
        raise UnsupportedMediaError("the file is not a supported audio type (MP3, AAC/M4A, Ogg, WAV, FLAC, WebM)")
    return fmt


def _input(path: str | Path, demuxer: str) -> list[str]:
    return ["-protocol_whitelist", "file", "-f", demuxer, "-i", str(path)]


def audio_codec(text: str) -> str | None:
    """The codec of the first audio stream in ``ffmpeg -i`` output, None without one."""
    for line in text.splitlines():
        m = _STREAM.match(line)
        if m and m.group(1) == "Audio":
            return m.group(2)
    return None


def probe_audio(path: str | Path, limits: AudioLimits, *, deadline: float | None = None) -> AudioInfo:
    """Container, codec and real duration of an audio-only file, held to the limits.

    The duration is the larger of the header's and where the packets end (a demux-only
    pass), as for video. Raises :class:`UnsupportedMediaError` (not an accepted format,
    codec outside :data:`AUDIO_CODECS` or not one its container carries),
    :class:`CorruptMediaError`, :class:`MediaTooLargeError`, :class:`AudioTooLongError`.
    """
    size = os.path.getsize(path)
    if size > limits.max_bytes:
        raise MediaTooLargeError(f"{size} bytes exceeds the {limits.max_bytes}-byte audio limit")
    fmt = _sniff_file(path)
    timeout = _PROBE_TIMEOUT if deadline is None else deadline - time.monotonic()
    cmd = [*_base_cmd(), *_input(path, fmt.demuxer), "-map", "0:a:0?", "-c", "copy", "-f", "null",
           "-progress", "pipe:1", "-"]
    result = _run(cmd, timeout)
    text = result.stderr.decode("utf-8", errors="replace")
    if "Input #0" not in text:
        raise CorruptMediaError("the audio container cannot be read")
    codec = audio_codec(text)
    if codec is None:
        raise CorruptMediaError("the file has no audio stream")
    if codec not in AUDIO_CODECS or codec not in fmt.codecs:
        raise UnsupportedMediaError(f"audio codec {codec} is not accepted in {fmt.name}")
    header = _DURATION.search(text)
    declared = int(header.group(1)) * 3600 + int(header.group(2)) * 60 + float(header.group(3)) if header else 0.0
    packets = [int(v) for v in _OUT_TIME.findall(result.stdout)]
    if result.returncode != 0 or not packets:
        raise CorruptMediaError("the audio packets cannot be read")
    info = AudioInfo(codec=codec, duration_s=round(max(declared, packets[-1] / 1e6), 3), container=fmt.name,
                     metadata=removed_metadata(text))
    if info.duration_s > limits.max_seconds:
        raise AudioTooLongError(f"{info.duration_s:.1f} s exceeds the {limits.max_seconds:.0f} s audio limit")
    return info


def remux_audio_clean(src: str | Path, dst: str | Path, *, timeout: float = 60.0) -> AudioFormat:
    """Copy the first audio stream without metadata and without re-encoding.

    Drops tags (ID3, Vorbis comments, iTunes atoms, RIFF INFO), chapters, cover art
    (an "attached pic" video stream) and every other stream; ``+bitexact`` keeps
    ffmpeg's encoder tag out. The container kind is kept. Returns the format written.
    """
    fmt = _sniff_file(src)
    cmd = [*_base_cmd(), "-loglevel", "error", "-y", *_input(src, fmt.demuxer), "-map", "0:a:0",
           "-map_metadata", "-1", "-map_chapters", "-1", "-c", "copy", "-fflags", "+bitexact", "-flags", "+bitexact"]
    if fmt.muxer == "mp3":
        cmd += ["-id3v2_version", "0", "-write_xing", "0"]  # no ID3 tag at all, not even an empty one
    if fmt.muxer == "ipod":
        cmd += ["-movflags", "+faststart"]
    result = _run([*cmd, "-f", fmt.muxer, str(dst)], timeout)
    if result.returncode != 0:
        raise CorruptMediaError("the audio could not be remuxed")
    return fmt


def fingerprint(path: str | Path, demuxer: str, *, timeout: float = 60.0, max_seconds: float | None = None,
                ) -> np.ndarray:
    """Chromaprint sub-fingerprints (uint32) of the first audio stream of ``path``.

    Decodes only codecs in :data:`AUDIO_CODECS` (the caller probed); ``max_seconds`` caps
    how much is read. An empty array means the stream was too short to fingerprint
    (under ~2 s of audio). Example::

        words = fingerprint("/tmp/clip.mp3", "mp3")  # array([3492706860, ...], dtype=uint32)
    """
    cmd = [*_base_cmd(), "-loglevel", "error", "-threads", "1", *_input(path, demuxer), "-map", "0:a:0", "-vn",
           "-sn", "-dn"]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds:.3f}"]
    cmd += ["-ac", "1", "-f", "chromaprint", "-fp_format", "raw", "-algorithm", "1", "pipe:1"]
    result = _run(cmd, timeout)
    if result.returncode != 0 or len(result.stdout) % 4:
        raise CorruptMediaError("the audio could not be decoded")
    return np.frombuffer(result.stdout, dtype="<u4").astype(np.uint32)


def encode_fingerprint(words: np.ndarray) -> str:
    """The stored string form: base64 of the little-endian uint32 words (AudioSignal's)."""
    return base64.b64encode(np.asarray(words, dtype="<u4").tobytes()).decode("ascii")


def video_audio_plan(container: str, codec: str | None) -> str:
    """What sanitizing does with a video's first audio track: "copy" (codec allowed and
    its container takes it as is), "drop" (no track, or a codec never decoded) or
    "reencode" (allowed, but this muxer cannot carry it: e.g. PCM in an MP4)."""
    if codec is None or codec not in AUDIO_CODECS:
        return "drop"
    return "copy" if codec in VIDEO_COPY_CODECS.get(container, frozenset()) else "reencode"

