"""Corpus scan throughput: ``mediaguard scan --jobs N`` on 200 mixed photos, against the
bound of the stage functions called directly, one after another, in the same run.

The photos are the ones scikit-image ships (bench/corpus.py), each varied the way
uploads vary: size (320 px to 2400 px on the long side), format (JPEG at several
qualities, PNG, WebP), crop, colour, mirror, grey. The bound is 200 / (sum of the direct
stage times of the same 200 files): what one core does with no orchestration at all.
``scan`` (target, issue 16: >= 0.8x the bound) is timed end to end, stack deployment
included, in the same process after a warm-up scan, so model loading is paid by neither.

    .venv/bin/python -m bench.scan [--count 200] [--jobs N ...]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from bench.corpus import PHOTOS, centre_crop, colour, photo
from bench.pipeline import direct_stages
from mediaguard.cli.scan import Out, run_scan
from mediaguard.local.runtime import LocalCloud

SIDES = (320, 640, 1024, 1600, 2400)
FORMATS = (("JPEG", ".jpg", {"quality": 92}), ("PNG", ".png", {}), ("JPEG", ".jpg", {"quality": 75}),
           ("WEBP", ".webp", {"quality": 85}))
CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def mixed_photos(count: int, folder: Path) -> list[Path]:
    """``count`` files in ``folder``, each a different combination of photo and variation."""
    originals = [photo(name) for name in PHOTOS]
    edits = (lambda im: im, centre_crop, colour, ImageOps.mirror, lambda im: ImageOps.grayscale(im).convert("RGB"))
    paths = []
    for i in range(count):
        img = originals[i % len(originals)]
        img = edits[(i // len(originals)) % len(edits)](img)
        side = SIDES[(i // 3) % len(SIDES)]
        scale = side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BICUBIC)
        fmt, ext, options = FORMATS[(i // 7) % len(FORMATS)]
        buf = io.BytesIO()
        img.save(buf, fmt, **options)
        path = folder / f"photo-{i:03d}{ext}"
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def direct_bound(paths: list[Path]) -> float:
    """Seconds for every file through the stage functions called directly, in sequence."""
    with LocalCloud(parameters={"LogLevel": "ERROR"}) as cloud:
        direct_stages(cloud, paths[0].read_bytes(), CONTENT_TYPES[paths[0].suffix], "warm")
        total_ms = sum(direct_stages(cloud, p.read_bytes(), CONTENT_TYPES[p.suffix], f"direct-{i}")
                       for i, p in enumerate(paths))
    return total_ms / 1000


class _Discard(Out):
    """The JSON lines are the CLI's; the bench prints only figures."""

    def line(self, text: str) -> None:
        pass


def timed_scan(paths: list[Path], jobs: int) -> float:
    t0 = time.perf_counter()
    code = run_scan(paths, [], _Discard(), True, "ERROR", jobs=jobs)
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"scan exited {code}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = mixed_photos(args.count, Path(tmp))
        size_mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"input: {len(paths)} mixed photos ({len(PHOTOS)} originals x size/format/edit), {size_mb:.1f} MB")
        timed_scan(paths[:2], 1)  # warm-up: imports, ONNX sessions
        bound_s = direct_bound(paths)
        bound = len(paths) / bound_s
        print(f"bound: direct stage calls in sequence, same run: {bound_s:6.1f} s = {bound:5.2f} images/s")
        for jobs in args.jobs:
            elapsed = timed_scan(paths, jobs)
            rate = len(paths) / elapsed
            print(f"scan --jobs {jobs}: {elapsed:6.1f} s = {rate:5.2f} images/s = {rate / bound:.2f}x the bound "
                  f"(target >= 0.8x)")
    print(f"load average (1 min) before / after: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
