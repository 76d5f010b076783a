"""Embedding search speed, and the near-duplicate threshold it is used with.

Search (default): exact cosine search with ``EmbeddingIndex`` (float32 rows, memory-mapped
as the similarity stage would map them) at each size, one BLAS thread, against
converting float16 rows to float32 per query. 1024-d rows of |N(0,1)| (non-negative and
so mutually correlated, like ReLU-pooled embeddings); min_cosine 0.9, k 10.

Calibrate (``--calibrate``): the transforms of bench/corpus.py (those tests/unit/test_neardup.py
asserts on) on every photo the test uses plus the pictures Debian desktop packages install under
/usr/share/backgrounds (mate-backgrounds, ukui-wallpapers, lomiri-wallpapers-16.04 were
used for the figures in neardup.py), each taken through the upload path. Prints, per
transform, PDQ's hits and the worst cosine to the source (full frame only / with the
reference views) next to the best cosine to any unrelated reference, then the misses and
false matches at candidate thresholds.

    .venv/bin/python -m bench.embedding [--sizes 10000,100000,1000000] [--runs 50]
    .venv/bin/python -m bench.embedding --calibrate [--models open_nsfw,clip] [--dump cos.npz]

Both models by default: open_nsfw's pooled embedding (batches of 16, as classify runs it)
and the detect stage's CLIP embedding (one image per run), each with its own table, plus
a 50 % centre crop reported beside the tested transforms and, last, the two signals
together (either one matching) against full-frame references, as banks store them.
"""

from __future__ import annotations

import os

# One core, as on a 1769 MB Lambda: set before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mediaguard.analysis.embedding import EmbeddingIndex  # noqa: E402
from mediaguard.signals import EmbeddingSignal  # noqa: E402

DIM = EmbeddingSignal.dimension
# Ubuntu MATE's wallpaper in four tints is one design recoloured: a copy, not an unrelated
# picture (PDQ misses it because the tints change luminance). Only the "Cold" tint is kept.
SAME_DESIGN = ("Ubuntu-Mate-Dark-no-logo", "Ubuntu-Mate-Radioactive-no-logo", "Ubuntu-Mate-Warm-no-logo")


