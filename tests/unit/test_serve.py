"""``mediaguard serve``'s pure parts: API Gateway events, S3 URL rewriting and the
presigned-GET check that stands in for S3 in local mode."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from mediaguard.local.serve import (
    DevUser,
    HostCheck,
    LocalServer,
    PresignError,
    api_event,
    console_config,
    export_console,
    exposure_warning,
    http_response,
    localize_s3_urls,
    token_map,
    verify_presigned_get,
)

KEY_ID, SECRET = "AKIDLOCAL", "local-secret"


def known(key_id: str) -> str | None:
    return SECRET if key_id == KEY_ID else None


def presigned_get(bucket: str, key: str, *, expires: int = 300, signature_version: str = "s3v4",
                  region: str = "us-east-1") -> str:
    client = boto3.client("s3", region_name=region, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                          config=Config(signature_version=signature_version))
    return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    return split.netloc, split.path, split.query


# --- the presigned GET check ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["media/abc/sanitized.jpg", "media/a b+c/x~y (1).png"], ids=["plain", "escaped"])
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_a_url_botocore_presigned_is_accepted_until_it_expires(key, region):
    # GIVEN a SigV4 presigned GET, as the review API hands to a reviewer
    host, path, query = parts(presigned_get("media-bucket", key, region=region))
    now = datetime.now(UTC)
    # THEN it is accepted within its lifetime
    verify_presigned_get(host, path, query, secret_for=known, now=now)
    # AND refused after it, with S3's code and message
    with pytest.raises(PresignError) as late:
        verify_presigned_get(host, path, query, secret_for=known, now=now + timedelta(seconds=301))
    assert (late.value.code, str(late.value)) == ("AccessDenied", "Request has expired")


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (lambda h, p, q: (h, p.replace("sanitized", "original"), q), "SignatureDoesNotMatch"),
        (lambda h, p, q: ("other-bucket.s3.amazonaws.com", p, q), "SignatureDoesNotMatch"),
        (lambda h, p, q: (h, p, q.replace("X-Amz-Expires=300", "X-Amz-Expires=86400")), "SignatureDoesNotMatch"),
        (lambda h, p, q: (h, p, q.replace(KEY_ID, "AKIDOTHER")), "InvalidAccessKeyId"),
        (lambda h, p, q: (h, p, q.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", "")), "AccessDenied"),
    ],
    ids=["other-key", "other-bucket", "longer-expiry", "unknown-key-id", "unsigned"],
)
def test_a_changed_url_is_refused(tamper, code):
    host, path, query = tamper(*parts(presigned_get("media-bucket", "media/abc/sanitized.jpg")))
    with pytest.raises(PresignError) as refused:
        verify_presigned_get(host, path, query, secret_for=known, now=datetime.now(UTC))
    assert refused.value.code == code and refused.value.status in (400, 403)


def test_sigv2_urls_are_refused_as_s3_refuses_them_for_new_buckets():
    host, path, query = parts(presigned_get("media-bucket", "media/abc/sanitized.jpg", signature_version="s3"))
    assert "AWSAccessKeyId=" in query
    with pytest.raises(PresignError) as refused:
        verify_presigned_get(host, path, query, secret_for=known, now=datetime.now(UTC))
    assert refused.value.code == "InvalidRequest" and "SigV4" in str(refused.value)
    assert "<Code>InvalidRequest</Code>" in refused.value.xml()


# --- URL rewriting -----------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_only_the_stacks_s3_urls_are_pointed_at_the_local_server(region):
    ours = presigned_get("media-bucket", "media/abc/sanitized.jpg", region=region)
    theirs = presigned_get("someone-else", "x.jpg")
    document = {"media": {"url": ours, "expires_in": 300}, "items": [theirs, "https://example.com/a"], "n": 3}
    origins: dict[str, str] = {}

    rewritten = localize_s3_urls(document, {"media-bucket"}, "http://127.0.0.1:8080", origins)

    local = rewritten["media"]["url"]
    assert local.startswith("http://127.0.0.1:8080/s3/media-bucket/media/abc/sanitized.jpg?X-Amz-Algorithm=")
    assert local.partition("?")[2] == urlsplit(ours).query
    assert rewritten["items"] == [theirs, "https://example.com/a"]
    assert (rewritten["media"]["expires_in"], rewritten["n"]) == (300, 3)
    # The origin it was signed for is remembered, and with it the local URL still verifies.
    origin = urlsplit(origins["media-bucket"])
    assert set(origins) == {"media-bucket"} and origin.netloc == urlsplit(ours).netloc
    path = local[len("http://127.0.0.1:8080/s3/media-bucket"):].partition("?")[0]
    verify_presigned_get(origin.netloc, origin.path + path, urlsplit(local).query, secret_for=known,
                         now=datetime.now(UTC))


# --- API Gateway v2 events and answers ------------------------------------------------------------


def test_a_request_becomes_an_http_api_v2_event_without_an_authorizer():
    environ = EnvironBuilder(method="POST", path="/api/review/m1/decision", query_string="a=1&a=2&b=x",
                             headers={"Authorization": "Bearer t", "X-Thing": "y"},
                             json={"action": "remove"}).get_environ()
    event = api_event(Request(environ), "/review/m1/decision")

    assert (event["version"], event["rawPath"], event["rawQueryString"]) == ("2.0", "/review/m1/decision",
                                                                            "a=1&a=2&b=x")
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/review/m1/decision"
    # API Gateway joins repeated query parameters with commas and lower-cases header names.
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["headers"]["authorization"] == "Bearer t" and event["headers"]["x-thing"] == "y"
    assert json.loads(event["body"]) == {"action": "remove"} and event["isBase64Encoded"] is False
    # No JWT authorizer ran: the handlers accept only local dev tokens then.
    assert "authorizer" not in event["requestContext"]


def test_a_binary_body_is_base64_encoded():
    environ = EnvironBuilder(method="POST", path="/api/x", data=b"\xff\xd8\xff\x00").get_environ()
    event = api_event(Request(environ), "/x")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xd8\xff\x00"


def test_handler_answers_become_http_responses():
    assert http_response({"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": "{}"}) == (
        201, {"content-type": "application/json"}, b"{}")
    assert http_response({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(),
                          "isBase64Encoded": True})[2] == b"\x00\x01"
    # Payload v2 allows a bare value: API Gateway answers 200 with it as JSON.
    assert http_response({"ok": True}) == (200, {"content-type": "application/json"}, b'{"ok": true}')


# --- tokens and the exported console ----------------------------------------------------------------


def test_dev_token_map_names_each_subject_and_roles():
    users = [DevUser("t1", "reviewer-1", ("reviewer",)), DevUser("t2", "dev", ())]
    assert json.loads(token_map(users)) == {"t1": {"sub": "reviewer-1", "roles": ["reviewer"]},
                                            "t2": {"sub": "dev", "roles": []}}


def test_exported_console_is_self_contained_with_its_config(tmp_path):
    written = export_console(tmp_path / "site", "https://api.example.com/", "https://up.example.com")
    names = sorted(p.relative_to(tmp_path / "site").as_posix() for p in written)
    assert names == ["app.js", "banks.js", "client/index.js", "client/pdq.js", "client/strip.js", "client/upload.js",
                     "config.json", "favicon.svg", "frames.js", "index.html", "lib.js", "operators.js", "search.js",
                     "style.css", "upload.html", "upload.js", "wellness.js"]
    # Every ES module the console imports is exported beside it (a missing one is a blank page).
    for name in (n for n in names if n.endswith(".js") and "/" not in n):
        for imported in re.findall(r"from '\./([\w-]+\.js)'", (tmp_path / "site" / name).read_text()):
            assert imported in names, (name, imported)
    assert json.loads((tmp_path / "site" / "config.json").read_text()) == console_config(
        "https://api.example.com", "https://up.example.com")
    # No page refers to another origin: no CDN, no web fonts.
    for name in (n for n in names if n != "config.json"):
        text = (tmp_path / "site" / name).read_text()
        # (The SVG namespace, in the favicon and in the operators' charts, is a name, never fetched.)
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace("'http://www.w3.org/2000/svg'", "")
        # (Nor are XMP's namespace names, which the upload client compares segment headers to.)
        text = text.replace("http://ns.adobe.com/", "")
        assert "https://" not in text and "http://" not in text and "@import" not in text, name


# --- what --host exposes ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::", "127.0.0.1", "::1"])
def test_moto_is_bound_to_loopback_whatever_host_says(host):
    # GIVEN serve asked to listen on an address (not started: nothing is bound here)
    server = LocalServer(host=host, port=8080)
    # THEN moto's endpoint, which checks no credentials, stays on loopback
    assert server.moto_host in ("127.0.0.1", "::1")
    assert server.moto_host == (host if host in ("127.0.0.1", "::1") else "127.0.0.1")


def test_the_host_warning_says_what_is_exposed_and_what_is_not():
    text = " ".join(exposure_warning("0.0.0.0"))
    # THEN it names the address, the plain HTTP, every surface a token opens, and moto's place
    for exposed in ("0.0.0.0", "plain HTTP", "console", "/api/docs", "review, admin and upload APIs",
                    "/s3/", "moto", "127.0.0.1 only"):
        assert exposed in text, exposed


@pytest.mark.parametrize(
    ("bound", "host", "accepted"),
    [("127.0.0.1", "127.0.0.1:8080", True), ("127.0.0.1", "localhost:8080", True),
     ("127.0.0.1", "LOCALHOST:8080", True), ("127.0.0.1", "[::1]:8080", True),
     ("127.0.0.1", "127.0.0.1:8081", False), ("127.0.0.1", "127.0.0.1", False),
     ("127.0.0.1", "attacker.example:8080", False), ("127.0.0.1", "localhost.attacker.example:8080", False),
     ("127.0.0.1", "10.0.0.1:8080", False), ("127.0.0.1", "", False), ("127.0.0.1", "a@127.0.0.1:8080", False),
     ("127.0.0.1", "127.0.0.1:80x", False),
     ("192.0.2.7", "192.0.2.7:8080", True), ("192.0.2.7", "localhost:8080", False),
     ("0.0.0.0", "192.0.2.7:8080", True), ("0.0.0.0", "[2001:db8::1]:8080", True),
     ("0.0.0.0", "localhost:8080", True), ("0.0.0.0", "attacker.example:8080", False)],
)
def test_only_the_names_a_server_is_bound_to_are_answered(bound, host, accepted):
    # An IP literal cannot be rebound to another machine; a DNS name can.
    assert HostCheck.bound_to(bound, 8080).accepts(host) is accepted
