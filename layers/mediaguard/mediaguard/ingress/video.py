"""Video and animation frames for matching: sniff, probe, metadata-free remux,
keyframe + scene-change extraction, per-frame PDQ and vPDQ comparison.

ffmpeg is the static binary of the ``imageio-ffmpeg`` wheel, locally and in the
FfmpegLayer alike (there is no ffprobe: :func:`probe` reads ``ffmpeg -i`` and a
packet copy to ``null``). Every run is an argument list (never a shell), decodes on
one thread, names the demuxer the sniff chose (``-f mov`` / ``-f matroska``, so bytes
that passed as MP4 never reach ffmpeg's other ~370 demuxers), allows only the
``file`` protocol, gets an environment without the function's AWS credentials, and
is killed at a deadline.

How frames are chosen (:func:`extract_frames`), from ``python -m bench.frames`` on a
60 s 1280x720 H.264 clip, one core, ffmpeg ``-threads 1`` (medians; a shared 2-core
machine, +-30-50 %): an ``fps=1`` extraction costs 4.6-7 s because it still decodes
every frame; decoding keyframes only (``-skip_frame nokey``) costs 0.4-0.6 s,
probe included. Encoders place keyframes at scene cuts (x264's ``scenecut``, libvpx's
key-frame detection) and at least every few seconds, so keyframes are the cheap
"scene changes". Where the encoder left a keyframe gap longer than
``LONG_GOP_SECONDS`` (x264 ``keyint=infinite:scenecut=0``, which an uploader can
choose on purpose), those gaps are decoded a second time, skipping non-reference
frames and the loop filter (~2x faster than a full decode; PDQ of a frame 56 s into
one GOP was identical), and ffmpeg's ``select`` keeps frames whose scene score
exceeds ``SCENE_THRESHOLD`` plus one every ``LONG_GOP_SECONDS`` (2.5-3.9 s for the
single-keyframe clip, every scene found).

The limit of keyframe sampling is that it depends on the encoder: a re-encode with
a fixed 2 s GOP and no scene cuts samples mid-scene frames the source never had
(vPDQ: every source frame found in it, but only 50 % of its frames found in the
source). ``full_scan=True`` runs the scene pass over the whole video instead
(1.9-3.5 s a minute of 720p): frames then sit on scene cuts whatever the encoder
did, and the same three encodes match 100 % both ways. Near-identical neighbours (a
static shot with a keyframe every 2 s) are dropped by a 32x32 grey mean absolute
difference (~1 ms a frame; PDQ costs 30-40 ms a frame at 720p, too much to spend
on de-duplication).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from mediaguard.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaTooLargeError,
    UnsupportedMediaError,
    VideoTimeoutError,
    VideoTooLongError,
)
from mediaguard.formats import isobmff, webm
from mediaguard.ingress.kinds import MOV, MP4, VIDEO_FORMATS, WEBM, VideoFormat  # noqa: F401
from mediaguard.ingress.media import (
    GIF,
    PNG,
    WEBP,
    check_dimensions,
    check_frames,
    check_size,
    open_image,
    sniff,
)
from mediaguard.settings import Settings
from mediaguard.signals import PdqSignal, VpdqSignal, hamming

# ffmpeg's select scene score (0-1, a normalised frame difference). Measured on the
# bench clip: cuts between two photos 0.17-1.0, frames inside a moving shot <= 0.05.
SCENE_THRESHOLD = 0.1
# A keyframe gap longer than this is decoded again to find scene changes inside it.
# x264's default keyint is 250 frames (10 s at 25 fps); phones and platforms use 1-4 s.
LONG_GOP_SECONDS = 5.0
# Two kept frames are at least this far apart (an all-intra file has a keyframe per frame).
MIN_SPACING_SECONDS = 0.5
# Frames are scaled so the short side is at most this; PDQ needs >= 512 px to be stable.
FRAME_SHORT_SIDE = 720
# 32x32 grey mean absolute difference (0-255) under which a frame repeats the last kept
# one. Measured: keyframes of a still shot 1 s apart differ by <= 0.42; a slow zoom over
# a texture at 2.7 already moved PDQ by 62 bits, so the bar sits just above the noise.
DUPLICATE_MAD = 1.0
# Video codecs decoded at all. Anything else in an accepted container (ProRes, MJPEG,
# one of the ~560 decoders in this build) is refused before a frame is decoded.
ALLOWED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})
_S = FRAME_SHORT_SIDE
_SCALE = f"scale=w='if(lte(iw,ih),min(iw,{_S}),-2)':h='if(lte(iw,ih),-2,min(ih,{_S}))':flags=area"
# Ample for a demux-only pass over a 512 MiB file; the caller's deadline still applies.
_PROBE_TIMEOUT = 30.0




def sniff_video(head: bytes) -> VideoFormat | None:
    """The video container named by the first bytes (give it the first 4 KiB), or None.

    MP4 and MOV are ISO BMFF files whose leading ``ftyp`` box carries a video brand
    (``qt  `` is QuickTime); HEIF/AVIF brands are still images and return None. WebM is
    EBML whose DocType is ``webm``; other Matroska (DocType ``matroska``) returns None.

    >>> sniff_video(b"\\x00\\x00\\x00\\x14ftypqt  \\x00\\x00\\x00\\x00qt  ").name
    'mov'
    """
    brands = isobmff.ftyp_brands(head)
    if brands is not None:
        major = isobmff.major_brand(head)
        if major == isobmff.QUICKTIME_BRAND:
            return MOV
        if major in isobmff.NOT_VIDEO_MAJOR_BRANDS or brands & (isobmff.HEIF_BRANDS | isobmff.AVIF_BRANDS):
            return None
        return MP4 if brands & isobmff.MP4_BRANDS else None
    if webm.matches(head):
        return WEBM
    return None


@dataclass(frozen=True)
class VideoLimits:
    """Every cap a video or animation is held to; built from :class:`Settings`."""

    max_bytes: int
    max_seconds: float
    max_frames: int  # frames kept for matching
    max_pixels: int
    max_side: int
    timeout_s: float
    # Animations go through the image limits (a GIF is an image upload).
    max_animation_bytes: int
    max_animation_frames: int
    max_total_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoLimits:
        return cls(
            max_bytes=settings.max_video_bytes, max_seconds=settings.max_video_seconds,
            max_frames=settings.max_video_frames, max_pixels=settings.max_pixels, max_side=settings.max_side,
            timeout_s=settings.video_timeout_seconds, max_animation_bytes=settings.max_image_bytes,
            max_animation_frames=settings.max_frames, max_total_pixels=settings.max_total_pixels,
        )


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    width: int  # as displayed (a 90-degree rotation swaps the coded sides)
    height: int
    codec: str
    fps: float
    has_audio: bool
    container: str  # VideoFormat.name: "mp4", "mov" or "webm"
    start_s: float = 0.0  # the first timestamp; frame times are relative to it
    audio_codec: str | None = None  # of the first audio stream (None: no audio)
    # What the metadata-free remux drops, by name (:func:`removed_metadata`).
    metadata: tuple[str, ...] = ()


@dataclass(frozen=True)
class Frame:
    index: int
    t_seconds: float
    image: Image.Image = field(repr=False)


@dataclass(frozen=True)
class FrameSet:
    """Frames chosen for matching. ``truncated`` says the frame cap (or the deadline,
    for the scene pass) dropped frames that differed from the ones kept."""

    frames: list[Frame]
    method: str
    duration_s: float
    truncated: bool
    width: int
    height: int


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the static ffmpeg from the imageio-ffmpeg wheel (the FfmpegLayer on AWS)."""
    import imageio_ffmpeg  # imported on first use: only the video stages carry the layer

    return imageio_ffmpeg.get_ffmpeg_exe()


