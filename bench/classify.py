"""open_nsfw on onnxruntime: a batch of 16 frames against the same frames one by one, same run.

Frames are real photos (scikit-image) at the sizes a draft decode hands the classifier
(short side 256-640 px), so preprocessing (resize, crop, the reference JPEG round trip)
is included, as in the classify stage. Also: session creation, preprocessing alone, and
one 12 MP JPEG from bytes to scores with draft decoding against a full decode, and the
same path as a ratio to its floor (draft decode + bare inference on a prepared tensor).

    .venv/bin/python -m bench.classify [--runs 7] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench._media import photo_12mp_jpeg
from bench._timing import median_ms
from mediaguard.analysis.classify import decode_for_models, open_nsfw
from mediaguard.ingress.media import load_rgb, open_image

NAMES = ("astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "coins", "moon",
         "immunohistochemistry", "clock", "cell", "horse", "page", "text", "colorwheel")


def frames() -> list[Image.Image]:
    from skimage import data

    out = []
    for i, name in enumerate(NAMES):
        img = Image.fromarray(getattr(data, name)()).convert("RGB")
        side = (256, 384, 512, 640)[i % 4]
        scale = side / min(img.size)
        out.append(img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                              Image.Resampling.BILINEAR))
    return out


def floor_and_path(clf, data: bytes, runs: int) -> tuple[dict[str, float], float]:
    """The floor (draft decode of the bytes + the session run on a tensor prepared beforehand)
    and the whole path (``classify_batch([decode_for_models(bytes)])``), timed alternately in
    one loop so a busy neighbour on the machine slows both alike. Medians per part."""
    tensor = clf.preprocess(decode_for_models(data, 50_000_000))[None]
    parts: dict[str, list[float]] = {"decode": [], "infer": [], "prep": [], "sum": []}
    whole: list[float] = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        img = decode_for_models(data, 50_000_000)
        t1 = time.perf_counter()
        clf._session.run(clf._outputs, {clf._input: tensor})
        t2 = time.perf_counter()
        clf.preprocess(img)
        t3 = time.perf_counter()
        clf.classify_batch([decode_for_models(data, 50_000_000)])
        t4 = time.perf_counter()
        if i:  # the first round is the warm-up
            parts["decode"].append((t1 - t0) * 1000)
            parts["infer"].append((t2 - t1) * 1000)
            parts["sum"].append((t2 - t0) * 1000)
            parts["prep"].append((t3 - t2) * 1000)
            whole.append((t4 - t3) * 1000)
    return {k: statistics.median(v) for k, v in parts.items()}, statistics.median(whole)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    imgs = frames()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores ({platform.processor() or 'cpu'}), "
          f"Python {platform.python_version()}, onnxruntime {ort.__version__}, numpy {np.__version__}; "
          f"medians of {args.runs} runs after a warm-up; {len(imgs)} frames, short side 256-640 px")
    print(f"{'threads':>7}{'load ms':>9}{'prep/frame':>12}{'1-by-1/frame':>14}{'batch16/frame':>15}"
          f"{'batch16 total':>15}{'1-by-1 / batch':>16}")
    for threads in [int(t) for t in args.threads.split(",")]:
        t0 = time.perf_counter()
        clf = open_nsfw(threads)
        load_ms = (time.perf_counter() - t0) * 1000
        prep = median_ms(lambda c=clf: [c.preprocess(i) for i in imgs], args.runs) / len(imgs)
        single = median_ms(lambda c=clf: [c.classify_batch([i]) for i in imgs], args.runs)
        batch = median_ms(lambda c=clf: c.classify_batch(imgs), args.runs)
        print(f"{threads:>7}{load_ms:>9.0f}{prep:>10.1f}ms{single / len(imgs):>12.1f}ms{batch / len(imgs):>13.1f}ms"
              f"{batch:>13.0f}ms{single / batch:>15.2f}x")

    data = photo_12mp_jpeg()
    clf = open_nsfw(1)
    floor, path = floor_and_path(clf, data, max(15, 3 * args.runs))
    print(f"\n12 MP JPEG, bytes to scores vs its floor (1 thread, interleaved, medians of {max(15, 3 * args.runs)}): "
          f"draft decode {floor['decode']:.1f} ms + bare inference {floor['infer']:.1f} ms = floor "
          f"{floor['sum']:.1f} ms; bytes to scores {path:.1f} ms = {path / floor['sum']:.2f}x the floor "
          f"(target <= 1.2x; preprocessing alone {floor['prep']:.1f} ms)")
    drafted = median_ms(lambda: clf.classify_batch([decode_for_models(data, 50_000_000)]), args.runs)
    full = median_ms(lambda: clf.classify_batch([load_rgb(open_image(data, 50_000_000))]), max(3, args.runs // 2))
    a = clf.classify_batch([decode_for_models(data, 50_000_000)])[0].scores["open_nsfw.nsfw"]
    b = clf.classify_batch([load_rgb(open_image(data, 50_000_000))])[0].scores["open_nsfw.nsfw"]
    print(f"\n12 MP JPEG, bytes to scores (1 thread): draft decode {drafted:.0f} ms, full decode {full:.0f} ms "
          f"({full / drafted:.1f}x); nsfw {a:.4f} vs {b:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
