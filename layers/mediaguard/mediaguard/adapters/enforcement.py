"""Enforcement's adapters: S3 custody moves, the EventBridge sink and the signed webhook."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from mediaguard import observability
from mediaguard.adapters.secrets import SecretsManagerSecret
from mediaguard.decisions.events import (
    DETAIL_TYPE,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SOURCE,
    DecisionEvent,
    EventDeliveryError,
    sign,
)
from mediaguard.errors import MediaguardError
from mediaguard.ports import EnforcementPorts, ReviewQueue, StoredObject
from mediaguard.settings import Settings

logger = Logger(service="mediaguard", child=True)

_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_CHUNK = 1024 * 1024


class S3BlobCustody:
    """``ports.BlobCustody`` on S3. Copies are server-side (no bytes through Lambda, up to
    CopyObject's 5 GB) and ask S3 for a SHA-256 of the copy, which is what the caller
    compares with the hash recorded at ingestion."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def head(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        try:
            response = self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **_version(version_id))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _NOT_FOUND:
                return None
            raise
        return StoredObject(bucket=bucket, key=key, size=int(response["ContentLength"]), sha256=_full_sha256(response),
                            content_type=response.get("ContentType"), version_id=response.get("VersionId"))

    def list(self, bucket: str, prefix: str) -> list[str]:
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return sorted(keys)

    def digest(self, bucket: str, key: str, version_id: str | None = None) -> str | None:
        head = self.head(bucket, key, version_id)
        if head is None:
            return None
        if head.sha256:
            return head.sha256
        digest = hashlib.sha256()
        # The version head named: hashing "the latest" could hash bytes put there since.
        body = self.client.get_object(Bucket=bucket, Key=key, **_version(head.version_id or version_id))["Body"]
        for chunk in body.iter_chunks(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str,
             src_version_id: str | None = None) -> StoredObject:
        source = {"Bucket": src_bucket, "Key": src_key, **_version(src_version_id)}
        response = self.client.copy_object(
            Bucket=dst_bucket, Key=dst_key, CopySource=source,
            ChecksumAlgorithm="SHA256", MetadataDirective="COPY",
            # Upload tags (mediaguard-state) are not evidence; not copying them also spares
            # the role s3:GetObjectTagging/PutObjectTagging on both buckets.
            TaggingDirective="REPLACE",
        )
        # The version this copy created, not the key's latest (a versioned evidence bucket).
        head = self.head(dst_bucket, dst_key, response.get("VersionId"))
        if head is None:
            raise MediaguardError("copied object is not readable back", reason="copy_failed")
        if head.sha256 is None:
            copied = response.get("CopyObjectResult", {}).get("ChecksumSHA256")
            sha = base64.b64decode(copied).hex() if copied else self.digest(dst_bucket, dst_key, head.version_id)
            head = StoredObject(dst_bucket, dst_key, head.size, sha, head.content_type, head.version_id)
        return head

    def delete(self, bucket: str, keys: list[str]) -> int:
        wanted = set(keys)
        if not wanted:
            return 0
        # One listing for all keys: they share a prefix (media/<id>/ or the upload key itself).
        prefix = os.path.commonprefix(sorted(wanted))
        versions = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if entry["Key"] in wanted:
                    versions.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
        for start in range(0, len(versions), 1000):
            response = self.client.delete_objects(
                Bucket=bucket, Delete={"Objects": versions[start:start + 1000], "Quiet": True}
            )
            if response.get("Errors"):
                codes = sorted({error.get("Code", "?") for error in response["Errors"]})
                raise MediaguardError(f"could not delete {len(response['Errors'])} object versions: {codes}",
                                      reason="delete_failed")
        return len(versions)


    def delete_version(self, bucket: str, key: str, version_id: str) -> int:
        if self.head(bucket, key, version_id) is None:
            return 0  # deleted by an earlier attempt
        self.client.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
        return 1


