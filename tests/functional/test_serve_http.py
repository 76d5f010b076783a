"""``mediaguard serve`` over real sockets on loopback: what a web page, a DNS-rebinding
attacker or an oversized request meets (issue 14 #1 and #2).

The server runs in a thread on free ports, as in the e2e test, without a browser: the
requests carry the headers a browser would send.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
from urllib.parse import urlsplit

import boto3
import pytest
import requests

from tests.conftest import load_event

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mediaguard.local.serve import LocalServer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIAGUARD_HOME", str(tmp_path_factory.mktemp("home")))  # the stack's dev C2PA signer
        local = LocalServer(port=0, moto_port=0, request_log=io.StringIO())
        local.start()
        thread = threading.Thread(target=local.serve_forever, daemon=True)
        thread.start()
        yield local
        local.stop()
        thread.join(timeout=10)


def uploader_token(server) -> str:
    return next(u.token for u in server.users if not u.roles)


def declared_only(server, path: str, length: int, **headers: str) -> tuple[int, bytes, dict]:
    """A POST that declares ``length`` bytes and sends a few: the answer must come from the
    headers alone, as a 65 MB upload's would, before the body has been sent."""
    split = urlsplit(server.url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        for name, value in ({"Content-Type": "application/json", "Content-Length": str(length)} | headers).items():
            connection.putheader(name, value)
        connection.endheaders(b"{" * 1024)
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


# --- oversized bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "media_id"), [("/api/v1/uploads", True), ("/api/items/m1/appeal", False)],
                         ids=["uploads", "review"])
def test_a_65_mb_body_is_413_in_the_apis_error_format(server, path, media_id):
    # GIVEN a caller with a token, WHEN it declares a 65 MB body
    status, body, headers = declared_only(server, path, 65 * MB, Authorization=f"Bearer {uploader_token(server)}")
    # THEN the answer is 413 in the one error format, not a 500
    answer = json.loads(body)
    assert (status, answer["reason"]) == (413, "body_too_large") and answer["message"]
    assert ("media_id" in answer) == media_id and answer.get("media_id") is None
    assert headers["content-type"] == "application/json"


def test_a_body_over_api_gateways_limit_is_413_too(server):
    # 11 MB: under the local server's upload limit, over what API Gateway passes to a function
    status, body, _ = declared_only(server, "/api/v1/uploads", 11 * MB)
    assert (status, json.loads(body)["reason"]) == (413, "body_too_large")


def test_a_65_mb_storage_post_is_refused_as_s3_would(server):
    status, body, _ = declared_only(server, f"/s3/{server.cloud.upload_bucket}/", 65 * MB,
                                    **{"Content-Type": "multipart/form-data; boundary=x"})
    assert status == 413 and b"<Code>EntityTooLarge</Code>" in body


def test_an_unreadable_body_through_serve_is_400(server):
    # GIVEN a declaration in latin-1 (serve hands API Gateway's base64 to the function)
    response = requests.post(f"{server.url}/api/v1/uploads", data='{"content_type": "caf\xe9"}'.encode("latin-1"),
                             headers={"Content-Type": "application/json"}, timeout=30)
    # THEN it is refused as a malformed body, before authentication
    assert response.status_code == 400
    assert response.json() == {"reason": "malformed_body", "message": "the request body is not UTF-8 text",
                               "media_id": None}


