"""Lambda@Edge origin request on the small-media upload path: strip metadata and
fingerprint at the edge, so a body of up to 1 MB reaches the origin already clean.

It runs exactly the pipeline's code (``mediaguard.ingress.ingest.prepare``, copied into this
package by the Makefile because Lambda@Edge forbids layers), replaces the body with
the sanitized bytes and adds the fingerprints as headers for the origin. Named
``x-amz-meta-*`` so that, when the origin is S3, they become object metadata.

Those headers are hints, never evidence: anyone can send a request with such headers
straight to an origin that is reachable some other way. The S3-triggered sanitize
stage always re-sniffs, re-sanitizes and re-hashes the bytes that landed and never
reads these values; a mismatch can only ever be logged, not trusted. Incoming
headers with our prefix are dropped here before ours are added.

Anything this function cannot do (a body over 1 MB, a truncated body, media that
the sanitizer rejects) passes through untouched, with a header saying why: the S3
stage is authoritative and will make the decision on the full bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from typing import Any

from mediaguard.errors import MediaguardError
from mediaguard.ingress.ingest import prepare
from mediaguard.settings import Settings

# CloudFront hands an origin-request trigger at most 1 MB of body (truncating the
# rest) and accepts a replacement body of at most 1 MB.
MAX_BODY_BYTES = 1024 * 1024
HEADER_PREFIX = "x-amz-meta-mediaguard-"
STATUS_HEADER = f"{HEADER_PREFIX}edge"

logger = logging.getLogger("mediaguard.edge.origin")
logger.setLevel(logging.INFO)
_settings = Settings()  # the library's limits; the edge has no environment to read


def _set(headers: dict, name: str, value: str) -> None:
    headers[name] = [{"key": name, "value": value}]


def _pass_through(request: dict, reason: str) -> dict:
    _set(request["headers"], STATUS_HEADER, f"skipped; reason={reason}")
    logger.info(json.dumps({"event": "edge_skipped", "reason": reason}))
    return request


def process(request: dict) -> dict:
    """Sanitize and fingerprint the request body in place; returns the request."""
    headers = request.setdefault("headers", {})
    for name in [n for n in headers if n.lower().startswith(HEADER_PREFIX)]:
        del headers[name]  # the client does not get to pre-fill our results
    body = request.get("body") or {}
    if body.get("inputTruncated"):
        return _pass_through(request, "body_truncated")
    try:
        data = base64.b64decode(body.get("data") or "", validate=True) if body.get("encoding") == "base64" \
            else (body.get("data") or "").encode()
    except (binascii.Error, ValueError):
        return _pass_through(request, "body_unreadable")
    if not data:
        return _pass_through(request, "no_body")
    if len(data) > MAX_BODY_BYTES:
        return _pass_through(request, "body_too_large")
    declared = (headers.get("content-type") or [{}])[0].get("value")
    t0 = time.perf_counter()
    try:
        prepared = prepare(data, declared, _settings)
    except MediaguardError as error:
        return _pass_through(request, error.reason)
    except Exception:  # noqa: BLE001 - the edge is best effort; S3 stage decides
        logger.exception("edge sanitize failed")
        return _pass_through(request, "edge_error")
    clean, fps = prepared.sanitized, prepared.fingerprints
    if len(clean.data) > MAX_BODY_BYTES:  # e.g. an orientation re-encode grew the file
        return _pass_through(request, "sanitized_body_too_large")
    request["body"] = {"action": "replace", "encoding": "base64", "inputTruncated": False,
                       "data": base64.b64encode(clean.data).decode()}
    _set(headers, "content-type", clean.kind.content_type)
    _set(headers, STATUS_HEADER, "sanitized")
    for name, value in (("sha256", fps.sha256), ("sanitized-sha256", clean.sha256), ("pdq", fps.pdq),
                        ("pdq-quality", str(fps.pdq_quality)), ("phash", fps.phash), ("dhash", fps.dhash),
                        ("metadata-removed", ",".join(clean.removed))):
        _set(headers, f"{HEADER_PREFIX}{name}", value)
    logger.info(json.dumps({"event": "edge_sanitized", "sha256": fps.sha256, "pdq_quality": fps.pdq_quality,
                            "ms": round((time.perf_counter() - t0) * 1000, 1)}))
    return request


def handler(event: dict, context: Any) -> dict:
    return process(event["Records"][0]["cf"]["request"])