# ffmpeg parses hostile bytes: it gets no AWS credentials and a fixed locale for parsing.
_CHILD_ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}


def _base_cmd() -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats"]


def _input(path: str | Path, fmt: VideoFormat) -> list[str]:
    return ["-protocol_whitelist", "file", "-f", fmt.demuxer, "-i", str(path)]


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=max(0.1, timeout), env=_CHILD_ENV, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VideoTimeoutError("ffmpeg did not finish within the video time limit") from exc


def _sniff_file(path: str | Path) -> VideoFormat:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise EmptyMediaError("the upload is empty")
    fmt = sniff_video(head)
    if fmt is None:
        raise UnsupportedMediaError("the file is not a supported video type (MP4, MOV, WebM)")
    return fmt


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_START = re.compile(r"start: (-?\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio|Subtitle|Data|Attachment): (\w+)(.*)$")
_DIMS = re.compile(r", (\d+)x(\d+)[ ,\n]")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_OUT_TIME = re.compile(rb"out_time_us=(\d+)")


def _parse_streams(text: str) -> tuple[tuple[str, str, list[str]] | None, str | None]:
    """(codec, rest of line, following lines) of the first real video stream, and the codec
    of the first audio stream (None: no audio). Cover art is a video stream marked
    "(attached pic)" and is skipped."""
    lines = text.splitlines()
    video, audio = None, None
    for i, line in enumerate(lines):
        m = _STREAM.match(line)
        if not m:
            continue
        if m.group(1) == "Audio" and audio is None:
            audio = m.group(2)
        elif m.group(1) == "Video" and video is None and "(attached pic)" not in line:
            follow = []
            for nxt in lines[i + 1 :]:
                if _STREAM.match(nxt) or not nxt.startswith("    "):
                    break
                follow.append(nxt)
            video = (m.group(2), m.group(3) + "\n", follow)
    return video, audio


