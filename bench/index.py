"""PDQ index at 1M and 10M synthetic hashes against a brute-force numpy scan, same run.

Hashes are uniform random 256-bit values. Real PDQ hashes cluster, so a real bank yields
more candidates per query than this; random data shows the index's mechanics and memory,
not a worst case. Queries: half are planted near copies of indexed hashes (0..31 bits
flipped, so each has at least one hit), half are random (almost surely no hit).

How each figure is measured:
- build: ``PdqIndex.build`` on a uint64 [N, 4] array already in memory.
- on disk: the sum of the saved ``.npy``/``meta.json`` files.
- cold load: the saved files are fsynced and evicted from the page cache
  (``posix_fadvise(DONTNEED)`` on our files only), then a fresh Python process imports
  mediaguard and times ``PdqIndex.load(dir, mmap=True)``; its first queries then fault pages
  in from disk (reported as the "cold" pass). A second fresh process times
  ``load(dir, mmap=False)`` after another eviction: everything read into memory.
- resident memory: VmRSS from /proc/self/status in that process, before load, after load
  and after both query passes (file pages of the mapping count in VmRSS, as in Lambda).
- lookup: per-query wall time at radius 31 over the query set, one process, no threads.
- brute force: ``brute_force`` over the same in-memory array (fewer queries at 10M).

    .venv/bin/python -m bench.index [--sizes 1M,10M] [--queries 1000] [--dir /tmp/mediaguard-bench-index]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mediaguard.analysis.index import PdqIndex, brute_force
from mediaguard.signals import PdqSignal


def _size(text: str) -> int:
    text = text.upper()
    scale = {"K": 10**3, "M": 10**6}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _queries(hashes: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    planted = hashes[rng.integers(0, len(hashes), count // 2)].copy()
    bits = np.unpackbits(planted.view(np.uint8), axis=1)
    for row in bits:
        row[rng.choice(256, int(rng.integers(0, 32)), replace=False)] ^= 1
    planted = np.packbits(bits, axis=1).view("<u8")
    random = rng.integers(0, 2**64, size=(count - count // 2, 4), dtype=np.uint64)
    return np.concatenate([planted, random])


def _evict(directory: Path) -> None:
    for path in directory.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _timed_queries(index: PdqIndex, queries: np.ndarray) -> tuple[list[float], int]:
    times, hits = [], 0
    for q in queries:
        b = q.tobytes()
        t0 = time.perf_counter()
        hits += len(index.query(b, radius=PdqSignal.match_threshold))
        times.append((time.perf_counter() - t0) * 1000)
    return times, hits


def child(directory: str, mmap: bool) -> int:
    """Runs in a fresh process: load, query twice, report as JSON."""
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    index = PdqIndex.load(directory, mmap=mmap)
    load_s = time.perf_counter() - t0
    rss_load = _rss_mb()
    queries = np.load(Path(directory).parent / "queries.npy")
    cold, hits = _timed_queries(index, queries)
    warm, _ = _timed_queries(index, queries)
    print(json.dumps({"load_s": load_s, "rss_before": rss0, "rss_load": rss_load, "rss_after": _rss_mb(),
                      "cold": cold, "warm": warm, "hits": hits, "first_ms": cold[0]}))
    return 0


def _run_child(directory: Path, mmap: bool) -> dict:
    _evict(directory)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "bench.index", "--child", str(directory)] + ([] if mmap else ["--no-mmap"]),
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def _pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def bench_size(n: int, args, rng: np.random.Generator) -> None:
    print(f"\n== {n:,} hashes ==")
    hashes = rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    ids = np.arange(n, dtype=np.int64)
    t0 = time.perf_counter()
    index = PdqIndex.build(hashes, ids)
    build_s = time.perf_counter() - t0
    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    directory = root / "index"
    index.save(directory)
    disk = sum(p.stat().st_size for p in directory.iterdir())
    queries = _queries(hashes, args.queries, rng)
    np.save(root / "queries.npy", queries)
    parts = ", ".join(f"{p.stem} {p.stat().st_size / 1e6:.0f}" for p in sorted(directory.iterdir())
                      if p.stat().st_size > 1e6)
    print(f"build {build_s:.1f} s; on disk {disk / 1e6:.0f} MB ({parts})")

    mm = _run_child(directory, mmap=True)
    print(f"cold load (mmap, fresh process, page cache evicted): {mm['load_s'] * 1000:.1f} ms; "
          f"first query {mm['first_ms']:.1f} ms")
    print(f"VmRSS: {mm['rss_before']:.0f} MB before load, {mm['rss_load']:.0f} MB after load, "
          f"{mm['rss_after']:.0f} MB after {2 * len(queries)} queries")
    for label, times in (("cold pages", mm["cold"]), ("warm pages", mm["warm"])):
        print(f"lookup r=31, {label}: p50 {_pct(times, 50):.2f} ms, p99 {_pct(times, 99):.2f} ms "
              f"({len(times)} queries, {mm['hits']} hits)")
    full = _run_child(directory, mmap=False)
    print(f"load into memory (mmap=False, evicted, fresh process): {full['load_s']:.2f} s; "
          f"VmRSS {full['rss_load']:.0f} MB; lookup p50 {_pct(full['warm'], 50):.2f} ms, "
          f"p99 {_pct(full['warm'], 99):.2f} ms")

    brute_n = args.brute_queries or (100 if n <= 2_000_000 else 20)
    picks = np.concatenate([queries[: brute_n // 2], queries[-(brute_n - brute_n // 2):]])
    brute = []
    for q in picks:
        t0 = time.perf_counter()
        expected = brute_force(hashes, ids, q.tobytes())
        brute.append((time.perf_counter() - t0) * 1000)
        assert index.query(q.tobytes()) == expected  # the bench also checks exactness
    index_p50 = _pct(mm["warm"], 50)
    print(f"brute force r=31: p50 {_pct(brute, 50):.1f} ms ({brute_n} queries, results identical); "
          f"index is {_pct(brute, 50) / index_p50:.0f}x faster at p50")

    extra = rng.integers(0, 2**64, size=(args.delta, 4), dtype=np.uint64)
    t0 = time.perf_counter()
    index.add(extra, ids=np.arange(n, n + args.delta))
    add_ms = (time.perf_counter() - t0) * 1000
    found = index.query(extra[-1].tobytes())
    with_delta, _ = _timed_queries(index, queries[:200])
    print(f"delta: add({args.delta:,}) {add_ms:.1f} ms, matchable at once ({found[:1]}); "
          f"lookup p50 with that delta {_pct(with_delta, 50):.2f} ms")
    if n <= 2_000_000:
        t0 = time.perf_counter()
        index.rebuild()
        print(f"rebuild (main + delta into a fresh index): {time.perf_counter() - t0:.1f} s")
    shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated, e.g. 1M or 1M,10M")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--brute-queries", type=int, default=0, help="default 100 at <= 2M, 20 above")
    parser.add_argument("--delta", type=int, default=10_000)
    parser.add_argument("--dir", default="/tmp/mediaguard-bench-index")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--no-mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, mmap=not args.no_mmap)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; load average {os.getloadavg()[0]:.2f}; uniform random PDQ hashes")
    rng = np.random.default_rng(args.seed)
    for size in args.sizes.split(","):
        bench_size(_size(size), args, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
