"""Timing helper shared by the benchmarks: median wall time after one warm-up call."""

from __future__ import annotations

import statistics
import time


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def interleaved_median_ms(fns: dict[str, object], runs: int) -> dict[str, float]:
    """Median wall time of each function, calling them in turn (one warm-up each): on a
    shared, loaded machine a ratio of two figures is only fair if both saw the same load."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}