def probe(path: str | Path, limits: VideoLimits | None = None, *, deadline: float | None = None) -> VideoInfo:
    """Container, codec, size, frame rate, audio and the real duration of a video file.

    The duration is the larger of what the header declares and where the video packets
    actually end (a demux-only pass, ~70 ms for 60 s of 720p), so a header that claims
    5 s cannot smuggle in an hour. With ``limits`` the file is also held to the byte,
    pixel, side and duration caps. Raises :class:`UnsupportedMediaError` (not MP4/MOV/WebM,
    no video stream, codec not allowed), :class:`CorruptMediaError` (unreadable),
    :class:`VideoTooLongError`, :class:`MediaTooLargeError` and the dimension errors.
    Messages never carry paths or bytes. Example::

        info = probe("/tmp/clip.mp4")  # VideoInfo(duration_s=60.0, width=1280, height=720, codec='h264', ...)
    """
    size = os.path.getsize(path)
    if limits is not None and size > limits.max_bytes:
        raise MediaTooLargeError(f"{size} bytes exceeds the {limits.max_bytes}-byte video limit")
    fmt = _sniff_file(path)
    timeout = _PROBE_TIMEOUT if deadline is None else deadline - time.monotonic()
    cmd = [*_base_cmd(), *_input(path, fmt), "-map", "0:V:0?", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-"]
    result = _run(cmd, timeout)
    text = result.stderr.decode("utf-8", errors="replace")
    if "Input #0" not in text:
        raise CorruptMediaError("the video container cannot be read")
    video, audio_codec = _parse_streams(text)
    if video is None and not any(_STREAM.match(line) for line in text.splitlines()):
        raise CorruptMediaError("the video container lists no streams")
    if video is None:
        raise UnsupportedMediaError("the file has no video stream")
    codec, rest, follow = video
    if codec not in ALLOWED_CODECS:
        raise UnsupportedMediaError(f"video codec {codec} is not accepted")
    dims = _DIMS.search(rest)
    if not dims:
        raise CorruptMediaError("the video stream has no frame size")
    width, height = int(dims.group(1)), int(dims.group(2))
    rotation = next((float(m.group(1)) for line in follow if (m := _ROTATION.search(line))), 0.0)
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    fps_match = _FPS.search(rest)
    fps = float(fps_match.group(1)) * (1000 if fps_match and fps_match.group(2) else 1) if fps_match else 0.0
    header = _DURATION.search(text)
    declared = int(header.group(1)) * 3600 + int(header.group(2)) * 60 + float(header.group(3)) if header else 0.0
    start = _START.search(text)
    packets = [int(v) for v in _OUT_TIME.findall(result.stdout)]
    if result.returncode != 0 or not packets:
        raise CorruptMediaError("the video packets cannot be read")
    # out_time is where the last packet starts; it lasts one frame more.
    demuxed = packets[-1] / 1e6 + (1 / fps if fps > 0 else 0.0)
    info = VideoInfo(
        duration_s=round(max(declared, demuxed), 3), width=width, height=height, codec=codec, fps=fps,
        has_audio=audio_codec is not None, container=fmt.name, start_s=float(start.group(1)) if start else 0.0,
        audio_codec=audio_codec, metadata=removed_metadata(text),
    )
    if limits is not None:
        check_dimensions(width, height, max_pixels=limits.max_pixels, max_side=limits.max_side)
        if info.duration_s > limits.max_seconds:
            raise VideoTooLongError(f"{info.duration_s:.1f} s exceeds the {limits.max_seconds:.0f} s video limit")
    return info


# Tags that describe the container itself (brands, handler names, stream language), not
# the recording or the person: present in every file, so never worth listing.
_STRUCTURAL_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "handler_name", "vendor_id",
                              "language", "duration"})
