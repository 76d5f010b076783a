"""Live segments: per-segment decision latency against the bare cost of decoding the
segment's keyframes, same segments, same run.

The broadcast: 30 s of 1280x720 testsrc2 at 30 fps with a 440 Hz tone (AAC), a block bank
holding scikit-image's astronaut photo, which fills the picture from second 20. It is cut
into 2 s HLS segments (``mediaguard live simulate``'s ``cut_hls``: H.264, a keyframe every
2 s, as IVS asks of encoders), and each segment is stored in the local stack's live
recording bucket, unverified streamer, in order, the next one after the previous decision
(compressed timing).

- decision latency: the S3 event's time of the stored segment to the stream's state
  written (SegmentFunction: remux, keyframes, PDQ, Classify + Detect invoked side by side,
  matching, scoring, state, audit/IVS effects), as the handler records it;
- decode: ``remux_segment`` + ``extract_frames`` (keyframes, probe included) of the same
  segment file, in this process, after the run;
- gate decision: the latency of the segment that completes the 10 s pre-broadcast window.

    .venv/bin/python -m bench.live [--seconds 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.corpus import photo


def _percentile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1) if len(values) > 1 else values[0]


def main() -> None:
    from mediaguard.cli.live import cut_hls, simulate
    from mediaguard.cli.scan import load_banks
    from mediaguard.ingress import video
    from mediaguard.local.runtime import LocalCloud
    from mediaguard.settings import get_settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mg-bench-live-") as tmp:
        root = Path(tmp)
        (root / "bank").mkdir()
        photo("astronaut").save(root / "bank" / "astronaut.png")
        clip = root / "broadcast.mp4"
        subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={args.seconds}",
                        "-f", "lavfi", "-i", f"sine=frequency=440:duration={args.seconds}",
                        "-loop", "1", "-i", str(root / "bank" / "astronaut.png"), "-filter_complex",
                        "[2:v]scale=1280:720,setsar=1[p];[0:v][p]overlay=0:0:enable='gte(t,20)'[v]",
                        "-map", "[v]", "-map", "1:a", "-t", str(args.seconds), "-c:v", "libx264",
                        "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)],
                       check=True, capture_output=True)
        (root / "hls").mkdir()
        segments = cut_hls(clip, root / "hls", 2.0)
        with LocalCloud(parameters={"LogLevel": "ERROR"}) as cloud:
            load_banks(cloud, [f"ncii:block={root / 'bank'}"])
            lines, summary = simulate(cloud, segments, verified=False)
        limits = video.VideoLimits.from_settings(get_settings())
        decode = []
        for path, _, _ in segments:
            t0 = time.perf_counter()
            mp4 = path.with_suffix(".mp4")
            video.remux_segment(path, mp4)
            video.extract_frames(mp4, limits)
            decode.append(round((time.perf_counter() - t0) * 1000, 1))
    latency = [line["latency_ms"] for line in lines]
    steady = latency[1:]  # the first segment pays the cold start (models loaded, index fetched)
    gate = next((line for line in lines if line["t_end"] >= 10.0), None)
    report = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
              "segments": len(lines), "segment_seconds": 2.0, "resolution": "1280x720",
              "latency_ms": latency, "decode_ms": decode,
              "cold_first_segment_ms": latency[0],
              "p50_latency_ms": _percentile(steady, 50), "p95_latency_ms": _percentile(steady, 95),
              "p50_decode_ms": _percentile(decode, 50), "p95_decode_ms": _percentile(decode, 95),
              "gate_decision_ms": gate["latency_ms"] if gate else None,
              "final_state": summary["final_state"], "transitions": summary["transitions"]}
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
