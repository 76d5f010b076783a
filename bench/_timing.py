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