# Tag keys listed by name: the common vocabulary of ID3, Vorbis comments, Matroska, iTunes
# and Apple's camera keys. Any other key is free text the uploader chose (ID3 TXXX, custom
# Vorbis or Matroska tags) and may itself be personal data: those are only counted
# (``other-tags:N``), since the list goes to the audit trail, which erasure cannot rewrite.
_NAMED_TAGS = frozenset({
    "title", "artist", "album", "album_artist", "composer", "performer", "publisher", "author", "comment",
    "description", "synopsis", "genre", "date", "year", "creation_time", "location", "encoder", "encoded_by",
    "copyright", "lyrics", "track", "disc", "grouping", "compilation", "rating", "isrc", "make", "model",
    "software", "keywords", "show", "episode_id", "network", "purchase_date", "gapless_playback",
    "com.apple.quicktime.make", "com.apple.quicktime.model", "com.apple.quicktime.software",
    "com.apple.quicktime.creationdate", "com.apple.quicktime.location.iso6709",
    "com.apple.quicktime.location.accuracy.horizontal", "com.apple.quicktime.content.identifier",
    "com.apple.quicktime.camera.identifier", "com.apple.quicktime.camera.lens_model",
    "com.apple.quicktime.camera.focal_length.35mm_equivalent", "com.apple.quicktime.live-photo.auto",
    "com.android.version", "com.android.capture.fps", "com.android.manufacturer", "com.android.model",
})


def removed_metadata(text: str) -> tuple[str, ...]:
    """What a metadata-free remux drops, named from ffmpeg's description of the input (the
    stderr of a probe): the container's and streams' tags by key when the key is a known
    one (``title``, ``location``, ``creation_time``, ``artist``, ``encoder``...; a ``-eng``
    language suffix folded in), other keys counted (``other-tags:N``), ``chapters``,
    ``cover-art``, and counted tracks it never keeps (``subtitle-tracks:N``,
    ``data-tracks:N``, ``attachments:N``, ``extra-audio-tracks:N``). Values are never read
    into the result: it goes to the item and the audit trail, like a still's list.
    """
    found: set[str] = set()
    others: set[str] = set()
    tracks = {"Subtitle": 0, "Data": 0, "Attachment": 0, "Audio": 0}
    section, reading = None, False
    for line in text.splitlines():
        if line.startswith("Input #0"):
            reading = True
            continue
        if not reading or not line.strip():
            continue
        if line.startswith(("Output #", "Stream mapping")):
            break
        stripped, indent = line.strip(), len(line) - len(line.lstrip(" "))
        if indent == 2:
            stream = _STREAM.match(line)
            section = "container" if stripped == "Metadata:" else "stream" if stream else None
            if stripped == "Chapters:":
                found.add("chapters")
            if stream and stream.group(1) in tracks:
                tracks[stream.group(1)] += 1
            if stream and "(attached pic)" in line:
                found.add("cover-art")
            continue
        if section in ("stream", "stream-tags", "stream-other") and indent == 4:
            # A stream's Metadata block, or its Side data (a display matrix, HDR records:
            # kept by the remux, so never listed) and the like.
            section = "stream-tags" if stripped == "Metadata:" else "stream-other"
            continue
        if (section, indent) in (("container", 4), ("stream-tags", 6)) and ":" in stripped:
            key = re.sub(r"-[a-z]{3}$", "", stripped.split(":", 1)[0].strip().lower())
            if key in _NAMED_TAGS:
                found.add(key)
            elif key and key not in _STRUCTURAL_TAGS:
                others.add(key)
    names = {"Subtitle": "subtitle-tracks", "Data": "data-tracks", "Attachment": "attachments"}
    found |= {f"{names[kind]}:{n}" for kind, n in tracks.items() if kind in names and n}
    if tracks["Audio"] > 1:
        found.add(f"extra-audio-tracks:{tracks['Audio'] - 1}")
    if others:
        found.add(f"other-tags:{len(others)}")
    return tuple(sorted(found))


