"""Clips made from real photos (scikit-image) with the same ffmpeg binary the
library uses (the ``imageio-ffmpeg`` wheel), so tests need no apt package.

Each scene is one photo with a slow zoom and pan (a "Ken Burns" move): every frame
differs, as in real footage, so encoders spend P-frames on motion and place
keyframes where the picture changes, not only on a fixed grid. Clips are small
(a few hundred KB, a couple of seconds) so the tests run in seconds.

Shared by the tests and ``bench/frames.py``; it lives
here because bench must not import tests.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image, ImageOps

from bench.corpus import photo

# Colour and greyscale photos that ship inside scikit-image (no download), distinct
# enough from each other to be separate scenes.
SCENE_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "camera", "moon", "brick", "grass", "gravel", "clock", "coins", "cell",
)
_AUDIO_CODEC = {"mp4": "aac", "mov": "aac", "webm": "libopus", "mkv": "libopus"}
_SUBTITLE_CODEC = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt", "mkv": "srt"}


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def photos(count: int, offset: int = 0) -> list[Image.Image]:
    """``count`` distinct scikit-image photos as RGB, starting at ``offset`` in SCENE_PHOTOS."""
    names = [SCENE_PHOTOS[(offset + i) % len(SCENE_PHOTOS)] for i in range(count)]
    # A photo used twice in one clip is mirrored so the two scenes still differ.
    return [ImageOps.mirror(photo(n)) if i >= len(SCENE_PHOTOS) else photo(n) for i, n in enumerate(names)]


def _frames(images: Sequence[Image.Image], seconds_each: float, size: tuple[int, int], fps: int,
            motion: bool, zoom: float = 0.12) -> Iterable[bytes]:
    width, height = size
    per_scene = max(1, round(seconds_each * fps))
    for scene, img in enumerate(images):
        iw, ih = img.size
        # Largest box of the target aspect ratio inside the photo.
        bw, bh = (iw, iw * height / width) if iw * height <= ih * width else (ih * width / height, ih)
        for k in range(per_scene):
            p = k / max(1, per_scene - 1) if motion else 0.0
            scale = 1.0 + zoom * p
            w, h = bw / scale, bh / scale
            # Pan towards a corner that changes with the scene, so moves differ too.
            dx, dy = (1 if scene % 2 else -1) * p * (bw - w) / 2, (1 if scene % 3 else -1) * p * (bh - h) / 2
            cx, cy = iw / 2 + dx, ih / 2 + dy
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            yield img.resize(size, Image.Resampling.BILINEAR, box=box).tobytes()


def _encoder_args(codec: str, crf: int) -> list[str]:
    if codec == "libx264":
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if codec == "libvpx-vp9":
        # Realtime mode: VP9's default "good" deadline is ~10x slower, pointless for tests.
        return ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", str(crf + 10),
                "-pix_fmt", "yuv420p"]
    if codec == "libvpx":
        return ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M", "-crf", str(crf),
                "-pix_fmt", "yuv420p"]
    if codec == "mjpeg":
        return ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"]
    raise ValueError(f"unknown test codec {codec}")


def _run(args: list[str], stdin: bytes | None = None, feed: Iterable[bytes] | None = None) -> None:
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *args]
    if feed is None:
        result = subprocess.run(cmd, input=stdin, capture_output=True, timeout=300)
        if result.returncode:
            raise RuntimeError(result.stderr.decode(errors="replace")[-2000:])
        return
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        for chunk in feed:
            proc.stdin.write(chunk)
        proc.stdin.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.wait(timeout=300):
            raise RuntimeError(err.decode(errors="replace")[-2000:])


def slideshow(
    images: Sequence[Image.Image], seconds_each: float = 1.0, size: tuple[int, int] = (640, 360), *,
    codec: str = "libx264", container: str = "mp4", fps: int = 25, crf: int = 23, motion: bool = True,
    audio: bool = False, metadata: dict[str, str] | None = None, subtitle: str | None = None,
    rotation: int | None = None, extra_args: Sequence[str] = (),
) -> bytes:
    """A clip with one scene per image, ``seconds_each`` long, encoded by ffmpeg.

    ``metadata`` becomes container tags (``-metadata key=value``), ``subtitle`` one
    subtitle cue over the whole clip, ``audio`` a sine tone: the extras the
    metadata-removal tests look for. ``extra_args`` go to the encoder (e.g. a
    keyframe interval). ``rotation`` is a display rotation as phones write it.
    """
    width, height = size
    duration = len(images) * max(1, round(seconds_each * fps)) / fps
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"clip.{container}"
        rotate = ["-display_rotation", str(rotation)] if rotation is not None else []
        args = [*rotate, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-"]
        maps = ["-map", "0:v"]
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={duration}"]
            maps += ["-map", f"{len(maps) // 2}:a"]
        if subtitle is not None:
            srt = Path(tmp) / "cue.srt"
            srt.write_text(f"1\n00:00:00,000 --> 00:00:{min(59, int(duration)):02d},000\n{subtitle}\n")
            args += ["-i", str(srt)]
            maps += ["-map", f"{len(maps) // 2}:s"]
        args += maps + _encoder_args(codec, crf) + list(extra_args)
        if audio:
            args += ["-c:a", _AUDIO_CODEC[container], "-b:a", "64k"]
        if subtitle is not None:
            args += ["-c:s", _SUBTITLE_CODEC[container]]
        for key, value in (metadata or {}).items():
            args += ["-metadata", f"{key}={value}"]
        if metadata and container in ("mp4", "mov"):
            # Without this the MP4 muxer keeps only the keys iTunes defines (title, ...).
            args += ["-movflags", "use_metadata_tags"]
        _run([*args, "-t", f"{duration}", str(out)], feed=_frames(images, seconds_each, size, fps, motion))
        return out.read_bytes()


def reencode(data: bytes, size: tuple[int, int], crf: int = 30, *, codec: str = "libx264", container: str = "mp4",
             fps: int | None = None, extra_args: Sequence[str] = ()) -> bytes:
    """The same clip at another resolution and quality, as a platform re-upload would be."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / f"out.{container}"
        src.write_bytes(data)
        rate = ["-r", str(fps)] if fps else []
        _run(["-i", str(src), "-map", "0:v:0", "-vf", f"scale={size[0]}:{size[1]}", *rate,
              *_encoder_args(codec, crf), *extra_args, str(out)])
        return out.read_bytes()


def animated_gif(images: Sequence[Image.Image], frames_each: int = 6, size: tuple[int, int] = (320, 240),
                 duration_ms: int = 80, zoom: float = 0.03) -> bytes:
    """An animated GIF: ``frames_each`` frames per image with a slight zoom, as a reaction GIF has."""
    import io

    # Fast octree palettes: Pillow's default median cut per frame is ~10x slower.
    frames = [Image.frombytes("RGB", size, raw).quantize(255, Image.Quantize.FASTOCTREE)
              for raw in _frames(images, frames_each / 25, size, 25, motion=True, zoom=zoom)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return buf.getvalue()
