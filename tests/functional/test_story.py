"""Issue 5's story on the real template, state machine and handlers (local mode):
an upload scores into the review queue, a reviewer removes it, the uploader appeals,
a second reviewer overturns, ``mediaguard audit verify`` passes; then one edited
record makes it fail, naming the record."""

from __future__ import annotations

import argparse
import copy
import json
import time

import pytest

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.featurize import media_featurizer
from mediaguard.cli.audit import run_audit
from mediaguard.local.runtime import LocalCloud
from tests.conftest import jpeg_bytes, load_event, photo

UPLOADER = {"sub": "user-0042"}
SAM = {"sub": "sam", "cognito:groups": "[senior-reviewer]"}
SUE = {"sub": "sue", "cognito:groups": "[senior-reviewer]"}


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local


def api(cloud, method: str, path: str, claims: dict, body: dict | None = None, query: dict | None = None):
    """One request to the review API function as API Gateway (JWT authorizer passed) hands it over."""
    event = copy.deepcopy(load_event("api"))
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event["queryStringParameters"] = query
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    result = cloud.invoke("ApiFunction", event)
    return result["statusCode"], json.loads(result.get("body") or "null")


def upload_as(cloud, claims: dict, data: bytes, reach: int) -> str:
    """The platform asks the upload API for a presigned POST, the client posts the file."""
    event = load_event("uploads")
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    event["body"] = json.dumps({"content_type": "image/jpeg", "content_length": len(data), "reach": reach})
    response = cloud.invoke("UploadsFunction", event)
    grant = json.loads(response["body"])
    assert response["statusCode"] == 201, grant
    assert cloud.post_upload(grant["upload"], data, "image/jpeg").stored
    return grant["media_id"]


def verify_cli(cloud, media_id: str | None = None) -> tuple[int, list[dict]]:
    lines: list[str] = []

    class Out:
        def line(self, text: str) -> None:
            lines.append(text)

    args = argparse.Namespace(command="audit", audit_command="verify", chain=media_id, json=True, stack=None,
                              region=None)
    code = run_audit(args, Out(), settings=cloud.deps().settings)
    return code, [json.loads(line) for line in lines]


def test_upload_review_remove_appeal_overturn_and_a_tampered_record_is_named(cloud):
    # GIVEN a flag bank whose matches go to people (action "review"), holding a photo
    banks = dynamo_bank_service(cloud.deps().settings)
    banks.create_bank("reported", "flag", action="review", actor="test")
    data = jpeg_bytes(photo("astronaut"))
    banks.add_media("reported", "report-1", data, actor="test", declared="image/jpeg",
                    featurizer=media_featurizer(cloud.deps().settings))
    cloud.set_clock(lambda: time.time() + 61)  # the bank change is a minute old

    # WHEN a user with a large audience uploads it through the upload API
    media_id = upload_as(cloud, UPLOADER, data, reach=120_000)
    run = cloud.wait(media_id)
    assert run.status == "SUCCEEDED" and run.states[-3:] == ["Score", "Enforce", "Done"]

    # THEN scoring sent it to the review queue, nothing is served meanwhile
    item = cloud.item(media_id)
    assert item["action"] == "review" and item.get("served_key") is None
    status, queue = api(cloud, "GET", "/review/queue", SAM, query={"lane": "normal"})
    lanes = {"normal": queue["items"]}
    lanes["fast"] = api(cloud, "GET", "/review/queue", SAM, query={"lane": "fast"})[1]["items"]
    task = next(t for lane in lanes.values() for t in lane if t["media_id"] == media_id)
    assert task["reach"] == 120_000 and task["priority"] > task["risk"]  # reach raises priority

    # WHEN Sam claims it and removes it with a reason code
    assert api(cloud, "POST", f"/review/{media_id}/claim", SAM)[0] == 200
    status, decision = api(cloud, "POST", f"/review/{media_id}/decision", SAM,
                           body={"action": "remove", "reason_code": "hash_match_confirmed"})
    assert (status, decision["enforced_action"]) == (200, "remove")
    assert cloud.item(media_id)["action"] == "remove"

    # AND the uploader appeals; Sam may not decide it, Sue overturns
    status, appeal = api(cloud, "POST", f"/items/{media_id}/appeal", UPLOADER,
                         body={"statement": "This is my own photo, posted with consent."})
    assert status == 201
    assert api(cloud, "POST", f"/appeals/{appeal['appeal_id']}/decision", SAM,
               body={"outcome": "overturn", "reason_code": "reviewer_error"})[0] == 403
    status, outcome = api(cloud, "POST", f"/appeals/{appeal['appeal_id']}/decision", SUE,
                          body={"outcome": "overturn", "reason_code": "reviewer_error"})
    assert (status, outcome["outcome"]) == (200, "overturn")

    # THEN the item is served again and the whole trail verifies, before and after a digest
    item = cloud.item(media_id)
    assert item["action"] == "allow" and item["served_key"].endswith("/sanitized.jpg")
    assert verify_cli(cloud)[0] == 0
    cloud.invoke("DigestFunction", load_event("digest"))
    code, (report,) = verify_cli(cloud)
    assert code == 0 and report["ok"] and report["digests"] >= 1, report

    # WHEN someone with table access edits one record of the item's chain
    settings = cloud.deps().settings
    ddb = cloud.client("dynamodb")
    ddb.update_item(TableName=settings.audit_table, Key={"chain": {"S": media_id}, "seq": {"N": "2"}},
                    UpdateExpression="SET actor = :a", ExpressionAttributeValues={":a": {"S": "reviewer:nobody"}})
    # THEN verify fails and names the chain, the record and what happened to it
    code, (report,) = verify_cli(cloud, media_id)
    assert code == 1 and not report["ok"]
    failing = [(f["chain"], f["seq"], f["kind"]) for f in report["findings"] if f["failing"]]
    assert (media_id, 2, "edited") in failing
