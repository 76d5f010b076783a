"""The Python upload client and ``mediaguard upload`` against ``mediaguard serve`` over real
sockets (the real template, state machine and handlers on moto): metadata stripped before
upload, a block-bank hit refused before any byte is sent, progress, the decision followed,
and the CLI's JSON contract (issue 17)."""

from __future__ import annotations

import io
import json
import threading

import pytest
import requests
from PIL import Image

from mediaguard.client import UploadClient, prepare_upload
from tests.conftest import exif_with_gps, jpeg_bytes, photo

BLOCK_BANK = "client-blocklist"


@pytest.fixture(scope="module")
def server():
    from mediaguard.local.serve import LocalServer

    log = io.StringIO()
    local = LocalServer(port=0, moto_port=0, request_log=log)
    local.start()
    thread = threading.Thread(target=local.serve_forever, daemon=True)
    thread.start()
    local.request_log_text = log.getvalue
    yield local
    local.stop()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def blocked_photo(server) -> bytes:
    """A photo whose PDQ a block bank holds (as a hash-sharing partner would list it)."""
    from mediaguard.adapters.banks import dynamo_bank_service
    from mediaguard.analysis.banks.model import NewEntry

    data = jpeg_bytes(photo("coffee"))
    prepared = prepare_upload(data, "image/jpeg")
    banks = dynamo_bank_service(server.cloud.deps().settings)
    banks.create_bank(BLOCK_BANK, "block", actor="test")
    banks.add_entries(BLOCK_BANK, [NewEntry(ref="case-17", signal="pdq", value=prepared.pdq,
                                            quality=prepared.pdq_quality)], actor="test")
    return data


def uploader_token(server) -> str:
    return next(u.token for u in server.users if not u.roles)


def stored_keys(server) -> list[str]:
    s3 = server.cloud.client("s3")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=server.cloud.upload_bucket).get("Contents", [])]


def test_gps_exif_is_gone_from_the_stored_original_and_the_decision_comes_back(server, blocked_photo, tmp_path):
    # (blocked_photo: the block bank exists before the first upload loads the matcher, which
    # then sees new bank entries only at its next delta refresh, as on AWS.)
    # GIVEN a JPEG with GPS coordinates and a camera model in its EXIF, and a comment
    path = tmp_path / "holiday.jpg"
    path.write_bytes(jpeg_bytes(photo("astronaut"), exif=exif_with_gps(), comment=b"home"))
    events = []
    # WHEN the client uploads it and follows the decision
    client = UploadClient(f"{server.url}/api", uploader_token(server))
    result = client.upload(path, follow=True, timeout=120, on_progress=events.append)
    # THEN the pipeline decided, and the original it stored carries no EXIF at all
    assert result.status == "done" and result.action is not None and not result.refused
    assert {"exif", "comment"} <= set(result.removed)
    stored = server.cloud.client("s3").get_object(Bucket=server.cloud.upload_bucket,
                                                  Key=f"uploads/{result.media_id}")["Body"].read()
    with Image.open(io.BytesIO(stored)) as img:
        assert not img.getexif(), "EXIF reached the server"
    assert b"TestCam" not in stored and b"home" not in stored
    # AND progress was reported while the bytes went out, then the pipeline's statuses
    sent = [e for e in events if e["phase"] == "upload"]
    assert len(sent) >= 1 and sent[-1]["loaded"] == sent[-1]["total"] > len(stored)
    assert [e for e in events if e["phase"] == "status"][-1]["status"] == "done"


def test_a_block_bank_hit_is_refused_before_any_byte_is_uploaded(server, blocked_photo, tmp_path):
    # GIVEN a photo whose PDQ is in a block bank
    path = tmp_path / "again.jpg"
    path.write_bytes(blocked_photo)
    before = stored_keys(server)
    log_before = server.request_log_text().count("POST /s3/")
    # WHEN the client tries to upload it
    result = UploadClient(f"{server.url}/api", uploader_token(server)).upload(path, follow=True)
    # THEN it is refused, the answer names no bank, and storage received nothing
    assert result.refused and result.reason == "blocked_by_bank" and result.status == "refused"
    assert BLOCK_BANK not in json.dumps(result.as_json()) and "case-17" not in json.dumps(result.as_json())
    assert stored_keys(server) == before
    assert server.request_log_text().count("POST /s3/") == log_before


def test_status_is_only_for_the_uploader(server):
    # GIVEN an upload granted to the dev uploader
    token = uploader_token(server)
    grant = requests.post(f"{server.url}/api/v1/uploads", json={"content_type": "image/jpeg", "content_length": 10},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    url = f"{server.url}/api/v1/uploads/{grant['media_id']}"
    # WHEN its uploader asks before the file lands, THEN it is pending
    mine = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert mine.status_code == 200 and mine.json() == {"media_id": grant["media_id"], "status": "pending",
                                                       "final": False, "action": None, "reason": None}
    # AND without the token, or for an id never granted, nothing is confirmed
    assert requests.get(url, timeout=30).status_code == 401
    other = requests.get(f"{server.url}/api/v1/uploads/never-granted", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    assert other.status_code == 404


def test_cli_prints_one_json_line_per_file_in_the_contract(server, blocked_photo, tmp_path, capfd):
    from mediaguard.cli.main import main

    # GIVEN an ordinary photo and one a block bank holds
    ok, blocked = tmp_path / "camera.jpg", tmp_path / "blocked.jpg"
    ok.write_bytes(jpeg_bytes(photo("camera")))
    blocked.write_bytes(blocked_photo)
    # WHEN `mediaguard upload --json` uploads both
    code = main(["upload", "--json", "--api", f"{server.url}/api", "--token", uploader_token(server),
                 str(ok), str(blocked)])
    out, err = capfd.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    # THEN one line per file with exactly the contract's fields, a progress bar on stderr,
    # and exit 1 because one file was refused
    assert [set(line) for line in lines] == [{"file", "media_id", "status", "action", "refused", "reason"}] * 2
    assert lines[0]["file"] == str(ok) and lines[0]["status"] == "done" and lines[0]["refused"] is False
    assert lines[0]["action"] and lines[0]["media_id"]
    assert lines[1]["refused"] is True and lines[1]["reason"] == "blocked_by_bank" and lines[1]["action"] is None
    assert "[1/2] camera.jpg" in err and "#" in err
    assert code == 1
