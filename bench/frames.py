"""Video frame extraction: keyframes + scene changes (mediaguard.ingress.video) against an
``fps=1`` extraction baseline, same clip, same run.

The clip is made once (and kept in --dir): 60 s of 1280x720 H.264 at 25 fps, 15
scenes of 4 s, each a scikit-image photo under a slow zoom and pan, encoded by x264
with its defaults (a keyframe at every cut, keyint 250). Two re-encodes of it
stand for other encoders: a fixed 2 s GOP without scene cuts (a platform transcode)
and a single keyframe (keyint=infinite, scenecut=0: an uploader hiding scenes).

How each figure is measured (process pinned to one CPU, ffmpeg with -threads 1):
- extract_frames: wall time of ``extract_frames(path, limits)``, probe included,
  frames delivered as PIL RGB images; and with ``full_scan=True``.
- baseline: ``ffmpeg -i clip -vf fps=1,<same scale>,format=rgb24`` into the same PPM
  reader (every frame decoded, one kept per second).
- PDQ: ``pdq_frames`` over the frames extract_frames returned.
- match: vPDQ shares (query, reference) of each re-encode against the x264 clip.

    .venv/bin/python -m bench.frames [--runs 5] [--dir /tmp/mediaguard-bench-frames] [--all-cores]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mediaguard.ingress.video import (
    _CHILD_ENV,
    _SCALE,
    VideoLimits,
    _read_ppm,
    extract_frames,
    ffmpeg_exe,
    pdq_frames,
    vpdq_match,
)
from mediaguard.settings import Settings


def _clips(directory: Path) -> dict[str, Path]:
    from bench.clips import photos, reencode, slideshow

    directory.mkdir(parents=True, exist_ok=True)
    clips = {"x264 default": directory / "x264.mp4", "fixed 2 s GOP": directory / "gop2.mp4",
             "one keyframe": directory / "onekey.mp4"}
    if not clips["x264 default"].exists():
        t0 = time.perf_counter()
        clips["x264 default"].write_bytes(slideshow(photos(15), 4.0, (1280, 720), fps=25))
        print(f"made the 60 s clip in {time.perf_counter() - t0:.0f} s (kept in {directory})")
    source = clips["x264 default"].read_bytes()
    for name, params in (("fixed 2 s GOP", "keyint=50:min-keyint=50:scenecut=0"),
                         ("one keyframe", "keyint=infinite:scenecut=0")):
        if not clips[name].exists():
            clips[name].write_bytes(reencode(source, (1280, 720), crf=23, extra_args=["-x264-params", params]))
    return clips


def baseline_fps1(path: Path) -> int:
    """Frames at 1 fps, through the same scaling and PPM reader as extract_frames."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-threads", "1",
           "-i", str(path), "-map", "0:V:0", "-an", "-filter_threads", "1", "-vf", f"fps=1,{_SCALE},format=rgb24",
           "-f", "image2pipe", "-c:v", "ppm", "pipe:1"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=_CHILD_ENV) as proc:
        assert proc.stdout is not None
        count = sum(1 for _ in _read_ppm(proc.stdout))
    return count


def _timed(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/mediaguard-bench-frames")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one CPU")
    args = parser.parse_args()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # children (ffmpeg) inherit it
    version = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout.split()[2]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores (bench pinned to "
          f"{len(os.sched_getaffinity(0))}), Python {platform.python_version()}, ffmpeg {version} (imageio-ffmpeg); "
          f"load average {os.getloadavg()[0]:.2f}; medians of {args.runs} runs")
    clips = _clips(Path(args.dir))
    limits = VideoLimits.from_settings(Settings())
    reference = None
    for name, path in clips.items():
        ours_s, fs = _timed(lambda p=path: extract_frames(p, limits), args.runs)
        full_s, full = _timed(lambda p=path: extract_frames(p, limits, full_scan=True), args.runs)
        base_s, base_n = _timed(lambda p=path: baseline_fps1(p), args.runs)
        pdq_s, hashes = _timed(lambda f=fs: pdq_frames(f), 1)
        full_hashes = pdq_frames(full)
        print(f"\n== {name}: {path.stat().st_size / 1e6:.1f} MB, 60 s 1280x720 H.264 ==")
        print(f"extract_frames:           {ours_s:.2f} s, {len(fs.frames)} frames, method {fs.method}")
        print(f"extract_frames full_scan: {full_s:.2f} s, {len(full.frames)} frames, method {full.method}")
        print(f"baseline fps=1:           {base_s:.2f} s, {base_n} frames; "
              f"extract_frames is {base_s / ours_s:.1f}x faster (full scan {base_s / full_s:.1f}x)")
        print(f"pdq_frames:               {pdq_s:.2f} s for {len(fs.frames)} frames "
              f"({pdq_s / max(1, len(fs.frames)) * 1000:.0f} ms/frame)")
        if reference is None:
            reference = (hashes, full_hashes)
        else:
            q, r = vpdq_match(hashes, reference[0])
            fq, fr = vpdq_match(full_hashes, reference[1])
            print(f"vPDQ vs x264 default (query, reference share): keyframes {q:.2f}, {r:.2f}; full scan {fq:.2f}, {fr:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
