"""Concurrent presigned-POST uploads against ``mediaguard serve`` on loopback.

Each upload does what a client does: ``POST /api/v1/uploads`` with the uploader's dev
token, then the multipart form POST to the URL it was granted (serve's ``/s3/``), then
polls ``GET /api/items/<id>`` (a reviewer's view) until the item reaches a terminal state.
Upload-to-decision is the time from the grant request to that state.

Baseline, measured in the same run on the same server: the same number of uploads one
at a time. Prints throughput and p50/p95 upload-to-decision for both, the ratio, and
``lost``: uploads that never reached a terminal state or whose original is neither in
the upload bucket nor in evidence. Bounded: ``--uploads`` (default 8), ``--concurrency``
(default 4), ``--timeout`` seconds per phase (default 300).

    .venv/bin/python -m bench.load [--uploads 8] [--concurrency 4] [--faults 0.1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import requests

from bench.corpus import jpeg_bytes, photo
from mediaguard.local.faults import FaultPlan
from mediaguard.local.serve import LocalServer

TERMINAL = {"done", "rejected", "failed"}


def images(n: int, offset: int) -> list[bytes]:
    """n distinct 480 px JPEGs (a phone photo's share-size), different in each phase."""
    base = photo("coffee").convert("RGB")
    side = min(base.size)
    out = []
    for i in range(offset, offset + n):
        shift = (i * 7) % (side // 5)
        out.append(jpeg_bytes(base.crop((shift, shift, shift + side * 4 // 5, shift + side * 4 // 5))
                              .resize((480, 480)), quality=85))
    return out


class Client:
    def __init__(self, server: LocalServer) -> None:
        self.base = f"{server.url}/api"
        self.uploader = next(u.token for u in server.users if not u.roles)
        self.reviewer = next(u.token for u in server.users if "reviewer" in u.roles)
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _retrying(self, method: str, url: str, **kwargs) -> requests.Response:
        # A client retries a 5xx or 429 (API Gateway's answer to a throttled or failed
        # integration), as any mobile client would; three tries with a short backoff.
        for attempt in range(3):
            response = self.http.request(method, url, timeout=60, **kwargs)
            if response.status_code < 500 and response.status_code != 429:
                return response
            time.sleep(0.2 * 2 ** attempt)
        return response

    def upload(self, data: bytes, deadline: float) -> tuple[str | None, float | None]:
        """(media id, seconds from grant request to a terminal state); None where it failed."""
        t0 = time.perf_counter()
        grant = self._retrying("POST", f"{self.base}/v1/uploads",
                               headers={"Authorization": f"Bearer {self.uploader}"},
                               json={"content_type": "image/jpeg", "content_length": len(data),
                                     "sha256": hashlib.sha256(data).hexdigest()})
        if grant.status_code != 201:
            return None, None
        body = grant.json()
        stored = self._retrying("POST", body["upload"]["url"], data=body["upload"]["fields"],
                                files={"file": ("upload", data, "image/jpeg")})
        if stored.status_code != 204:
            return body["media_id"], None
        while time.monotonic() < deadline:
            view = self.http.get(f"{self.base}/items/{body['media_id']}", timeout=60,
                                 headers={"Authorization": f"Bearer {self.reviewer}"})
            if view.status_code == 200 and _status(view.json()) in TERMINAL:
                return body["media_id"], time.perf_counter() - t0
            time.sleep(0.05)
        return body["media_id"], None


def _status(view: dict) -> str | None:
    item = view.get("item", view)
    return item.get("status") if isinstance(item, dict) else None


def phase(client: Client, server: LocalServer, data: list[bytes], concurrency: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    t0 = time.perf_counter()
    results: list[tuple[str | None, float | None, bytes]] = []
    with ThreadPoolExecutor(concurrency) as pool:
        futures = {pool.submit(client.upload, d, deadline): d for d in data}
        for future in as_completed(futures):
            media_id, seconds = future.result()
            results.append((media_id, seconds, futures[future]))
    wall = time.perf_counter() - t0
    latencies = sorted(s for _, s, _ in results if s is not None)
    return {"wall": wall, "throughput": len(latencies) / wall if wall else 0.0,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p95": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
            if latencies else float("nan"),
            "decided": len(latencies), "lost": lost(server, results)}


def lost(server: LocalServer, results: list[tuple[str | None, float | None, bytes]]) -> int:
    """Uploads without a terminal item, or whose original is in neither bucket."""
    cloud = server.cloud
    s3 = cloud.client("s3")
    missing = 0
    for media_id, seconds, data in results:
        if media_id is None or seconds is None:
            missing += 1
            continue
        digest = hashlib.sha256(data).hexdigest()
        found = False
        for bucket, key in ((cloud.upload_bucket, f"uploads/{media_id}"),
                            (cloud.output("EvidenceBucket"), f"evidence/{media_id}/original")):
            try:
                found |= hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == digest
            except s3.exceptions.NoSuchKey:
                pass
        missing += not found
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--faults", type=float, default=0.0, help="inject this share of AWS faults (local/faults.py)")
    args = parser.parse_args()
    if not 0 < args.uploads <= 500 or not 0 < args.concurrency <= 32:
        parser.error("--uploads 1..500, --concurrency 1..32")
    plan = FaultPlan(rate=args.faults, seed=7, time_scale=0.02) if args.faults else None
    server = LocalServer(port=0, moto_port=0, request_log=None, schedules=None, faults=plan)
    server.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = Client(server)
        client.upload(images(1, 10_000)[0], time.monotonic() + args.timeout)  # warm: imports, ONNX session
        print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"input: {args.uploads} distinct 480x480 JPEGs per phase, presigned POST via serve on loopback"
              + (f", faults {args.faults}" if plan else ""))
        base = phase(client, server, images(args.uploads, 0), 1, args.timeout)
        load = phase(client, server, images(args.uploads, args.uploads), args.concurrency, args.timeout)
        for name, result in (("baseline, sequential", base), (f"concurrent x{args.concurrency}", load)):
            print(f"{name:<22} {result['throughput']:6.2f} uploads/s  p50 {result['p50']:6.2f} s  "
                  f"p95 {result['p95']:6.2f} s  decided {result['decided']}/{args.uploads}  lost: {result['lost']}")
        if base["throughput"]:
            print(f"ratio concurrent / sequential throughput: {load['throughput'] / base['throughput']:.2f}x")
        if plan:
            print(f"faults: {server.cloud.fault_stats.summary()}")
        print(f"lost: {base['lost'] + load['lost']}")
        return 0 if base["lost"] + load["lost"] == 0 else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
