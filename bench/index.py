"""PDQ index at 1M and 10M uniform hashes and at 1M skewed hashes, against a brute-force
numpy scan measured in the same run (ratios printed), plus the Lambda cold path (``--cold``).

Uniform: random 256-bit values. Skewed ("biased bits"): bit ``i`` is 1 with probability
``p_i``, the ``p_i`` drawn once from U(0.1, 0.9) (seeded), bits independent. On this set
the previous index had p50 3.5 / p95 7.7 ms at 1M, close to the FIELD-NOTES' 7.8 ms p95
"1M with biased bits". Real PDQ hashes also cluster (correlated bits), which neither set
models. Queries: half are planted near copies of indexed hashes (0..31 bits flipped, so
each has at least one hit), half fresh draws from the same distribution (almost surely
no hit).

How each figure is measured:
- build: ``PdqIndex.build`` on a uint64 [N, 4] array already in memory.
- on disk: the sum of the saved ``.npy``/``meta.json`` files.
- cold load: the saved files are fsynced and evicted from the page cache
  (``posix_fadvise(DONTNEED)`` on our files only), then a fresh Python process imports
  mediaguard and times ``PdqIndex.load(dir, mmap=True)``; its first queries then fault pages
  in from disk (reported as the "cold" pass). A second fresh process times
  ``load(dir, mmap=False)`` after another eviction: everything read into memory.
- resident memory: VmRSS from /proc/self/status in that process, before load, after load
  and after the query passes (file pages of the mapping count in VmRSS, as in Lambda).
- lookup: per-query wall time at radius 31 over the query set, one process, no threads;
  "warm" is the second pass. The machine is shared: the load average is printed, and
  "steady" takes each query's fastest of three warm passes (what a quiet core would see;
  scheduler preemption is removed, cache misses are not).
- brute force: ``brute_force`` over the same in-memory array (fewer queries at 10M); the
  ratio is brute p50 / index warm p50, and every compared result must be identical.
- cold path (``--cold``): what a new similarity container does before its first match.
  S3 is modelled by a throttled copy of the saved files into a fresh directory: each
  stream reads 8 MB ranges at ``--s3-stream-mbps`` (default 90 MB/s, a single-stream GET
  from Lambda), ``--streams`` streams at once (parallel ranged GETs, what boto3's transfer
  manager does) up to ``--s3-cap-mbps`` in total (default 400 MB/s: an assumption about a
  large Lambda's network share, not a measurement). Then load + first query, timed.

    .venv/bin/python -m bench.index [--sizes 1M,10M] [--skew-sizes 1M] [--queries 1000] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
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


class Hashes:
    """Draws uniform or skewed ("biased bits") PDQ-like hashes as uint64 [N, 4]."""

    def __init__(self, kind: str, rng: np.random.Generator, seed: int) -> None:
        self.kind, self.rng = kind, rng
        self.p = np.random.default_rng(seed + 1000).uniform(0.1, 0.9, 256).astype(np.float32)

    def draw(self, n: int) -> np.ndarray:
        if self.kind == "uniform":
            return self.rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
        out = np.empty((n, 4), dtype="<u8")
        for start in range(0, n, 1 << 16):  # 64 MB of float32 draws at a time
            k = min(n, start + (1 << 16)) - start
            bits = (self.rng.random((k, 256), dtype=np.float32) < self.p).astype(np.uint8)
            out[start:start + k] = np.packbits(bits, axis=1, bitorder="little").view("<u8")
        return out


def _queries(hashes: np.ndarray, count: int, source: Hashes) -> np.ndarray:
    rng = source.rng
    planted = hashes[rng.integers(0, len(hashes), count // 2)].copy()
    bits = np.unpackbits(planted.view(np.uint8), axis=1)
    for row in bits:
        row[rng.choice(256, int(rng.integers(0, 32)), replace=False)] ^= 1
    planted = np.packbits(bits, axis=1).view("<u8")
    return np.concatenate([planted, source.draw(count - count // 2)])


def _evict(directory: Path) -> None:
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
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
    """Runs in a fresh process: load, query four times, report as JSON."""
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    index = PdqIndex.load(directory, mmap=mmap)
    load_s = time.perf_counter() - t0
    rss_load = _rss_mb()
    queries = np.load(Path(directory).parent / "queries.npy")
    cold, hits = _timed_queries(index, queries)
    warm, _ = _timed_queries(index, queries)
    steady = np.minimum.reduce([warm, _timed_queries(index, queries)[0], _timed_queries(index, queries)[0]])
    print(json.dumps({"load_s": load_s, "rss_before": rss0, "rss_load": rss_load, "rss_after": _rss_mb(),
                      "cold": cold, "warm": warm, "steady": steady.tolist(), "hits": hits, "first_ms": cold[0]}))
    return 0


def _run_child(directory: Path, mmap: bool) -> dict:
    _evict(directory)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "bench.index", "--child", str(directory)] + ([] if mmap else ["--no-mmap"]),
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def _pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def _throttled_copy(src: Path, dst: Path, names: list[str], stream_mbps: float, streams: int,
                    cap_mbps: float) -> float:
    """Copy ``names`` from src to dst as S3 would deliver them: 8 MB ranges, ``streams`` at
    once, each at most ``stream_mbps`` and all together at most ``cap_mbps``. Returns seconds."""
    part = 8 << 20
    jobs = [(name, off, min(part, (src / name).stat().st_size - off)) for name in names
            for off in range(0, max(1, (src / name).stat().st_size), part)]
    rate = min(stream_mbps * streams, cap_mbps) * 1e6 / streams  # bytes/s per stream
    for name in names:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        with open(dst / name, "wb") as f:
            f.truncate((src / name).stat().st_size)
    lock = threading.Lock()
    queue = list(reversed(jobs))

    def worker() -> None:
        sent, began = 0, time.perf_counter()
        while True:
            with lock:
                if not queue:
                    return
                name, off, size = queue.pop()
            with open(src / name, "rb") as f:
                f.seek(off)
                data = f.read(size)
            with open(dst / name, "r+b") as f:
                f.seek(off)
                f.write(data)
            sent += size
            wait = sent / rate - (time.perf_counter() - began)
            if wait > 0:
                time.sleep(wait)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def cold_path(directory: Path, queries: np.ndarray, args) -> None:
    """Download (throttled) + load + first query, for the full index and for the part a
    container needs to give its first exact answer (hashes + ids: a linear scan)."""
    names = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    first = [n for n in names if n.split(".")[0] not in ("counts", "rows")]
    size = {n: (directory / n).stat().st_size for n in names}
    n = json.loads((directory / "meta.json").read_text())["count"]
    kbits_entries = len(np.load(directory / "counts.npy", mmap_mode="r"))
    v1_mb = (sum(size.values()) - size["counts.npy"] + 4 * kbits_entries + 4 * n) / 1e6
    print(f"cold path model: S3 {args.s3_stream_mbps:.0f} MB/s per stream, aggregate cap {args.s3_cap_mbps:.0f} MB/s "
          f"(stated assumptions); format 2 on disk {sum(size.values()) / 1e6:.0f} MB vs {v1_mb:.0f} MB in format 1 "
          f"(offsets + id_order stored)")
    q = queries[0].tobytes()
    for label, part, streams in (("whole index, 1 stream", names, 1),
                                 (f"whole index, {args.streams} streams", names, args.streams),
                                 (f"hashes + ids first (exact scan), {args.streams} streams", first, args.streams)):
        dst = directory.parent / "cold"
        shutil.rmtree(dst, ignore_errors=True)
        dl = _throttled_copy(directory, dst, part, args.s3_stream_mbps, streams, args.s3_cap_mbps)
        t0 = time.perf_counter()
        index = PdqIndex.load(dst, mmap=True)
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.query(q)
        query = time.perf_counter() - t0
        mb = sum(size[n] for n in part) / 1e6
        print(f"  {label}: {mb:.0f} MB in {dl:.1f} s + load {load * 1000:.0f} ms + first query "
              f"{query * 1000:.0f} ms = first answer after {dl + load + query:.1f} s")
        del index
        shutil.rmtree(dst, ignore_errors=True)


def bench_size(n: int, kind: str, args, rng: np.random.Generator) -> None:
    print(f"\n== {n:,} {kind} hashes == (load average {os.getloadavg()[0]:.2f})")
    source = Hashes(kind, rng, args.seed)
    hashes = source.draw(n)
    ids = np.arange(n, dtype=np.int64)
    t0 = time.perf_counter()
    index = PdqIndex.build(hashes, ids)
    build_s = time.perf_counter() - t0
    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    directory = root / "index"
    index.save(directory)
    disk = sum(p.stat().st_size for p in directory.iterdir())
    queries = _queries(hashes, args.queries, source)
    np.save(root / "queries.npy", queries)
    parts = ", ".join(f"{p.stem} {p.stat().st_size / 1e6:.0f}" for p in sorted(directory.iterdir())
                      if p.stat().st_size > 1e6)
    permuted = getattr(index._main, "perm", None) is not None  # (absent before format 2)
    print(f"build {build_s:.1f} s{' (bits permuted for balance)' if permuted else ''}; on disk {disk / 1e6:.0f} MB "
          f"({parts})")

    mm = _run_child(directory, mmap=True)
    print(f"cold load (mmap, fresh process, page cache evicted): {mm['load_s'] * 1000:.1f} ms; "
          f"first query {mm['first_ms']:.1f} ms")
    print(f"VmRSS: {mm['rss_before']:.0f} MB before load, {mm['rss_load']:.0f} MB after load, "
          f"{mm['rss_after']:.0f} MB after {4 * len(queries)} queries")
    for label, times in (("cold pages", mm["cold"]), ("warm pages", mm["warm"]), ("steady (min of 3)", mm["steady"])):
        print(f"lookup r=31, {label}: p50 {_pct(times, 50):.2f} ms, p95 {_pct(times, 95):.2f} ms, "
              f"p99 {_pct(times, 99):.2f} ms ({len(times)} queries, {mm['hits']} hits)")
    if not args.skip_full_load:
        full = _run_child(directory, mmap=False)
        print(f"load into memory (mmap=False, evicted, fresh process): {full['load_s']:.2f} s; "
              f"VmRSS {full['rss_load']:.0f} MB; lookup p50 {_pct(full['warm'], 50):.2f} ms, "
              f"p95 {_pct(full['warm'], 95):.2f} ms")

    brute_n = args.brute_queries or (100 if n <= 2_000_000 else 20)
    picks = np.concatenate([queries[: brute_n // 2], queries[-(brute_n - brute_n // 2):]])
    brute = []
    for q in picks:
        t0 = time.perf_counter()
        expected = brute_force(hashes, ids, q.tobytes())
        brute.append((time.perf_counter() - t0) * 1000)
        assert index.query(q.tobytes()) == expected  # the bench also checks exactness
    print(f"brute force r=31: p50 {_pct(brute, 50):.1f} ms ({brute_n} queries, results identical); index is "
          f"{_pct(brute, 50) / _pct(mm['warm'], 50):.0f}x faster at p50 (warm), "
          f"{_pct(brute, 50) / _pct(mm['warm'], 95):.0f}x brute p50 / index p95")

    if args.cold:
        cold_path(directory, queries, args)
    extra = source.draw(args.delta)
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
    parser.add_argument("--sizes", default="1M,10M", help="uniform hashes, comma-separated, e.g. 1M or 1M,10M")
    parser.add_argument("--skew-sizes", default="1M", help="skewed (biased-bit) hashes; empty for none")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--brute-queries", type=int, default=0, help="default 100 at <= 2M, 20 above")
    parser.add_argument("--delta", type=int, default=10_000)
    parser.add_argument("--dir", default="/tmp/mediaguard-bench-index")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cold", action="store_true", help="model the Lambda cold path (throttled download)")
    parser.add_argument("--s3-stream-mbps", type=float, default=90.0)
    parser.add_argument("--s3-cap-mbps", type=float, default=400.0)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--skip-full-load", action="store_true", help="skip timing load(mmap=False)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--no-mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, mmap=not args.no_mmap)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; load average {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(args.seed)
    for kind, sizes in (("uniform", args.sizes), ("skewed", args.skew_sizes)):
        for size in filter(None, sizes.split(",")):
            bench_size(_size(size), kind, args, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