def _write_index(directory: Path, n: int, seed: int = 0) -> None:
    """An index of ``n`` random non-negative unit rows, written in chunks (1M rows are 4 GB)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    vectors = np.lib.format.open_memmap(directory / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, 65536):
        chunk = np.abs(rng.standard_normal((min(65536, n - start), DIM), dtype=np.float32))
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        vectors[start:start + len(chunk)] = chunk
    vectors.flush()
    del vectors
    np.save(directory / "ids.npy", np.arange(n, dtype=np.int64))
    (directory / "meta.json").write_text(json.dumps({"format": 1, "dim": DIM, "count": n, "dtype": "float32"}))


def _timings(fn, queries: np.ndarray) -> tuple[float, float]:
    fn(queries[0])  # warm-up: pages in, BLAS initialised
    samples = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def search(sizes: list[int], runs: int) -> None:
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; {runs} queries per row")
    print(f"{'rows':>9}{'MB f32':>9}{'load ms':>9}{'p50 ms':>9}{'p95 ms':>9}{'f16->f32/query p50':>20}")
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            d = Path(tmp) / str(n)
            _write_index(d, n)
            t0 = time.perf_counter()
            index = EmbeddingIndex.load(d, mmap=True)
            load_ms = (time.perf_counter() - t0) * 1000
            queries = np.abs(rng.standard_normal((runs, DIM), dtype=np.float32))
            p50, p95 = _timings(lambda q, ix=index: ix.query(q, min_cosine=EmbeddingSignal.match_threshold, k=10), queries)
            f16 = "-"
            if n <= 100_000:
                # What storing float16 and converting per query costs (numpy has no float16 BLAS).
                half = np.asarray(index._main, dtype=np.float16)
                f16_p50, _ = _timings(lambda q, h=half: np.asarray(h, dtype=np.float32) @ q, queries[: max(5, runs // 5)])
                f16 = f"{f16_p50:.1f}"
                del half
            print(f"{n:>9}{n * DIM * 4 / 1e6:>9.0f}{load_ms:>9.1f}{p50:>9.2f}{p95:>9.2f}{f16:>20}")
            del index
            for f in d.iterdir():
                f.unlink()


# --- calibration -------------------------------------------------------------------------


def _corpus() -> dict[str, object]:
    from PIL import Image

    from bench.corpus import PHOTOS, fit, photo

    out = {f"skimage/{n}": fit(photo(n), 640) for n in PHOTOS}
    for path in sorted(glob.glob("/usr/share/backgrounds/**/*.*", recursive=True)):
        if not path.lower().endswith((".jpg", ".jpeg", ".png")):
            continue
        if any(tint in path for tint in SAME_DESIGN):
            continue
        with Image.open(path) as img:
            if "transparency" in img.info or ("A" in img.getbands() and img.getchannel("A").getextrema()[0] < 250):
                continue  # overlays meant to be composited over a colour, not pictures
            img.draft("RGB", (640, 640))
            out[path.removeprefix("/usr/share/backgrounds/")] = fit(img.convert("RGB"), 640)
    return out


# A 50 % centre crop: past the transforms the unit test asserts on, where the two models part.
EXTRA_TRANSFORMS = ("crop_50",)


def calibrate(thresholds: list[float], models: list[str], dump: str | None = None) -> None:
    from bench.corpus import TRANSFORMS, centre_crop, upload_features
    from mediaguard.analysis.classify import open_nsfw
    from mediaguard.analysis.neardup import PictureSignals, decide, pdq_distance, reference_views
    from mediaguard.settings import Settings

    settings = Settings()
    threads = int(os.environ.get("MEDIAGUARD_ONNX_THREADS", "2"))
    classifier = open_nsfw(threads=threads)
    transforms = {**TRANSFORMS, "crop_50": lambda i: centre_crop(i, 0.5)}

    def embed_open_nsfw(frames):
        return [f.embedding for i in range(0, len(frames), 16) for f in classifier.classify_batch(frames[i:i + 16])]

    def embed_clip(frames):
        from mediaguard.analysis.synthetic import synthetic_detector

        detector = synthetic_detector(threads)
        return [detector.embed(f) for f in frames]  # one image per run, as the detect stage does

    embedders = {"open_nsfw": embed_open_nsfw, "clip": embed_clip}

    t0 = time.perf_counter()
    sources = _corpus()
    names = list(sources)
    prepared = upload_features([sources[n] for n in names], classifier, settings)
    refs: dict[str, PictureSignals] = {n: PictureSignals.of(fps) for n, (fps, _) in zip(names, prepared, strict=True)}
    # The corpus must not contain the same picture twice (wallpaper packages ship sizes).
    dropped = []
    for i, a in enumerate(names):
        for b in names[:i]:
            if b in refs and a in refs and decide(PictureSignals.of(prepared[i][0]), refs[b]).signal in (
                    "pdq", "pdq_dihedral"):
                dropped.append((a, b))
                refs.pop(a)
    names = list(refs)
    frames = {n: prepared[list(sources).index(n)][1] for n in names}
    print(f"corpus: {len(names)} pictures ({sum(n.startswith('skimage/') for n in names)} from scikit-image); "
          f"dropped as duplicates: {[a for a, _ in dropped]}")
    items = [(n, t, fn(sources[n])) for n in names for t, fn in transforms.items()]
    fps = upload_features([img for _, _, img in items], classifier, settings)
    queries = [(n, t, f) for (n, t, _), (f, _) in zip(items, fps, strict=True)]
    queries += [(n, "original", prepared[list(sources).index(n)][0]) for n in names]
    query_frames = [frame for _, frame in fps] + [frames[n] for n in names]
    pdq_hit = np.array([(d := pdq_distance(PictureSignals.of(f), refs[n])) is not None and d[0] <= 31
                        for n, _, f in queries])
    print(f"features of {len(queries)} pictures in {time.perf_counter() - t0:.0f} s\n")
    own = np.array([names.index(n) for n, _, _ in queries])
    rows = np.arange(len(queries))
    is_extra = np.array([t in EXTRA_TRANSFORMS for _, t, _ in queries])
    results = {}
    for model in models:
        t1 = time.perf_counter()
        ref_stack = [np.stack(embedders[model](reference_views(frames[n]))) for n in names]
        q_emb = np.stack(embedders[model](query_frames))
        print(f"{model}: {len(query_frames) + 3 * len(names)} embeddings in {time.perf_counter() - t1:.0f} s")
        # cos[i, j]: query i against reference j (best view); full[i, j]: against the full frame only.
        cos = np.stack([(q_emb @ r.T).max(axis=1) for r in ref_stack], axis=1)
        full = q_emb @ np.stack([r[0] for r in ref_stack]).T
        other = cos.copy()
        other[rows, own] = -1
        other_full = full.copy()
        other_full[rows, own] = -1
        results[model] = (cos, full, other, other_full)

        def table(subset: str, keep: np.ndarray, cos=cos, full=full, other=other, model=model) -> None:
            print(f"{model}, {subset}: per transform, worst cosine to the source (full frame / best view) vs best "
                  "cosine to an unrelated reference")
            print(f"{'transform':<17}{'PDQ hits':>10}{'worst full':>12}{'median full':>13}{'worst views':>13}"
                  f"{'best other':>12}{'margin':>9}")
            for t in ["original", *transforms]:
                m = keep & np.array([tt == t for _, tt, _ in queries])
                worst_full, worst_views, best_other = full[m, own[m]].min(), cos[m, own[m]].min(), other[m].max()
                print(f"{t:<17}{int(pdq_hit[m].sum()):>5}/{int(m.sum()):<4}{worst_full:>12.3f}"
                      f"{np.median(full[m, own[m]]):>13.3f}{worst_views:>13.3f}{best_other:>12.3f}"
                      f"{worst_views - best_other:>+9.3f}")
            print()

        skimage = np.array([n.startswith("skimage/") for n, _, _ in queries])
        table("scikit-image photos (the unit test's corpus)", skimage)
        table("whole corpus", np.ones(len(queries), dtype=bool))

    if dump:  # every cosine, to try other rules without embedding again
        np.savez_compressed(dump, pdq_hit=pdq_hit, is_extra=is_extra, own=own,
                            transforms=np.array([t for _, t, _ in queries]), names=np.array(names),
                            **{f"{m}_{k}": r[i] for m, r in results.items() for i, k in enumerate(("cos", "full"))})
    # The threshold table counts the unit test's transforms only (crop_50 is reported above).
    need = ~pdq_hit & ~is_extra
    base = ~is_extra
    print(f"copies PDQ missed: {int(need.sum())} of {int(base.sum())}; unrelated (picture, reference) pairs: "
          f"{int(base.sum()) * (len(names) - 1)}")
    for model, (cos, full, other, other_full) in results.items():
        unrelated = other[base][other[base] > -1]
        print(f"\n{model}: unrelated cosine p99.9 {np.quantile(unrelated, 0.999):.3f}, max {unrelated.max():.3f}")
        print(f"{'threshold':>10}{'missed (views)':>16}{'missed (full)':>15}{'false (views)':>15}{'false (full)':>14}"
              f"{'crop_50 kept (full)':>21}  pictures in false pairs (views)")
        crop50 = np.array([t == "crop_50" for _, t, _ in queries])
        for th in thresholds:
            missed_views = int((cos[rows, own][need] < th).sum())
            missed_full = int((full[rows, own][need] < th).sum())
            false_idx = np.argwhere(base[:, None] & (other >= th))
            false_full = int((base[:, None] & (other_full >= th)).sum())
            kept50 = int((full[rows, own][crop50] >= th).sum())
            pairs: dict[tuple[str, str], float] = {}
            for i, j in false_idx:
                key = tuple(sorted((queries[i][0], names[j])))
                pairs[key] = max(pairs.get(key, 0.0), round(float(other[i, j]), 3))
            print(f"{th:>10.2f}{missed_views:>16}{missed_full:>15}{len(false_idx):>15}{false_full:>14}"
                  f"{kept50:>15}/{int(crop50.sum()):<5}  {sorted(pairs.items(), key=lambda kv: -kv[1])[:3]}")
        missed = [(n, t, round(float(cos[i, own[i]]), 3)) for i, (n, t, _) in enumerate(queries) if need[i]]
        print(f"{model}: lowest cosines among copies PDQ missed:", sorted(missed, key=lambda x: x[2])[:8])
    if {"open_nsfw", "clip"} <= set(results):
        # Both signals beside each other, references as banks store them (the full frame only):
        # a copy is caught, or an unrelated pair matched, when either signal says so.
        (_, ns_full, _, ns_other), (_, cl_full, _, cl_other) = results["open_nsfw"], results["clip"]
        crop50 = np.array([t == "crop_50" for _, t, _ in queries])
        ns_own, cl_own = ns_full[rows, own], cl_full[rows, own]
        base_th = EmbeddingSignal.match_threshold
        print(f"\nopen_nsfw >= {base_th} or clip >= t (full-frame references):")
        print(f"{'t':>6}{'missed':>8}{'false pairs':>13}{'crop_50 kept':>14}")
        for th in thresholds:
            caught = (ns_own >= base_th) | (cl_own >= th)
            false = base[:, None] & ((ns_other >= base_th) | (cl_other >= th))
            print(f"{th:>6.2f}{int((~caught[need]).sum()):>8}{int(false.sum()):>13}"
                  f"{int(caught[crop50].sum()):>9}/{int(crop50.sum())}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--thresholds", default="0.85,0.88,0.90,0.92,0.94,0.95,0.96")
    parser.add_argument("--models", default="open_nsfw,clip", help="embeddings to calibrate: open_nsfw, clip")
    parser.add_argument("--dump", help="write every cosine to this .npz")
    args = parser.parse_args()
    if args.calibrate:
        calibrate([float(x) for x in args.thresholds.split(",")], args.models.split(","), args.dump)
    else:
        search([int(x) for x in args.sizes.split(",")], args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
