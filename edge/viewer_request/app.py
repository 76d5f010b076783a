"""Lambda@Edge viewer request: HTTP 451 for media geofenced in the viewer's country.

Runs on every request, cache hit or miss (an origin-request trigger would let
cached copies through). Lambda@Edge has no environment variables, so the table
name and region come from ``edge_config.json``, written next to this file by the
build (edge/viewer_request/Makefile). Standard library and the runtime's boto3
only: a viewer trigger's package must stay under 1 MB.

Rules live in the main stack's geofence table (mediaguard.adapters.tables.GeofenceRule):
``country`` (ISO alpha-2, as in CloudFront-Viewer-Country), ``scope`` (``global`` or
``path:<uri prefix>``), ``legal_reference`` and ``expires_at`` (epoch seconds). The
whole table is read once per ``ttl_seconds`` per warm container, not per request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

CONFIG_FILE = Path(__file__).with_name("edge_config.json")
# A rule change reaches every edge within a minute; one table read per container per
# minute stays far below DynamoDB cost and latency that matter, whatever the traffic.
DEFAULT_TTL_SECONDS = 60
# When DynamoDB cannot be read, keep enforcing the last rules we had for this long
# before serving without them (a lapse in geofencing beats an outage for everyone).
MAX_STALE_SECONDS = 3600
RETRY_SECONDS = 5

logger = logging.getLogger("mediaguard.edge.viewer")
logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class Rule:
    country: str
    scope: str
    legal_reference: str
    expires_at: float | None

    def applies(self, country: str, uris: list[str], now: float) -> bool:
        """``uris``: every form of the request's path (see :func:`uri_forms`)."""
        if self.country != country or (self.expires_at is not None and self.expires_at <= now):
            return False  # DynamoDB TTL deletes expired items days late: check here too
        if self.scope == "global":
            return True
        if not self.scope.startswith("path:"):
            return False
        prefix = _collapse(self.scope[len("path:"):])
        return any(uri.startswith(prefix) for uri in uris)


# Percent-decoding rounds before a path counts as unreadable: S3 decodes once, a client
# may encode twice ("%2533" -> "%33" -> "3"); three rounds cover any real double encoding.
MAX_DECODE_ROUNDS = 3


class UnreadablePathError(ValueError):
    """A path that does not decode to one stable UTF-8 string: refused, never guessed."""


def _collapse(path: str) -> str:
    """Repeated slashes as one and ``.``/``..`` segments resolved, as a rule is written."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments) + ("/" if path.endswith("/") and segments else "")


def uri_forms(raw: str) -> list[str]:
    """The request path as written and as every decoding round reads it, each normalised.

    A rule blocks a path when any form starts with its prefix, so ``/%6Dedia/x``,
    ``//media/x``, ``/media//x`` and ``/a/../media/x`` are all ``/media/x``. Matching on
    every form (not only the last) over-blocks an odd key rather than letting one through.
    Raises :class:`UnreadablePathError` for invalid UTF-8, control characters or a path
    still encoded after ``MAX_DECODE_ROUNDS``.
    """
    forms, current = [], raw
    for _ in range(MAX_DECODE_ROUNDS + 1):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in current):
            raise UnreadablePathError("control character in path")
        forms.append(_collapse(current))
        if "%" not in current:
            return forms
        try:
            decoded = unquote_to_bytes(current).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadablePathError("path is not UTF-8 once decoded") from exc
        if decoded == current:
            return forms  # a bare "%" that encodes nothing
        current = decoded
    raise UnreadablePathError("path still percent-encoded after several decodings")


class RuleCache:
    """Every rule of the table, re-read at most once per ``ttl_seconds``."""

    def __init__(self, table: str, region: str, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 client: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.table, self.region, self.ttl = table, region, ttl_seconds
        self._client = client
        self._clock = clock
        self._rules: list[Rule] = []
        self._fresh_at: float | None = None  # last successful read
        self._next_read = float("-inf")
        self._lock = threading.Lock()
        self.loads = 0  # table reads so far; the tests use it to prove the cache works

    def rules(self) -> list[Rule]:
        now = self._clock()
        with self._lock:
            if now >= self._next_read:
                try:
                    self._rules, self._fresh_at = self._load(), now
                    self._next_read = now + self.ttl
                except Exception:  # noqa: BLE001 - any read failure: serve stale, then open
                    logger.exception("geofence rules could not be read")
                    self._next_read = now + RETRY_SECONDS  # not a table read per request
                    if self._fresh_at is None or now - self._fresh_at > MAX_STALE_SECONDS:
                        self._rules = []
            return self._rules

    def _load(self) -> list[Rule]:
        if self._client is None:
            import boto3  # from the Lambda runtime; imported on first use only

            self._client = boto3.client("dynamodb", region_name=self.region)
        self.loads += 1
        rules, start = [], None
        while True:
            kwargs = {"TableName": self.table, "ConsistentRead": False}
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._client.scan(**kwargs)
            rules.extend(_rule(item) for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return rules


def _rule(item: dict) -> Rule:
    expires = item.get("expires_at", {}).get("N")
    return Rule(country=item["country"]["S"].upper(), scope=item["scope"]["S"],
                legal_reference=item.get("legal_reference", {}).get("S", ""),
                expires_at=float(expires) if expires is not None else None)


def blocked_response(rule: Rule) -> dict:
    """RFC 7725: 451 names the legal demand; clients and crawlers get it in a header too."""
    body = {"status": 451, "reason": "unavailable_for_legal_reasons", "country": rule.country,
            "legal_reference": rule.legal_reference}
    return {
        "status": "451",
        "statusDescription": "Unavailable For Legal Reasons",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "application/json"}],
            "cache-control": [{"key": "Cache-Control", "value": "private, no-store"}],
            "x-mediaguard-legal-reference": [{"key": "X-Mediaguard-Legal-Reference", "value": rule.legal_reference}],
        },
        "body": json.dumps(body),
    }


def bad_path_response() -> dict:
    return {
        "status": "400",
        "statusDescription": "Bad Request",
        "headers": {"content-type": [{"key": "Content-Type", "value": "application/json"}],
                    "cache-control": [{"key": "Cache-Control", "value": "private, no-store"}]},
        "body": json.dumps({"status": 400, "reason": "unreadable_path"}),
    }


def decide(request: dict, rules: list[Rule], now: float) -> dict:
    """The 451 response for a geofenced request, 400 for a path that cannot be normalised,
    or the request itself (unchanged) to pass it on."""
    header = request.get("headers", {}).get("cloudfront-viewer-country") or [{}]
    country = str(header[0].get("value", "")).upper()
    if not country:
        return request  # no country (header not configured): nothing to match
    try:
        uris = uri_forms(request.get("uri", ""))
    except UnreadablePathError:
        logger.info(json.dumps({"event": "unreadable_path", "country": country}))
        return bad_path_response()
    for rule in rules:
        if rule.applies(country, uris, now):
            # Country and rule only: never the URI, the viewer's address or headers.
            logger.info(json.dumps({"event": "geofenced", "country": country, "scope": rule.scope}))
            return blocked_response(rule)
    return request


_cache: RuleCache | None = None


def rule_cache() -> RuleCache:
    """The container's cache, built from the config the build baked in."""
    global _cache
    if _cache is None:
        config = json.loads(CONFIG_FILE.read_text())
        _cache = RuleCache(config["table"], config["region"], float(config.get("ttl_seconds", DEFAULT_TTL_SECONDS)))
    return _cache


def handler(event: dict, context: Any) -> dict:
    request = event["Records"][0]["cf"]["request"]
    return decide(request, rule_cache().rules(), time.time())