def _version(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


def _full_sha256(response: dict) -> str | None:
    """Hex SHA-256 when S3 holds one for the whole object; a multipart upload's composite
    checksum ("...-3", ChecksumType COMPOSITE) is a hash of part hashes, not of the bytes."""
    value = response.get("ChecksumSHA256")
    if not value or "-" in value or response.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    return base64.b64decode(value).hex()


class EventBridgeSink:
    """``ports.DecisionSink``: one ``mediaguard.decision`` event on the platform's bus."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, event: DecisionEvent) -> None:
        entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": event.model_dump_json(),
                 "EventBusName": self.bus_name}
        try:
            response = self.client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise EventDeliveryError(f"put_events failed: {type(exc).__name__}") from exc
        # put_events answers 200 even when an entry was refused; the count is the only signal.
        if response.get("FailedEntryCount"):
            code = response["Entries"][0].get("ErrorCode", "unknown")
            raise EventDeliveryError(f"EventBridge refused the event: {code}")


# --- webhook --------------------------------------------------------------------------


class WebhookDeliveryError(EventDeliveryError):
    reason = "webhook_failed"


@dataclass(frozen=True)
class Delivery:
    status: int
    attempts: int
    seconds: float


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the 3xx it is: following it would hand the signed body
    to whatever host the receiver (or someone who took over its DNS) names."""

    def redirect_request(self, *args, **kwargs):
        return None


def _status_class(status: int | None) -> str:
    """``4xx`` / ``5xx`` / ``none`` (no answer): a status code family, never the URL."""
    return f"{status // 100}xx" if status else "none"


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError("webhook URLs must be https (plain http only to localhost)")
    return url


class WebhookSink:
    """``ports.DecisionSink``: POST the event, signed (``events`` documents the scheme).

    Retries with exponential backoff and jitter on 5xx, 408, 429, timeouts and
    connection errors; never on other 4xx (the receiver refused this request, sending
    it again will not change that; 408 and 429 are "try later" by definition). Every
    attempt is re-signed with a fresh timestamp. All attempts together stay within
    ``max_seconds``; each one within ``timeout``.
    """

    def __init__(self, url: str, secrets: Callable[[], Sequence[str]], *, timeout: float = 3.0,
                 max_seconds: float = 10.0, max_attempts: int = 5, base_delay: float = 0.5, max_delay: float = 4.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.url = _check_url(url)
        self.secrets = secrets
        self.timeout, self.max_seconds, self.max_attempts = timeout, max_seconds, max_attempts
        self.base_delay, self.max_delay = base_delay, max_delay
        self.sleep, self.clock, self.wall_clock = sleep, clock, wall_clock
        self.opener = urllib.request.build_opener(_NoRedirect)

    def publish(self, event: DecisionEvent) -> None:
        self.deliver(event)

    def deliver(self, event: DecisionEvent) -> Delivery:
        """Send until a 2xx, a non-retryable answer, ``max_attempts`` or ``max_seconds``."""
        body = event.webhook_body()
        start = self.clock()
        deadline = start + self.max_seconds
        attempt, status, error = 0, None, None
        while True:
            attempt += 1
            timeout = min(self.timeout, deadline - self.clock())
            header = sign(body, list(self.secrets()), int(self.wall_clock()))
            status, error = self._post(body, header, event.decision_id, timeout)
            if status is not None and 200 <= status < 300:
                elapsed = self.clock() - start
                logger.info("webhook delivered", extra={"media_id": event.media_id, "decision_id": event.decision_id,
                                                        "status": status, "attempts": attempt})
                return Delivery(status=status, attempts=attempt, seconds=elapsed)
            retryable = status is None or status >= 500 or status in (408, 429)
            logger.warning("webhook attempt failed", extra={"media_id": event.media_id, "attempt": attempt,
                                                            "status": status, "error": error})
            if not retryable or attempt >= self.max_attempts:
                break
            delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            # Stop when the next attempt could not get a useful slice of the budget.
            if self.clock() + delay + min(self.timeout, 0.1) > deadline:
                break
            self.sleep(delay)
        observability.count("WebhookFailures", status=_status_class(status))
        raise WebhookDeliveryError(f"webhook not delivered after {attempt} attempts (status {status}, {error})")

    def _post(self, body: bytes, header: str, event_id: str, timeout: float) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in _check_url
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "mediaguard-webhook/1",
                     SIGNATURE_HEADER: header, EVENT_ID_HEADER: event_id},
        )
        try:
            with self.opener.open(request, timeout=max(timeout, 0.01)) as response:
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            return None, type(exc).__name__


def webhook_sink(settings: Settings, *, secretsmanager: Any = None) -> WebhookSink:
    """The webhook sink the settings describe (URL, secret from Secrets Manager or, locally, inline)."""
    if not settings.webhook_url:
        raise MediaguardError("MEDIAGUARD_WEBHOOK_URL is not configured", reason="misconfigured")
    if settings.webhook_secret_arn:
        client = secretsmanager or boto3.client("secretsmanager", region_name=settings.region)
        secrets: Callable[[], Sequence[str]] = SecretsManagerSecret(client, settings.webhook_secret_arn)
    elif settings.webhook_secret:
        value = settings.webhook_secret.get_secret_value()

        def secrets() -> list[str]:
            return [value]
    else:
        raise MediaguardError("no webhook secret is configured", reason="misconfigured")
    return WebhookSink(settings.webhook_url, secrets, timeout=settings.webhook_timeout_seconds,
                       max_seconds=settings.webhook_max_seconds)


def enforcement_ports(settings: Settings, *, review: ReviewQueue | None = None, inline_webhook: bool = False,
                      session: Any = None) -> EnforcementPorts:
    """Adapters for ``Deps.enforcement``: S3 custody, the EventBridge sink when
    ``MEDIAGUARD_EVENT_BUS`` is set, and (``inline_webhook=True``) the webhook in the
    decision path. On AWS the webhook runs from its own function behind the bus instead,
    so a slow receiver never holds up enforcement."""
    session = session or boto3
    sinks: list[Any] = []
    if settings.event_bus_name:
        sinks.append(EventBridgeSink(session.client("events", region_name=settings.region), settings.event_bus_name))
    if inline_webhook and settings.webhook_url:
        sinks.append(webhook_sink(settings, secretsmanager=session.client("secretsmanager",
                                                                          region_name=settings.region)))
    return EnforcementPorts(custody=S3BlobCustody(session.client("s3", region_name=settings.region)),
                            sinks=sinks, review=review)
