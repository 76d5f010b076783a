"""``mediaguard live simulate``: a video as a live broadcast through the local stack.

The video is cut into HLS segments with ffmpeg (``-f hls -hls_time N``, keyframes forced
every N seconds as IVS asks of encoders), an IVS channel is created in the local stack (moto),
and each segment is put where IVS auto-record puts it in the live recording bucket, so
the real S3 event → SegmentFunction path runs. Segments go in their real order; the timing
is compressed: the next segment is stored as soon as the previous one was decided, not N
seconds later (the latency figures are per segment, so compression does not change them).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediaguard.cli.scan import EXIT_OK, EXIT_SOME_FAILED, Out, load_banks

RENDITION = "720p30"
_EXTINF = re.compile(r"#EXTINF:([0-9.]+),")


def add_live_parser(sub: Any) -> None:
    p = sub.add_parser("live", help="live streams")
    live_sub = p.add_subparsers(dest="live_command", required=True)
    sim = live_sub.add_parser("simulate", help="feed a video as HLS segments through the local stack, segment by segment")
    sim.add_argument("--json", action="store_true", help="one JSON line per segment, then a summary line")
    sim.add_argument("--verified", action="store_true", help="the streamer is verified (no pre-broadcast gate)")
    sim.add_argument("--segment-seconds", type=float, default=2.0, metavar="N",
                     help="HLS segment length (IVS asks encoders for a 2 s keyframe interval)")
    sim.add_argument("--bank", action="append", default=[], metavar="NAME[:KIND]=PATH",
                     help="build a bank first, as for scan --bank; repeatable")
    sim.add_argument("--verbose", action="store_true", help="handler logs (INFO) on stderr")
    sim.add_argument("video", type=Path)


def cut_hls(video: Path, out_dir: Path, seconds: float) -> list[tuple[Path, float, float]]:
    """HLS segments of ``video`` with ffmpeg: (file, t_start, t_end) in playlist order.
    Re-encoded (H.264 + AAC) so a keyframe starts every segment, as an IVS rendition's does."""
    from mediaguard.ingress.video import ffmpeg_exe

    playlist = out_dir / "index.m3u8"
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(video),
           "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
           "-force_key_frames", f"expr:gte(t,n_forced*{seconds})", "-sc_threshold", "0", "-c:a", "aac",
           "-f", "hls", "-hls_time", f"{seconds}", "-hls_list_size", "0", "-hls_playlist_type", "vod",
           "-hls_segment_filename", str(out_dir / "%d.ts"), str(playlist)]
    result = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    if result.returncode != 0 or not playlist.exists():
        raise ValueError(f"ffmpeg could not cut {video.name} into HLS segments")
    segments, t = [], 0.0
    pending: float | None = None
    for line in playlist.read_text().splitlines():
        m = _EXTINF.match(line)
        if m:
            pending = float(m.group(1))
        elif line and not line.startswith("#") and pending is not None:
            segments.append((out_dir / line, round(t, 3), round(t + pending, 3)))
            t += pending
            pending = None
    return segments


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)


def run_live(args: argparse.Namespace, out: Out) -> int:
    from mediaguard.local.runtime import LocalCloud

    if not args.video.is_file():
        sys.stderr.write(f"mediaguard: cannot read {args.video}\n")
        return EXIT_SOME_FAILED
    if not 1.0 <= args.segment_seconds <= 10.0:
        raise ValueError("--segment-seconds must be between 1 and 10")
    with tempfile.TemporaryDirectory(prefix="mg-hls-") as tmp:
        segments = cut_hls(args.video, Path(tmp), args.segment_seconds)
        level = "INFO" if args.verbose else "WARNING"
        with out.quiet_stdout(), LocalCloud(parameters={"LogLevel": level}) as cloud:
            load_banks(cloud, args.bank)
            lines, summary = simulate(cloud, segments, verified=args.verified)
    for line in lines:
        out.line(json.dumps(line) if args.json else
                 f"{line['segment']:>4} {line['t_start']:7.2f}-{line['t_end']:<7.2f} {line['state']:<10} "
                 f"{line['action']:<7} {','.join(line['overlays']) or '-':<20} {line['latency_ms']} ms")
    out.line(json.dumps(summary) if args.json else
             f"final state {summary['final_state']}; transitions {' | '.join(summary['transitions'])}; "
             f"p50 {summary['p50_latency_ms']} ms, p95 {summary['p95_latency_ms']} ms (timing compressed)")
    return EXIT_OK


def simulate(cloud: Any, segments: list[tuple[Path, float, float]], *, verified: bool,
             rendition: str = RENDITION, end: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Put each segment where IVS would, in order; return the per-segment lines and the summary.
    ``cloud`` is a running ``LocalCloud`` (banks already loaded). ``end=False`` leaves the
    broadcast running (no ``recording-ended.json``), e.g. for a moderator to act on."""
    from mediaguard.adapters.live import VERIFIED_TAG, DynamoStreamStore
    from mediaguard.local.template import ACCOUNT_ID
    from mediaguard.stages.segment import stream_chain

    ivs = cloud.client("ivs")
    channel = ivs.create_channel(name="mediaguard-simulate", latencyMode="LOW", type="STANDARD",
                                 tags={VERIFIED_TAG: "true" if verified else "false"})["channel"]["arn"]
    channel_id = channel.rsplit("/", 1)[1]
    recording = secrets.token_hex(6)  # IVS recording ids are 12 characters
    now = datetime.now(UTC)
    prefix = f"ivs/v1/{ACCOUNT_ID}/{channel_id}/{now.year}/{now.month}/{now.day}/{now.hour}/{now.minute}/{recording}"
    bucket = cloud.output("LiveRecordingBucket")
    s3 = cloud.client("s3")
    store = DynamoStreamStore(cloud.deps().settings)
    lines = []
    for path, t_start, t_end in segments:
        n = int(path.stem)
        s3.put_object(Bucket=bucket, Key=f"{prefix}/media/hls/{rendition}/{n}.ts", Body=path.read_bytes(),
                      ContentType="video/MP2T")
        # S3 → SegmentFunction runs inside put_object locally (local/asyncinvoke.py), so the
        # stream now holds this segment's result, unless the function failed.
        record = store.get(recording)
        last = (record.last or {}) if record else {}
        if last.get("segment") != n:
            failed = [f"{i.function}: {i.error}: {i.message}" for i in cloud.invocations if i.error][-1:]
            raise RuntimeError(f"segment {n} was not decided: {failed}")
        lines.append({"segment": n, "t_start": t_start, "t_end": t_end, "state": last["state"],
                      "action": last["action"], "overlays": last["overlays"], "signals": last["signals"],
                      "matches": last["matches"], "latency_ms": last["latency_ms"]})
    if end:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/events/recording-ended.json",
                      Body=b'{"recording_status":"ended"}', ContentType="application/json")
    chain = cloud.deps().items.audit_chain(stream_chain(recording))
    transitions = [f"{r.detail['from']}->{r.detail['to']}" for r in chain if r.detail.get("from") != r.detail.get("to")
                   or r.detail.get("added")]
    latencies = [line["latency_ms"] for line in lines if line["latency_ms"] is not None]
    summary = {"final_state": lines[-1]["state"] if lines else None, "transitions": transitions,
               "p50_latency_ms": _percentile(latencies, 50), "p95_latency_ms": _percentile(latencies, 95),
               "segments": len(lines), "ended": (store.get(recording) or record).stream.state == "ended",
               "timing": "compressed", "stream_id": recording,
               "ivs_put_metadata": len(cloud.ivs.of("PutMetadata"))}
    return lines, summary