def test_serve_exposes_the_generation_guard(server):
    # GIVEN the uploader's dev token: an end user's, refused on the platform's route
    as_uploader = requests.post(f"{server.url}/api/v1/generations", json={"user": "u1", "prompt": "a red fox"},
                                headers={"Authorization": f"Bearer {uploader_token(server)}"}, timeout=60)
    assert as_uploader.status_code == 403 and as_uploader.json()["reason"] == "forbidden"
    # AND the platform's (local) token, the dev identity with role "platform"
    platform = next(u.token for u in server.users if "platform" in u.roles)
    headers = {"Authorization": f"Bearer {platform}"}
    # WHEN a benign and an NCII request reach POST /api/v1/generations
    ok = requests.post(f"{server.url}/api/v1/generations", json={"user": "u1", "prompt": "a red fox in snow"},
                       headers=headers, timeout=60)
    refused = requests.post(f"{server.url}/api/v1/generations", json={"user": "u1", "prompt": "Emma Watson nude"},
                            headers=headers, timeout=60)
    # THEN the generations function answers both, in its contract
    assert ok.status_code == 200 and ok.json()["allowed"] is True and ok.json()["generation_id"]
    assert refused.status_code == 403 and refused.json()["reasons"] == ["ncii.named_person"]
    # AND the allowed generation's output is marked by the outputs function, once
    body = {"image": json.loads(load_event("generation_outputs")["body"])["image"]}
    outputs = f"{server.url}/api/v1/generations/{ok.json()['generation_id']}/outputs"
    marked = requests.post(outputs, json=body, headers=headers, timeout=120)
    assert marked.status_code == 201 and set(marked.json()) == {"generation_id", "content_type", "image",
                                                                 "output_sha256", "pdq"}, marked.text
    assert requests.post(outputs, json=body, headers=headers, timeout=120).status_code == 409


# --- Host names (DNS rebinding) --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/config.json", "/", "/api/openapi.json", "/api/review/queue", "/s3/x/y"])
def test_a_host_name_the_server_is_not_bound_to_is_refused(server, path):
    # GIVEN a page whose DNS name was rebound to 127.0.0.1: its requests name its own host
    port = urlsplit(server.url).port
    for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1.attacker.example:{port}",
                 "127.0.0.1:1", f"user@127.0.0.1:{port}"):
        # WHEN it asks the server for anything
        response = requests.get(f"{server.url}{path}", headers={"Host": host}, timeout=10)
        # THEN the server refuses to answer for that name, and names nothing in its answer
        assert response.status_code == 421, (path, host)
        assert response.json()["reason"] == "misdirected_request" and "attacker" not in response.text


def test_config_json_names_only_the_hosts_the_server_is_bound_to(server):
    port = urlsplit(server.url).port
    # WHEN the pages ask for their configuration through either loopback name
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        config = requests.get(f"{server.url}/config.json", headers={"Host": host}, timeout=10)
        # THEN they are told the API is on that very name
        assert config.status_code == 200 and config.json()["api_base"] == f"http://{host}/api"


# --- moto's endpoint -------------------------------------------------------------------------------


def test_moto_answers_aws_clients_on_loopback_only(server):
    # THEN moto listens on loopback, and the CLI and SDKs (which send no Origin) still work
    assert urlsplit(server.moto_url).hostname == "127.0.0.1"
    s3 = boto3.client("s3", endpoint_url=server.moto_url, region_name=server.region,
                      aws_access_key_id="any", aws_secret_access_key="any")
    assert server.cloud.upload_bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}


@pytest.mark.parametrize(
    ("method", "headers"),
    [("GET", {"Origin": "https://attacker.example"}),
     ("OPTIONS", {"Origin": "https://attacker.example", "Access-Control-Request-Method": "GET"}),
     ("GET", {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}),  # a rebound page: same origin
     ("GET", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"})],
    ids=["cors-get", "preflight", "rebound-page", "img-tag"],
)
def test_moto_refuses_browsers_and_sends_no_cors_headers(server, method, headers):
    # GIVEN any web page trying to read the evidence bucket through moto's endpoint
    evidence = server.cloud.stack.ref("EvidenceBucket")
    # WHEN the browser sends its request
    response = requests.request(method, f"{server.moto_url}/{evidence}?list-type=2", headers=headers, timeout=10)
    # THEN it is refused, without a listing and without any CORS permission
    assert response.status_code == 403
    assert "ListBucketResult" not in response.text
    assert not any(name.lower().startswith("access-control-") for name in response.headers)