def remux_clean(src: str | Path, dst: str | Path, *, timeout: float = 60.0, audio: str = "copy") -> VideoFormat:
    """Copy a video without its metadata, without re-encoding; returns the format written.

    Keeps the first real video stream and the first audio stream. ``audio`` is
    :func:`mediaguard.ingress.audio.video_audio_plan`'s answer: "copy" (as it is),
    "reencode" (an allowed codec this muxer cannot carry: AAC 128k for MP4/MOV, Opus 96k
    for WebM) or "drop" (a codec never decoded: the served copy is silent). Drops global and
    per-stream tags (title, location, device, creation time), chapters, subtitles,
    data tracks (GPS/telemetry such as GoPro GPMF or Apple's timed location) and
    attachments; ``+bitexact`` keeps ffmpeg's own version tag out. Rotation is stream
    side data, not a tag, so the picture stays upright. MP4/MOV get ``faststart``
    (the index first, so players can stream the copy); the container kind is kept.
    """
    fmt = _sniff_file(src)
    cmd = [
        *_base_cmd(), "-loglevel", "error", "-y", *_input(src, fmt),
        "-map", "0:V:0", *(["-map", "0:a:0?"] if audio != "drop" else []), "-map_metadata", "-1",
        "-map_chapters", "-1", "-c", "copy", "-fflags", "+bitexact",
    ]
    if audio == "reencode":
        cmd += ["-c:a", "libopus", "-b:a", "96k"] if fmt.muxer == "webm" else ["-c:a", "aac", "-b:a", "128k"]
    if fmt.muxer in ("mp4", "mov"):
        cmd += ["-movflags", "+faststart"]
    result = _run([*cmd, "-f", fmt.muxer, str(dst)], timeout)
    if result.returncode != 0:
        raise CorruptMediaError("the video could not be remuxed")
    return fmt


# MPEG-TS: 188-byte packets, each starting with the sync byte 0x47 (ISO/IEC 13818-1).
TS_PACKET = 188


def is_mpegts(head: bytes) -> bool:
    """True when ``head`` starts with at least three MPEG-TS packets (an HLS ``.ts`` segment)."""
    return len(head) >= 3 * TS_PACKET and all(head[i * TS_PACKET] == 0x47 for i in range(3))


def remux_segment(src: str | Path, dst: str | Path, *, timeout: float = 10.0) -> None:
    """Copy a live HLS segment (MPEG-TS) into MP4 without re-encoding, so the same
    :func:`probe` / :func:`extract_frames` that read uploads read it (they accept MP4,
    MOV and WebM only: MPEG-TS stays refused as an upload). Keeps the first video and
    audio stream, drops metadata; ~20-40 ms for a 2 s 720p segment. Raises
    :class:`UnsupportedMediaError` for anything that is not MPEG-TS,
    :class:`CorruptMediaError` when ffmpeg cannot remux it."""
    with open(src, "rb") as fh:
        if not is_mpegts(fh.read(3 * TS_PACKET)):
            raise UnsupportedMediaError("the live segment is not MPEG-TS")
    cmd = [*_base_cmd(), "-loglevel", "error", "-y", "-protocol_whitelist", "file", "-f", "mpegts", "-i", str(src),
           "-map", "0:V:0", "-map", "0:a:0?", "-map_metadata", "-1", "-c", "copy", "-fflags", "+bitexact",
           "-f", "mp4", str(dst)]
    if _run(cmd, timeout).returncode != 0:
        raise CorruptMediaError("the live segment could not be remuxed")


# --- frame extraction ---------------------------------------------------------------


_SHOWINFO = re.compile(r"\[showinfo@(decoded|out) @ [^\]]*\] n:\s*\d+ pts:\s*-?\d+\s+pts_time:(-?[0-9.]+)")


def _read_ppm(stream: IO[bytes]) -> Iterator[Image.Image]:
    """Frames from ffmpeg's ``image2pipe``/``ppm`` output (header "P6\\nW H\\n255\\n")."""
    while True:
        magic = stream.readline()
        if not magic:
            return
        dims, _maxval = stream.readline().split(), stream.readline()
        if magic.strip() != b"P6" or len(dims) != 2:
            raise CorruptMediaError("ffmpeg produced an unreadable frame")
        width, height = int(dims[0]), int(dims[1])
        data = stream.read(width * height * 3)
        if len(data) < width * height * 3:
            return  # killed at the deadline mid-frame
        yield Image.frombytes("RGB", (width, height), data)


@dataclass
class _Decoded:
    frames: list[tuple[int, Image.Image]]  # (output ordinal, image)
    decoded_times: list[float]  # every frame the decoder produced (with count_decoded)
    output_times: list[float]  # pts of each output frame, by ordinal
    timed_out: bool
    dropped: int  # frames the bounded buffer let go


