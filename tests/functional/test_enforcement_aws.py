"""Enforcement's AWS adapters on moto: S3 custody moves with SHA-256 checksums, decision
events through a custom EventBridge bus to an SQS queue, and the signed webhook with its
secret in Secrets Manager.

moto note: moto (5.2) refuses CopyObject into a bucket with a *default* Object Lock
retention unless a Content-MD5 header is sent, a check real S3 applies to uploads with a
body; so the evidence bucket here has Object Lock enabled but no default retention.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws

from mediaguard.adapters.aws import S3BlobStore
from mediaguard.adapters.enforcement import EventBridgeSink, S3BlobCustody, enforcement_ports
from mediaguard.audit import chain as audit
from mediaguard.decisions.enforcement import apply, restore
from mediaguard.decisions.events import (
    DETAIL_TYPE,
    SIGNATURE_HEADER,
    SOURCE,
    DecisionEvent,
    EventDeliveryError,
    parse_webhook,
)
from mediaguard.ports import Deps
from mediaguard.settings import Settings
from tests.conftest import jpeg_bytes, photo
from tests.fakes import Items

REGION = "us-east-1"
UPLOADS, MEDIA, EVIDENCE = "mg-uploads", "mg-media", "mg-evidence"
BUS = "mediaguard-decisions"
MEDIA_ID = "v1d30"
SECRET = "whsec_" + "k" * 58




class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[bytes, str]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append((self.rfile.read(int(self.headers["Content-Length"])), self.headers[SIGNATURE_HEADER]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=UPLOADS)
        s3.put_bucket_versioning(Bucket=UPLOADS, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=MEDIA)
        s3.create_bucket(Bucket=EVIDENCE, ObjectLockEnabledForBucket=True)
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events.create_event_bus(Name=BUS)
        queue = sqs.create_queue(QueueName="platform-decisions")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="to-platform", EventBusName=BUS,
                        EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}))
        events.put_targets(Rule="to-platform", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
        secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="mediaguard/webhook", SecretString=SECRET)["ARN"]
        yield {"s3": s3, "sqs": sqs, "queue": queue, "secret_arn": secret_arn}


def received_events(aws) -> list[dict]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_remove_and_restore_on_s3_with_events_on_the_bus_and_the_webhook(aws):
    # GIVEN an item as the pipeline leaves it: the upload (stored twice: the client retried
    # its POST), the sanitized copy and a frame in the media bucket
    s3 = aws["s3"]
    original, sanitized = jpeg_bytes(photo("astronaut")), jpeg_bytes(photo("astronaut"), quality=80)
    for _ in range(2):
        s3.put_object(Bucket=UPLOADS, Key=f"uploads/{MEDIA_ID}", Body=original, ContentType="image/jpeg")
    sanitized_key = f"media/{MEDIA_ID}/sanitized.jpg"
    s3.put_object(Bucket=MEDIA, Key=sanitized_key, Body=sanitized, ContentType="image/jpeg")
    s3.put_object(Bucket=MEDIA, Key=f"media/{MEDIA_ID}/frames/00000.jpg", Body=sanitized, ContentType="image/jpeg")
    items = Items(keyed=False)
    items.update(MEDIA_ID, {"upload_bucket": UPLOADS, "upload_key": f"uploads/{MEDIA_ID}",
                            "sha256": hashlib.sha256(original).hexdigest(), "sanitized_key": sanitized_key,
                            "sanitized_sha256": hashlib.sha256(sanitized).hexdigest(), "risk": 0.97,
                            "policy_version": "2026-11-23.2"})
    # AND the adapters built from settings, as deps() will build them
    receiver = Receiver()
    settings = Settings(media_bucket=MEDIA, evidence_bucket=EVIDENCE, event_bus_name=BUS, region=REGION,
                        webhook_url=receiver.url, webhook_secret_arn=aws["secret_arn"])
    deps = Deps(settings=settings, blobs=S3BlobStore(s3), items=items,
                enforcement=enforcement_ports(settings, inline_webhook=True))
    try:
        # WHEN the pipeline removes it
        removed = apply(MEDIA_ID, "remove", actor="system:enforce", reason="bank.block", deps=deps)

        # THEN S3's own SHA-256 of each evidence copy equals the hash recorded at ingestion
        for key, data in ((f"evidence/{MEDIA_ID}/original", original),
                          (f"evidence/{MEDIA_ID}/media/sanitized.jpg", sanitized)):
            head = s3.head_object(Bucket=EVIDENCE, Key=key, ChecksumMode="ENABLED")
            assert base64.b64decode(head["ChecksumSHA256"]).hex() == hashlib.sha256(data).hexdigest()
            assert head["ContentType"] == "image/jpeg"
        # AND no version or delete marker of the upload is left, nor anything under media/<id>/
        versions = s3.list_object_versions(Bucket=UPLOADS, Prefix=f"uploads/{MEDIA_ID}")
        assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []
        assert s3.list_objects_v2(Bucket=MEDIA, Prefix=f"media/{MEDIA_ID}/")["KeyCount"] == 0
        # AND the platform's queue received the decision through the bus rule
        [message] = received_events(aws)
        assert message["source"] == SOURCE and message["detail-type"] == DETAIL_TYPE
        assert message["detail"] == removed.event().model_dump(mode="json")

        # WHEN a senior reviewer overturns it
        restored = restore(MEDIA_ID, actor="reviewer:senior-1", reason="automation_error", deps=deps)

        # THEN the sanitized copy is back, byte for byte and with its content type
        back = s3.get_object(Bucket=MEDIA, Key=sanitized_key)
        assert back["Body"].read() == sanitized and back["ContentType"] == "image/jpeg"
        assert restored.served_key == sanitized_key
        [message] = received_events(aws)
        assert message["detail"]["overturned"] is True and message["detail"]["previous_action"] == "remove"
        # AND the webhook got both decisions, signed with the secret from Secrets Manager
        assert [parse_webhook(body, header, SECRET).action for body, header in receiver.requests] == ["remove", "allow"]
        assert audit.verify(items.chains[MEDIA_ID]) == []
    finally:
        receiver.close()


def test_digest_hashes_objects_that_carry_no_sha256_checksum(aws):
    # GIVEN an object written without a SHA-256 checksum (boto3 sends CRC32 by default)
    data = b"frame bytes" * 1000
    aws["s3"].put_object(Bucket=MEDIA, Key="media/x/frames/00001.jpg", Body=data)
    custody = S3BlobCustody(aws["s3"])

    # THEN head has no sha256 to offer, and digest reads and hashes the bytes instead
    assert custody.head(MEDIA, "media/x/frames/00001.jpg").sha256 is None
    assert custody.digest(MEDIA, "media/x/frames/00001.jpg") == hashlib.sha256(data).hexdigest()
    assert custody.digest(MEDIA, "media/x/absent.jpg") is None


def test_a_refused_event_raises_so_the_stage_is_retried(aws):
    event = DecisionEvent(decision_id="0" * 32, media_id=MEDIA_ID, action="allow", previous_action=None,
                          actor_kind="system", policy_version=None, risk=None, reason="policy.no_signal",
                          distribution="normal", decided_at="2026-11-23T10:00:00+00:00")

    with pytest.raises(EventDeliveryError):
        EventBridgeSink(boto3.client("events", region_name=REGION), "no-such-bus").publish(event)
