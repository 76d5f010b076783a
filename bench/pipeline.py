"""Per-stage time for one 12 MP JPEG through the full local pipeline, and the
orchestration overhead (execution wall time minus handler time on the critical path),
printed as a share of that handler time (issue 16 target: <= 20 %).

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

STAGES = ("Start", "Sanitize", "Classify", "Detect", "Similarity", "Score", "Enforce")


def run_local(data: bytes, runs: int) -> tuple[list[dict[str, float]], list[float], list[float], list[float]]:
    per_stage: list[dict[str, float]] = []
    totals, overheads, handlers = [], [], []
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
            # The stages run one after another (a still skips Frames; one batch, so Classify
            # and Detect are single Map iterations). AuditLog is left out: moto calls it from
            # inside the table write of the stage that caused it, so its time is counted there.
            critical = sum(stages[name] for name in STAGES)
            per_stage.append(stages)
            totals.append(total)
            overheads.append(total - critical)
            handlers.append(critical)
    return per_stage, totals, overheads, handlers


def direct_stages(cloud, data: bytes, content_type: str, media_id: str) -> float:
    """Milliseconds for one upload through the stage functions called in sequence,
    in-process against ``cloud``'s moto (the bytes are put in S3 before the clock starts)."""
    from mediaguard.models import ClassifyInput, DetectInput, EnforceInput, ScoreInput, SimilarityInput, Upload
    from mediaguard.stages.classify import classify
    from mediaguard.stages.detect import detect
    from mediaguard.stages.enforce import enforce
    from mediaguard.stages.sanitize import sanitize_and_fingerprint
    from mediaguard.stages.score import score_item
    from mediaguard.stages.similarity import similarity

    deps = cloud.deps()
    bucket = cloud.upload_bucket
    key = f"direct/{media_id}"
    cloud.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    t0 = time.perf_counter()
    upload = Upload(media_id=media_id, bucket=bucket, key=key)
    deps.items.create_once(upload)
    san = sanitize_and_fingerprint(upload, deps)
    frames = san.frames
    cls = [classify(ClassifyInput(media_id=media_id, batch=b), deps) for b in frames.batches]
    det = [detect(DetectInput(media_id=media_id, batch=b), deps) for b in frames.batches]
    sim = similarity(SimilarityInput(media_id=media_id, fingerprints=san.fingerprints, frames=frames,
                                     classify=cls, detect=det), deps)
    score = score_item(ScoreInput(media_id=media_id, classify=cls, similarity=sim,
                                  provenance=san.provenance, detect=det), deps)
    enforce(EnforceInput(media_id=media_id, sanitized_key=frames.sanitized_key,
                         poster_key=frames.poster_key, score=score), deps)
    return (time.perf_counter() - t0) * 1000


def run_direct(data: bytes, runs: int) -> list[float]:
    """The same stage functions, called in-process against moto, without the orchestration."""
    with LocalCloud(parameters={"LogLevel": "ERROR"}) as cloud:
        direct_stages(cloud, data, "image/jpeg", "warm")
        return [direct_stages(cloud, data, "image/jpeg", f"direct-{i}") for i in range(runs)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = photo_12mp_jpeg()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"input: 4000x3000 JPEG, {len(data) / 1e6:.1f} MB, {args.runs} runs after one warm-up (medians)")
    load = os.getloadavg()[0]
    per_stage, totals, overheads, handlers = run_local(data, args.runs)
    direct = run_direct(data, args.runs)
    print("\nper-stage handler time (local mode, in-process handlers):")
    for stage in STAGES:
        print(f"  {stage:<11} {statistics.median(s[stage] for s in per_stage):8.1f} ms")
    total, overhead, base = statistics.median(totals), statistics.median(overheads), statistics.median(direct)
    share = statistics.median(o / h for o, h in zip(overheads, handlers, strict=True))
    print(f"\nexecution wall time (upload -> terminal state): {total:8.1f} ms")
    print(f"critical-path handler time: {statistics.median(handlers):8.1f} ms")
    print(f"orchestration overhead (wall - critical-path handler time): {overhead:8.1f} ms")
    print(f"orchestration overhead / handler time: {share:.0%} (target <= 20%)")
    print(f"baseline: stage functions called directly, same run: {base:8.1f} ms")
    print(f"ratio local pipeline / direct calls: {total / base:.2f}x")
    print(f"load average (1 min) before / after: {load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