def _decode(cmd: list[str], deadline: float, keep: int) -> _Decoded:
    """Run an extraction, reading PPM frames as they come. At most ``2 * keep`` frames
    are held: beyond that every other one is dropped (an even spread survives)."""
    frames: list[tuple[int, Image.Image]] = []
    stride, ordinal, dropped = 1, 0, 0
    fired = threading.Event()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=_CHILD_ENV)

        def kill() -> None:
            fired.set()
            proc.kill()

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for img in _read_ppm(proc.stdout):
                if ordinal % stride == 0:
                    frames.append((ordinal, img))
                    if len(frames) > 2 * keep:
                        dropped += len(frames) - len(frames[::2])
                        frames, stride = frames[::2], stride * 2
                else:
                    dropped += 1
                ordinal += 1
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        text = err.read().decode("utf-8", errors="replace")
    times: dict[str, list[float]] = {"decoded": [], "out": []}
    for m in _SHOWINFO.finditer(text):
        times[m.group(1)].append(float(m.group(2)))
    return _Decoded(frames, times["decoded"], times["out"], fired.is_set(), dropped)


def _extract_cmd(path: str | Path, fmt: VideoFormat, *, select: str, skip: str, start: float | None,
                 length: float, count_decoded: bool = False) -> list[str]:
    cmd = [*_base_cmd(), "-loglevel", "info", "-threads", "1", "-skip_frame", skip]
    if skip == "noref":
        # Unfiltered references drift a little over a long GOP; PDQ did not move (module doc).
        cmd += ["-skip_loop_filter", "all"]
    # -copyts: both passes see the container's timestamps, so their frames interleave.
    cmd += ["-copyts", "-protocol_whitelist", "file", "-f", fmt.demuxer]
    if start is not None:
        cmd += ["-ss", f"{start:.6f}"]
    # showinfo logs each frame's time; without checksum=0 it hashes every plane, which
    # doubled the cost of a full-scan pass. Logging every decoded frame is for keyframes only.
    decoded = "showinfo@decoded=checksum=0," if count_decoded else ""
    cmd += [
        "-t", f"{length:.6f}", "-i", str(path), "-map", "0:V:0", "-an", "-sn", "-dn", "-filter_threads", "1",
        "-vf", f"{decoded}select='{select}',{_SCALE},format=rgb24,showinfo@out=checksum=0",
        "-fps_mode", "passthrough", "-f", "image2pipe", "-c:v", "ppm", "pipe:1",
    ]
    return cmd


def _long_gaps(times: Sequence[float], end: float, limit: int = 32) -> list[tuple[float, float]]:
    """Keyframe gaps longer than LONG_GOP_SECONDS, at most ``limit`` (the closest merged)."""
    points = sorted(set(times)) + [end]
    gaps = [(a, b) for a, b in zip(points, points[1:], strict=False) if b - a > LONG_GOP_SECONDS]
    while len(gaps) > limit:
        i = min(range(len(gaps) - 1), key=lambda k: gaps[k + 1][0] - gaps[k][1])
        gaps[i : i + 2] = [(gaps[i][0], gaps[i + 1][1])]
    return gaps


def _gap_select(gaps: Sequence[tuple[float, float]]) -> str:
    """select expression: inside a gap (not its own keyframes), a scene change or
    LONG_GOP_SECONDS since the last pick, never closer than MIN_SPACING_SECONDS."""
    terms = []
    for a, b in gaps:
        since = f"(t-if(isnan(prev_selected_t),{a:.6f},max(prev_selected_t,{a:.6f})))"
        terms.append(
            f"gt(t,{a + 1e-3:.6f})*lt(t,{b - 1e-3:.6f})*gte({since},{MIN_SPACING_SECONDS})"
            f"*(gt(scene,{SCENE_THRESHOLD})+gte({since},{LONG_GOP_SECONDS}))"
        )
    return "+".join(terms)


def _scene_select() -> str:
    """select expression of a full scan: the first frame, then scene changes and one
    frame every LONG_GOP_SECONDS without one, never closer than MIN_SPACING_SECONDS."""
    since = "(t-prev_selected_t)"
    return (f"isnan(prev_selected_t)+gte({since},{MIN_SPACING_SECONDS})"
            f"*(gt(scene,{SCENE_THRESHOLD})+gte({since},{LONG_GOP_SECONDS}))")


