"""Per-stage time for one 12 MP JPEG through the full local pipeline, and the
orchestration overhead (execution wall time minus handler time on the critical path).

Baseline, measured in the same run: the same library stage functions called directly
in sequence (no moto, no Step Functions, no Lambda envelope). Prints the ratio.

    .venv/bin/python -m bench.pipeline [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from bench._media import photo_12mp_jpeg
from mediaguard.local.runtime import LocalCloud


def run_local(data: bytes, runs: int) -> tuple[list[dict[str, float]], list[float], list[float]]:
    per_stage: list[dict[str, float]] = []
    totals, overheads = [], []
    with LocalCloud(parameters={"LogLevel": "ERROR"}) as cloud:
        cloud.wait(cloud.upload(data, "image/jpeg"))  # warm: imports, ONNX session, pynamodb connections
        for _ in range(runs):
            before = len(cloud.invocations)
            t0 = time.perf_counter()
            media_id = cloud.upload(data, "image/jpeg")
            run = cloud.wait(media_id)
            total = (time.perf_counter() - t0) * 1000
            assert run.status == "SUCCEEDED", run.states
            stages = {i.function.removesuffix("Function"): i.ms for i in cloud.invocations[before:]}
            # A still skips Frames; one batch, so Classify is a single Map iteration.
            critical = (stages["Start"] + stages["Sanitize"] + stages["Classify"] + stages["Similarity"]
                        + stages["Score"] + stages["Enforce"])
            per_stage.append(stages)
            totals.append(total)
            overheads.append(total - critical)
    return per_stage, totals, overheads


def run_direct(data: bytes, runs: int) -> list[float]:
    """The same stage functions, called in-process against moto, without the orchestration."""
    from mediaguard.models import ClassifyInput, EnforceInput, ScoreInput, SimilarityInput, Upload
    from mediaguard.stages.classify import classify
    from mediaguard.stages.enforce import enforce
    from mediaguard.stages.sanitize import sanitize_and_fingerprint
    from mediaguard.stages.score import score_item
    from mediaguard.stages.similarity import similarity

    times = []
    with LocalCloud(parameters={"LogLevel": "ERROR"}) as cloud:
        deps = cloud.deps()
        bucket = cloud.upload_bucket
        s3 = cloud.client("s3")

        def once(media_id: str) -> float:
            key = f"direct/{media_id}"
            s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
            t0 = time.perf_counter()
            upload = Upload(media_id=media_id, bucket=bucket, key=key)
            deps.items.create_once(upload)
            san = sanitize_and_fingerprint(upload, deps)
            frames = san.frames
            cls = [classify(ClassifyInput(media_id=media_id, batch=b), deps) for b in frames.batches]
            sim = similarity(SimilarityInput(media_id=media_id, fingerprints=san.fingerprints, frames=frames,
                                                      classify=cls), deps)
            score = score_item(ScoreInput(media_id=media_id, classify=cls, similarity=sim,
                                                   provenance=san.provenance), deps)
            enforce(EnforceInput(media_id=media_id, sanitized_key=frames.sanitized_key,
                                          poster_key=frames.poster_key, score=score), deps)
            return (time.perf_counter() - t0) * 1000

        once("warm")
        times = [once(f"direct-{i}") for i in range(runs)]
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = photo_12mp_jpeg()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"input: 4000x3000 JPEG, {len(data) / 1e6:.1f} MB, {args.runs} runs after one warm-up (medians)")
    per_stage, totals, overheads = run_local(data, args.runs)
    direct = run_direct(data, args.runs)
    print("\nper-stage handler time (local mode, in-process handlers):")
    for stage in ("Start", "Sanitize", "Classify", "Similarity", "Score", "Enforce"):
        print(f"  {stage:<11} {statistics.median(s[stage] for s in per_stage):8.1f} ms")
    total, overhead, base = statistics.median(totals), statistics.median(overheads), statistics.median(direct)
    print(f"\nexecution wall time (upload -> terminal state): {total:8.1f} ms")
    print(f"orchestration overhead (wall - critical-path handler time): {overhead:8.1f} ms")
    print(f"baseline: stage functions called directly, same run: {base:8.1f} ms")
    print(f"ratio local pipeline / direct calls: {total / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
