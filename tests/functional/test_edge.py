"""Lambda@Edge functions fed the CloudFront samples in events/: geofencing with 451 at
viewer request, metadata removal and fingerprints at origin request."""

from __future__ import annotations

import base64
import copy
import importlib.util
import io
import json
import shutil
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from mediaguard.adapters.geofence import DynamoGeofence
from mediaguard.ingress.ingest import prepare
from mediaguard.local.runtime import LocalCloud
from mediaguard.settings import Settings
from tests.conftest import REPO, load_event

EDGE = REPO / "edge"


def load_app(folder, name: str):
    """Edge functions are deployed as a bare app.py, not a package: load one by path."""
    spec = importlib.util.spec_from_file_location(name, folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# --- viewer request: geofencing ------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud():
    """The main template in moto: its GeofenceTable is the one the edge reads."""
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local


@pytest.fixture
def geofence(cloud):
    settings = cloud.deps().settings.model_copy(update={"geofence_table": cloud.output("GeofenceTable")})
    rules = DynamoGeofence(settings)
    yield rules
    for row in cloud.client("dynamodb").scan(TableName=cloud.output("GeofenceTable"))["Items"]:
        rules.delete(row["country"]["S"], row["scope"]["S"])


@pytest.fixture
def viewer(cloud, tmp_path):
    """A fresh container of the viewer function, configured the way the build configures it."""
    shutil.copy(EDGE / "viewer_request" / "app.py", tmp_path / "app.py")
    (tmp_path / "edge_config.json").write_text(json.dumps(
        {"table": cloud.output("GeofenceTable"), "region": cloud.stack.region, "ttl_seconds": 60}))
    return load_app(tmp_path, "edge_viewer_app")


def viewer_event(country: str | None, uri: str | None = None) -> dict:
    event = load_event("edge-viewer-request")
    request = event["Records"][0]["cf"]["request"]
    if country is None:
        del request["headers"]["cloudfront-viewer-country"]
    else:
        request["headers"]["cloudfront-viewer-country"][0]["value"] = country
    if uri:
        request["uri"] = uri
    return event


def test_viewer_in_a_geofenced_country_gets_451_with_the_legal_reference(geofence, viewer):
    # GIVEN a global rule for DE, an expired one for FR, and a court order scoped to one item for AT
    future, past = datetime.now(UTC) + timedelta(days=30), datetime.now(UTC) - timedelta(minutes=1)
    geofence.put("DE", "LG Berlin 27 O 123/26", expires_at=future)
    geofence.put("FR", "Arrêté 2025-7 (lapsed)", expires_at=past)
    geofence.put("AT", "OGH 6 Ob 1/26", scope="path:/media/blocked-item/")

    # WHEN a viewer in DE asks for media (the sample event)
    response = viewer.handler(viewer_event("DE"), None)

    # THEN CloudFront answers 451 with the legal reference in the body and a header
    assert response["status"] == "451"
    assert json.loads(response["body"])["legal_reference"] == "LG Berlin 27 O 123/26"
    assert response["headers"]["x-mediaguard-legal-reference"][0]["value"] == "LG Berlin 27 O 123/26"
    assert response["headers"]["cache-control"][0]["value"] == "private, no-store"
    # AND everyone else passes through: other countries, the expired rule, no country header
    for event in (viewer_event("US"), viewer_event("FR"), viewer_event(None), viewer_event("AT")):
        request = event["Records"][0]["cf"]["request"]
        assert viewer.handler(copy.deepcopy(event), None) == request
    # AND a path-scoped rule blocks only that item
    assert viewer.handler(viewer_event("AT", "/media/blocked-item/sanitized.jpg"), None)["status"] == "451"


@pytest.mark.parametrize("uri", [
    "/media/blocked-item/sanitized.jpg",
    "/media/%62locked-item/sanitized.jpg",      # one letter percent-encoded
    "/%6Dedia/blocked-item/sanitized.jpg",
    "/media/%2562locked-item/sanitized.jpg",    # encoded twice
    "//media/blocked-item/sanitized.jpg",
    "/media//blocked-item/sanitized.jpg",
    "/media/./blocked-item/sanitized.jpg",
    "/other/../media/blocked-item/sanitized.jpg",
    "/media/blocked-item%2Fsanitized.jpg",
])
def test_encoded_or_unnormalised_paths_cannot_bypass_a_path_rule(geofence, viewer, uri):
    # GIVEN a court order scoped to one item's path in AT
    geofence.put("AT", "OGH 6 Ob 1/26", scope="path:/media/blocked-item/")
    # WHEN a viewer in AT asks for it under another spelling of the same path
    response = viewer.handler(viewer_event("AT", uri), None)
    # THEN the rule still applies
    assert response["status"] == "451", uri


@pytest.mark.parametrize("uri", ["/media/%ff%fe/x.jpg", "/media/%0a/x.jpg", "/media/%25252525252562/x.jpg"])
def test_paths_that_cannot_be_normalised_are_refused(geofence, viewer, uri):
    # GIVEN any rule in the viewer's country
    geofence.put("AT", "OGH 6 Ob 1/26", scope="path:/media/blocked-item/")
    # WHEN the path is not UTF-8 once decoded, hides a control character, or stays encoded
    response = viewer.handler(viewer_event("AT", uri), None)
    # THEN it is refused with 400, not guessed at
    assert response["status"] == "400"
    assert json.loads(response["body"])["reason"] == "unreadable_path"


def test_rules_are_read_once_per_ttl_not_per_request(geofence, viewer):
    # GIVEN one rule and a warm container
    geofence.put("DE", "LG Berlin 27 O 123/26")
    # WHEN it serves a burst of requests
    statuses = [viewer.handler(viewer_event("DE"), None).get("status") for _ in range(50)]
    # THEN every DE request is refused but the table was read once
    assert statuses == ["451"] * 50
    assert viewer.rule_cache().loads == 1


def test_rule_changes_arrive_after_the_ttl(cloud, geofence, viewer):
    # GIVEN a cache with a 60 s TTL on a controllable clock, and no rules yet
    now = [1000.0]
    cache = viewer.RuleCache(cloud.output("GeofenceTable"), cloud.stack.region, 60, clock=lambda: now[0])
    assert cache.rules() == []
    # WHEN a rule is added
    geofence.put("BR", "STF ADPF 999")
    # THEN it is not seen within the TTL, and is seen after it
    now[0] += 59
    assert cache.rules() == [] and cache.loads == 1
    now[0] += 2
    assert [r.country for r in cache.rules()] == ["BR"] and cache.loads == 2


def test_unreadable_table_keeps_the_last_rules_then_fails_open(viewer):
    # GIVEN a cache that read one rule, after which DynamoDB becomes unreachable
    class Flaky:
        calls, broken = 0, False

        def scan(self, **_):
            self.calls += 1
            if self.broken:
                raise ConnectionError("dynamodb unreachable")
            return {"Items": [{"country": {"S": "DE"}, "scope": {"S": "global"}, "legal_reference": {"S": "x"}}]}

    client, now = Flaky(), [0.0]
    cache = viewer.RuleCache("t", "us-east-1", 60, client=client, clock=lambda: now[0])
    assert len(cache.rules()) == 1
    client.broken = True
    # WHEN the TTL passes: the stale rule is still enforced, and a failed read is not retried per request
    now[0] = 61
    assert len(cache.rules()) == 1 and len(cache.rules()) == 1
    assert client.calls == 2
    # THEN after an hour without a successful read it serves without rules rather than failing
    now[0] = 61 + viewer.MAX_STALE_SECONDS + 10
    assert cache.rules() == []


# --- origin request: metadata removal and fingerprints ----------------------------------------


@pytest.fixture(scope="module")
def origin():
    return load_app(EDGE / "origin_request", "edge_origin_app")


def origin_event(data: bytes | None = None, *, truncated: bool = False, content_type: str = "image/jpeg") -> dict:
    event = load_event("edge-origin-request")
    request = event["Records"][0]["cf"]["request"]
    if data is not None:
        request["body"]["data"] = base64.b64encode(data).decode()
        request["headers"]["content-type"][0]["value"] = content_type
    request["body"]["inputTruncated"] = truncated
    return event


def test_small_jpeg_is_forwarded_without_exif_and_with_the_pipelines_fingerprints(origin):
    # GIVEN the sample origin request: a JPEG with GPS EXIF and a comment, and a spoofed pdq header
    event = origin_event()
    original = base64.b64decode(event["Records"][0]["cf"]["request"]["body"]["data"])
    assert b"Exif" in original and b"home" in original and len(original) < 1024 * 1024
    # WHEN the origin-request function runs
    request = origin.handler(event, None)
    # THEN the body is replaced by a copy without EXIF or comment
    assert request["body"]["action"] == "replace" and request["body"]["encoding"] == "base64"
    forwarded = base64.b64decode(request["body"]["data"])
    assert b"Exif" not in forwarded and b"home" not in forwarded
    assert Image.open(io.BytesIO(forwarded)).size == Image.open(io.BytesIO(original)).size
    # AND the headers carry exactly what the pipeline's own code computes on the same bytes
    expected = prepare(original, "image/jpeg", Settings())
    headers = {name: values[0]["value"] for name, values in request["headers"].items()}
    assert headers["x-amz-meta-mediaguard-edge"] == "sanitized"
    assert headers["x-amz-meta-mediaguard-pdq"] == expected.fingerprints.pdq  # not the client's zeros
    assert headers["x-amz-meta-mediaguard-pdq-quality"] == str(expected.fingerprints.pdq_quality)
    assert headers["x-amz-meta-mediaguard-phash"] == expected.fingerprints.phash
    assert headers["x-amz-meta-mediaguard-sha256"] == expected.fingerprints.sha256
    assert headers["x-amz-meta-mediaguard-sanitized-sha256"] == expected.sanitized.sha256
    assert forwarded == expected.sanitized.data


def _big_jpeg() -> bytes:
    noise = np.random.default_rng(7).integers(0, 256, (1100, 1100, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=95)
    assert buf.tell() > 1024 * 1024
    return buf.getvalue()


@pytest.mark.parametrize(
    ("case", "reason"),
    [("over-1mb", "body_too_large"), ("truncated", "body_truncated"), ("pdf", "unsupported_media_type")],
)
def test_bodies_the_edge_cannot_handle_pass_through_untouched_with_a_reason(origin, case, reason):
    # GIVEN a body over CloudFront's 1 MB, the truncated first MB of one, or something that is no image
    if case == "over-1mb":
        event = origin_event(_big_jpeg())
    elif case == "truncated":
        event = origin_event(_big_jpeg()[: 1024 * 1024], truncated=True)
    else:
        event = origin_event(b"%PDF-1.7 not an image", content_type="application/pdf")
    body_before = copy.deepcopy(event["Records"][0]["cf"]["request"]["body"])
    # WHEN the origin-request function runs
    request = origin.handler(event, None)
    # THEN the body goes on as it came, no fingerprints are claimed, and a header says why
    assert request["body"] == body_before
    headers = {name: values[0]["value"] for name, values in request["headers"].items()}
    assert headers["x-amz-meta-mediaguard-edge"] == f"skipped; reason={reason}"
    assert "x-amz-meta-mediaguard-pdq" not in headers  # the spoofed one is dropped too