def _thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.int16)


def _distinct(items: Sequence[tuple[float, Image.Image]], threshold: float) -> list[tuple[float, Image.Image]]:
    """Keep a frame when it differs from the last kept one by more than ``threshold``."""
    kept: list[tuple[float, Image.Image]] = []
    last: np.ndarray | None = None
    for t, img in items:
        thumb = _thumb(img)
        if last is None or float(np.abs(thumb - last).mean()) > threshold:
            kept.append((t, img))
            last = thumb
    return kept


def _spread(items: Sequence, count: int) -> list:
    """``count`` items evenly spread over ``items``, first and last included."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def _frameset(items: list[tuple[float, Image.Image]], limit: int, *, method: str, duration: float, truncated: bool,
              width: int, height: int) -> FrameSet:
    if len(items) > limit:
        items, truncated = _spread(items, limit), True
    frames = [Frame(i, round(t, 3), img) for i, (t, img) in enumerate(items)]
    return FrameSet(frames, method, duration, truncated, width, height)


def extract_frames(path: str | Path, limits: VideoLimits, *, full_scan: bool = False) -> FrameSet:
    """Keyframes plus scene changes of a video file, as RGB frames (short side <= 720).

    Checks the file against ``limits`` first (:func:`probe`), decodes keyframes only,
    and decodes again only keyframe gaps longer than ``LONG_GOP_SECONDS`` to add frames
    at scene changes (see the module docstring for the measurements behind this).
    ``full_scan=True`` skips the keyframes and runs the scene pass over the whole video
    instead: ~4x the cost, but the frames no longer depend on where the encoder put its
    keyframes (a fixed-GOP re-encode then matches its source both ways).
    Near-identical neighbours are dropped; above ``limits.max_frames`` an even spread is
    kept and ``truncated`` is set. Method "keyframes", "keyframes+scenes" or "scenes".
    Raises :class:`VideoTimeoutError` when the first pass misses the deadline (a second
    pass keeps what it decoded in time and sets ``truncated``), :class:`CorruptMediaError`
    when no frame decodes. Example::

        fs = extract_frames("/tmp/clip.mp4", VideoLimits.from_settings(get_settings()))
        [(f.index, f.t_seconds) for f in fs.frames]  # [(0, 0.0), (1, 4.0), ...]
    """
    deadline = time.monotonic() + limits.timeout_s
    info = probe(path, limits, deadline=deadline)
    fmt = next(f for f in VIDEO_FORMATS if f.name == info.container)
    end = info.start_s + info.duration_s
    if full_scan:
        first = _decode(_extract_cmd(path, fmt, select=_scene_select(), skip="noref", start=None,
                                     length=limits.max_seconds), deadline, limits.max_frames)
        method = "scenes"
    else:
        # Even an all-intra file yields at most ~4x max_frames keyframes into the pipe.
        spacing = max(MIN_SPACING_SECONDS, info.duration_s / (4 * limits.max_frames))
        throttle = f"isnan(prev_selected_t)+gte(t-prev_selected_t,{spacing:.6f})"
        # Input -t caps the read even when the header lied about the duration.
        first = _decode(_extract_cmd(path, fmt, select=throttle, skip="nokey", start=None, length=limits.max_seconds,
                                     count_decoded=True), deadline, limits.max_frames)
        method = "keyframes"
    if first.timed_out:
        raise VideoTimeoutError("decoding the video exceeded the video time limit")
    items = [(first.output_times[o] - info.start_s, img) for o, img in first.frames if o < len(first.output_times)]
    if not items:
        raise CorruptMediaError("no video frame could be decoded")
    truncated = first.dropped > 0
    gaps = [] if full_scan else _long_gaps(first.decoded_times, end)
    if gaps:
        method = "keyframes+scenes"
        start, stop = gaps[0][0], min(gaps[-1][1], info.start_s + limits.max_seconds)
        scene = _decode(_extract_cmd(path, fmt, select=_gap_select(gaps), skip="noref", start=start,
                                     length=stop - start), deadline, limits.max_frames)
        truncated = truncated or scene.timed_out or scene.dropped > 0
        items += [(scene.output_times[o] - info.start_s, img) for o, img in scene.frames if o < len(scene.output_times)]
        items.sort(key=lambda item: item[0])
    items = _distinct(items, DUPLICATE_MAD)
    return _frameset(items, limits.max_frames, method=method, duration=info.duration_s, truncated=truncated,
                     width=info.width, height=info.height)


def _scaled(img: Image.Image) -> Image.Image:
    short = min(img.size)
    if short <= FRAME_SHORT_SIDE:
        return img
    ratio = FRAME_SHORT_SIDE / short
    return img.resize((max(1, round(img.width * ratio)), max(1, round(img.height * ratio))), Image.Resampling.BOX)


def _flatten(frame: Image.Image) -> Image.Image:
    # Transparent pixels hash as they display on a white page, as media.load_rgb does.
    rgba = frame.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def extract_animated_frames(data: bytes, limits: VideoLimits) -> FrameSet:
    """Frames at scene changes of an animated GIF, WebP or APNG, method "animation-scene".

    The file is held to the image limits first (bytes, frame count, per-frame and total
    pixels, side: :func:`media.check_frames`, from headers alone). Every frame is then
    composited by Pillow; a frame is kept when its PDQ is more than 31 bits from the last
    kept frame's, i.e. when it would no longer match it (frames whose 32x32 grey thumbnail
    is unchanged are skipped without hashing). Every frame is decoded anyway, so this is
    affordable here, unlike in video; the grey-thumbnail difference alone is a poor proxy
    (a zoom over a texture moved PDQ 62 bits at a mean difference of 2.7/255). Above
    ``limits.max_frames`` an even spread is kept (``truncated``). A still image yields
    its one frame.
    """
    check_size(data, limits.max_animation_bytes)
    kind = sniff(data)
    if kind not in (GIF, WEBP, PNG):
        raise UnsupportedMediaError("only GIF, WebP and PNG animations are read frame by frame")
    check_frames(data, kind, max_pixels=limits.max_pixels, max_frames=limits.max_animation_frames,
                 max_total_pixels=limits.max_total_pixels, max_side=limits.max_side)
    img = open_image(data, limits.max_pixels, kind=kind, max_side=limits.max_side)
    items: list[tuple[float, Image.Image]] = []
    last_thumb: np.ndarray | None = None
    last_pdq = ""
    t_ms = 0.0
    try:
        for index in range(getattr(img, "n_frames", 1)):
            img.seek(index)
            rgb = _scaled(_flatten(img))
            thumb = _thumb(rgb)
            if last_thumb is None or float(np.abs(thumb - last_thumb).mean()) > DUPLICATE_MAD:
                last_thumb = thumb
                pdq, _quality = PdqSignal.hash_image(rgb)
                if not last_pdq or hamming(pdq, last_pdq) > PdqSignal.match_threshold:
                    items.append((t_ms / 1000, rgb))
                    last_pdq = pdq
            t_ms += float(img.info.get("duration") or 0)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptMediaError("an animation frame is truncated or corrupt") from exc
    return _frameset(items, limits.max_frames, method="animation-scene", duration=t_ms / 1000, truncated=False,
                     width=img.width, height=img.height)


# --- hashing and matching -----------------------------------------------------------


def pdq_frames(frameset: FrameSet, hasher: Callable[[Image.Image], tuple[str, int | None]] = PdqSignal.hash_image,
               ) -> list[tuple[str, int]]:
    """PDQ (hex, quality) of every frame, in order: the per-frame hashes of vPDQ.

    Costs ~30-40 ms per 720p frame on one core (PDQ filters the full frame).
    """
    return [(hex_, int(quality or 0)) for hex_, quality in (hasher(f.image) for f in frameset.frames)]


def vpdq_match(query: Sequence[tuple[str, int]], reference: Sequence[tuple[str, int]],
               distance: int = PdqSignal.match_threshold, min_quality: int = PdqSignal.min_quality,
               ) -> tuple[float, float]:
    """Meta's vPDQ comparison: (share of query frames with a match in the reference,
    share of reference frames with a match in the query); ``VpdqSignal.shares``.

    Frames with PDQ quality below ``min_quality`` are ignored and identical hashes
    counted once, as in ThreatExchange's vpdq; a frame matches when some frame of the
    other video is within ``distance`` bits. Two videos are the same at
    ``VpdqSignal.match_threshold`` both ways. No usable frame on either side gives (0.0, 0.0).

    >>> vpdq_match([("f" * 64, 100)], [("f" * 63 + "e", 90)])
    (1.0, 1.0)
    """
    return VpdqSignal.shares(query, reference, distance, min_quality)
