"""The review API end to end, in process on moto: the real handler (functions/api/app.py)
fed HTTP API v2 events built from events/api.json, over the real tables, enforcement
and audit trail.

The story the issue asks for: an uploaded item scores into the review queue, a reviewer
removes it with a reason, the uploader appeals, a second reviewer overturns, and the
item's audit chain verifies.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
import re
from urllib.parse import urlencode

import pytest

from mediaguard.audit.chain import verify
from tests.conftest import REPO, jpeg_bytes, load_event, photo

DEV_TOKENS = {"dev-reviewer-token": {"sub": "dev-reviewer", "roles": ["reviewer"]}}
UPLOADER = {"sub": "user-0001"}
SAM = {"sub": "sam", "cognito:groups": "[senior-reviewer]"}  # decides the item
SUE = {"sub": "sue", "cognito:groups": "[senior-reviewer]"}  # decides the appeal
ALICE = {"sub": "alice", "cognito:groups": "[reviewer]"}
ADMIN = {"sub": "root-admin", "cognito:groups": "[admin]"}


def _load(path) -> object:
    spec = importlib.util.spec_from_file_location(f"mediaguard_fn_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stack():
    """moto with the buckets and tables the API touches, and the handler loaded once."""
    from moto import mock_aws

    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "UPLOAD_BUCKET": "uploads", "MEDIA_BUCKET": "media", "EVIDENCE_BUCKET": "evidence",
        "MEDIA_TABLE": "media", "AUDIT_TABLE": "audit", "AUDIT_HEAD_TABLE": "audit-heads",
        "BANKS_TABLE": "banks", "BANK_ENTRIES_TABLE": "bank-entries",
        "GEOFENCE_TABLE": "geofence", "HISTORY_TABLE": "history", "MEDIAGUARD_UPLOADER_KEY": "functional-test-uploader-key",
        "REVIEW_TABLE": "review", "APPEALS_TABLE": "appeals", "MEDIAGUARD_DEV_TOKENS": json.dumps(DEV_TOKENS),
        "POWERTOOLS_SERVICE_NAME": "mediaguard",
    }
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("AWS_PROFILE", raising=False)
        import boto3

        from mediaguard import wiring
        from mediaguard.adapters import review as review_adapters
        from mediaguard.adapters import tables
        from mediaguard.adapters.history import HistoryItem
        from mediaguard.settings import get_settings

        get_settings.cache_clear()
        wiring.reset()
        settings = get_settings()
        tables.bind(settings)
        review_adapters.bind(review_adapters.get_review_settings(), settings)
        review_adapters.history_store(settings)  # points HistoryItem at HISTORY_TABLE
        for model in [*tables.MODELS.values(), *review_adapters.MODELS.values(), HistoryItem]:
            if not model.exists():
                model.create_table(wait=True)
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("uploads", "media", "evidence"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket="uploads", VersioningConfiguration={"Status": "Enabled"})
        handler = _load(REPO / "functions" / "api" / "app.py").handler
        yield handler, s3
        get_settings.cache_clear()
        wiring.reset()


@pytest.fixture
def call(stack):
    handler, _ = stack

    def invoke(method: str, path: str, *, claims: dict | None = None, body: dict | None = None,
               query: dict | None = None, token: str | None = None) -> tuple[int, dict | None]:
        """One request as API Gateway hands it over: with claims the JWT authorizer
        validated, or (claims None) with no authorizer at all, as in local mode."""
        event = copy.deepcopy(load_event("api"))
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["rawQueryString"] = urlencode(query or {})
        event["queryStringParameters"] = {k: str(v) for k, v in (query or {}).items()} or None
        if body is not None:
            event["body"] = json.dumps(body)
            event["headers"]["content-type"] = "application/json"
        if claims is None:
            del event["requestContext"]["authorizer"]
            event["headers"].pop("authorization")
            if token:
                event["headers"]["authorization"] = f"Bearer {token}"
        else:
            event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
        result = handler(event, _Context())
        text = result.get("body") or ""
        return result["statusCode"], json.loads(text) if text.strip().startswith(("{", "[")) else None

    return invoke


class _Context:
    function_name = "mediaguard-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mediaguard-api"
    aws_request_id = "req-1"


def scored_into_review(stack, media_id: str, *, risk: float, reach: int) -> None:
    """What the upload API and the pipeline leave behind for an item that needs people:
    the grant in the upload chain, the original and its sanitized copy, the scores, and
    the automated ``review`` decision, which enqueues the item through enforcement."""
    from mediaguard import wiring
    from mediaguard.api import uploads
    from mediaguard.decisions import enforcement
    from mediaguard.models import Upload

    _, s3 = stack
    deps = wiring.operator_deps()
    request = uploads.UploadRequest(content_type="image/jpeg", content_length=400_000, reach=reach)
    uploads.request_upload(request, UPLOADER["sub"], deps, wiring.presigner(), media_id=media_id)
    data = jpeg_bytes(photo("astronaut"))
    s3.put_object(Bucket="uploads", Key=f"uploads/{media_id}", Body=data, ContentType="image/jpeg")
    s3.put_object(Bucket="media", Key=f"media/{media_id}/sanitized.jpg", Body=data, ContentType="image/jpeg")
    # What the start stage does with the S3 event: claim the item, open its chain.
    assert deps.items.create_once(Upload(media_id=media_id, bucket="uploads", key=f"uploads/{media_id}"))
    deps.items.append_audit(media_id, "system:start", "received", {"key": f"uploads/{media_id}"})
    digest = hashlib.sha256(data).hexdigest()
    deps.items.update(media_id, {
        "status": "done", "sha256": digest, "sanitized_key": f"media/{media_id}/sanitized.jpg",
        "sanitized_sha256": digest, "risk": risk, "policy_version": "2026-11-23.2",
        "signals": [{"name": "classifier.nsfw", "value": 0.97, "contribution": risk}],
        "matches": [{"bank": "ncii-demo", "kind": "flag", "ref": "victim-0001", "signal": "pdq", "distance": 12}],
    })
    enforcement.apply(media_id, "review", actor="system:enforce", reason="classifier.nsfw",
                      context={"risk": risk, "reach": reach}, deps=wiring.review_service().deps)


def chain(media_id: str):
    from mediaguard import wiring

    return wiring.operator_deps().items.audit_chain(media_id)


# --- the story -----------------------------------------------------------------------------------


def test_review_remove_appeal_overturn_with_a_verifying_audit_chain(stack, call):
    _, s3 = stack
    media_id = "story0001"
    scored_into_review(stack, media_id, risk=0.93, reach=25_000)

    # GIVEN the item in the fast lane of the queue
    status, page = call("GET", "/review/queue", claims=ALICE, query={"lane": "fast"})
    assert status == 200
    task = next(t for t in page["items"] if t["media_id"] == media_id)
    assert (task["lane"], task["state"], task["action"], task["reach"]) == ("fast", "queued", "review", 25_000)
    assert task["priority"] == pytest.approx(0.93 * (1 + 4.397951), rel=1e-5)

    # WHEN Sam claims it and looks at it
    status, claimed = call("POST", f"/review/{media_id}/claim", claims=SAM)
    assert (status, claimed["claimed_by"]) == (200, "sam")
    assert call("POST", f"/review/{media_id}/claim", claims=ALICE)[0] == 409  # a second reviewer cannot
    status, view = call("GET", f"/items/{media_id}", claims=SAM)
    assert status == 200
    assert f"media/{media_id}/sanitized.jpg" in view["media"]["url"] and "uploads/" not in view["media"]["url"]
    assert view["signals"][0]["name"] == "classifier.nsfw" and view["matches"][0]["bank"] == "ncii-demo"
    assert view["audit"]["verified"] and view["task"]["claimed_by"] == "sam"

    # AND removes it with a reason code
    status, decision = call("POST", f"/review/{media_id}/decision", claims=SAM,
                            body={"action": "remove", "reason_code": "ncii", "note": "matches a victim report"})
    assert status == 200 and decision["enforced_action"] == "remove"
    item = _item(media_id)
    assert item["action"] == "remove" and item.get("served_key") is None
    assert call("GET", f"/items/{media_id}", claims=SUE)[1]["uploader_history"]["strikes"] == 1
    assert _keys(s3, "media", f"media/{media_id}/") == []  # withdrawn; the evidence store holds copies
    fast_lane = call("GET", "/review/queue", claims=ALICE, query={"lane": "fast"})[1]["items"]
    assert all(t["media_id"] != media_id for t in fast_lane)
    # AND from now on only senior reviewers (who decide appeals) can see it: the preserved
    # sanitized copy in the evidence store, never the original
    assert call("GET", f"/items/{media_id}", claims=ALICE)[1]["media"] is None
    link = call("GET", f"/items/{media_id}", claims=SUE)[1]["media"]
    assert link["source"] == "evidence" and f"evidence/{media_id}/media/sanitized.jpg" in link["url"]

    # THEN the uploader appeals, and the receipt does not say who decided
    status, receipt = call("POST", f"/items/{media_id}/appeal", claims=UPLOADER,
                           body={"statement": "I am the person in this photo and I posted it."})
    assert status == 201 and receipt["state"] == "open"
    assert "sam" not in json.dumps(receipt)
    appeal_id = receipt["appeal_id"]

    # AND Sam, who decided, cannot decide the appeal, even as a senior reviewer
    status, refused = call("POST", f"/appeals/{appeal_id}/decision", claims=SAM,
                           body={"outcome": "overturn", "reason_code": "consent_verified"})
    assert (status, refused["reason"]) == (403, "own_decision")

    # AND Sue, a different senior reviewer, sees the appeal and overturns it
    status, appeals = call("GET", "/appeals", claims=SUE, query={"state": "open"})
    assert status == 200 and [a["appeal_id"] for a in appeals["items"]] == [appeal_id]
    assert appeals["items"][0]["original_decider"] == "sam" and "uploader" not in appeals["items"][0]
    status, decided = call("POST", f"/appeals/{appeal_id}/decision", claims=SUE,
                           body={"outcome": "overturn", "reason_code": "consent_verified", "note": "ID checked"})
    assert status == 200 and (decided["outcome"], decided["handled_by"]) == ("overturn", "sue")

    # THEN the item is served again, restored byte for byte from evidence
    item = _item(media_id)
    assert item["action"] == "allow" and item["served_key"] == f"media/{media_id}/sanitized.jpg"
    assert call("GET", f"/items/{media_id}", claims=SUE)[1]["uploader_history"]["strikes"] == 0
    assert _keys(s3, "media", f"media/{media_id}/") == [f"media/{media_id}/sanitized.jpg"]
    # AND a second outcome for the same appeal is a conflict
    assert call("POST", f"/appeals/{appeal_id}/decision", claims=SUE,
                body={"outcome": "uphold", "reason_code": "decision_correct"})[0] == 409

    # AND the item's audit chain tells the whole story and verifies
    records = chain(media_id)
    events = [r.event for r in records]
    for expected in ("received", "enforced", "review_enqueued", "media_opened", "review_decided",
                     "evidence_preserved", "appeal_opened", "appeal_decided", "restored"):
        assert expected in events, expected
    assert events.index("review_decided") < events.index("appeal_opened") < events.index("appeal_decided")
    decided_record = next(r for r in records if r.event == "review_decided")
    assert (decided_record.actor, decided_record.detail["reason_code"]) == ("reviewer:sam", "ncii")
    assert next(r for r in records if r.event == "appeal_decided").actor == "reviewer:sue"
    assert verify(records) == []


# --- who may do what ---------------------------------------------------------------------------------


def test_roles_are_checked_before_the_body_is_validated(stack, call):
    # GIVEN a reviewer (not senior) and an uploader, each sending a body that does not match the schema
    bad = {"outcome": "maybe"}
    # WHEN they post to routes their role does not open
    # THEN they hear 403 (not a 400 about the body), and without a token 401
    assert call("POST", "/appeals/ap-x1/decision", claims=ALICE, body=bad)[0] == 403
    assert call("POST", "/admin/items/x1/redrive", claims=SUE, body={"reason": "NOT A CODE"})[0] == 403
    assert call("POST", "/review/x1/decision", claims=UPLOADER, body=bad)[0] == 403
    assert call("POST", "/review/x1/decision", claims=None, body=bad)[0] == 401
    # AND a caller who has the role still gets the schema's 400
    assert call("POST", "/appeals/ap-x1/decision", claims=SUE, body=bad)[0] == 400


def test_me_names_the_caller_and_reveals_are_recorded_apart_from_opens(stack, call):
    # GIVEN an item in review
    scored_into_review(stack, "reveal001", risk=0.5, reach=10)
    # WHEN the console asks who it is signed in as
    status, me = call("GET", "/review/me", claims={**ALICE, "name": "Alice A."})
    # THEN it hears the name, the highest role and no senior rights, without probing other routes
    assert status == 200 and (me["name"], me["role"], me["senior"], me["admin"]) == ("Alice A.", "reviewer", False, False)
    before = me["exposures_today"]
    # WHEN Alice opens the item, then reveals its media twice
    assert call("GET", "/items/reveal001", claims=ALICE)[0] == 200
    first = call("POST", "/items/reveal001/reveal", claims=ALICE)[1]
    status, second = call("POST", "/items/reveal001/reveal", claims=ALICE)
    # THEN each reveal is counted in her exposures for the day
    assert status == 200 and second["revealed_by"] == "alice"
    assert (first["exposures_today"], second["exposures_today"]) == (before + 1, before + 2)
    assert call("GET", "/review/me", claims=ALICE)[1]["exposures_today"] == before + 2
    # AND the item's trail holds one open and two reveals, by her, as separate records
    records = [r for r in chain("reveal001") if r.event in ("media_opened", "media_revealed")]
    assert [(r.event, r.actor) for r in records] == [("media_opened", "reviewer:alice"),
                                                     ("media_revealed", "reviewer:alice"),
                                                     ("media_revealed", "reviewer:alice")]
    # AND an uploader cannot record reveals
    assert call("POST", "/items/reveal001/reveal", claims=UPLOADER)[0] == 403


def test_search_finds_by_id_with_a_get_and_otherwise_by_a_bounded_scan(stack, call):
    # GIVEN two items in review, one of which Alice limits
    scored_into_review(stack, "find0001", risk=0.5, reach=10)
    scored_into_review(stack, "find0002", risk=0.5, reach=10)
    assert call("POST", "/review/find0001/claim", claims=ALICE)[0] == 200
    assert call("POST", "/review/find0001/decision", claims=ALICE,
                body={"action": "limit", "reason_code": "newsworthy"})[0] == 200
    # WHEN a reviewer searches by id THEN one GetItem answers
    status, page = call("GET", "/review/search", claims=ALICE, query={"media_id": "find0001"})
    assert status == 200 and page["method"] == "get" and [h["media_id"] for h in page["items"]] == ["find0001"]
    assert page["items"][0]["decision_action"] == "limit" and page["items"][0]["decided_by"] == "alice"
    # WHEN by action in force THEN a Scan answers, saying how much it read
    status, page = call("GET", "/review/search", claims=ALICE, query={"action": "limit"})
    assert status == 200 and page["method"] == "scan" and page["scanned"] >= 2 and not page["truncated"]
    assert "find0001" in [h["media_id"] for h in page["items"]]
    assert "find0002" not in [h["media_id"] for h in page["items"]]
    # AND today's decisions (one Query on the day's chain) list it first
    from datetime import UTC, datetime

    status, page = call("GET", "/review/decided", claims=ALICE, query={"day": datetime.now(UTC).date().isoformat()})
    assert status == 200 and page["method"] == "query" and page["items"][0]["media_id"] == "find0001"
    # AND an uploader may not search
    assert call("GET", "/review/search", claims=UPLOADER, query={"action": "limit"})[0] == 403


def test_no_token_is_401_and_the_wrong_role_is_403(stack, call):
    scored_into_review(stack, "roles0001", risk=0.88, reach=10)
    assert call("GET", "/review/queue", claims=None) == (401, {"reason": "unauthorized",
                                                               "message": "a valid bearer token is required"})
    assert call("GET", "/review/queue", claims=None, token="not-a-token")[0] == 401
    # An uploader (no group) cannot see the queue or an item; a reviewer cannot see appeals,
    # the escalated lane or the admin routes
    assert call("GET", "/review/queue", claims=UPLOADER)[1]["reason"] == "forbidden"
    assert call("GET", "/items/roles0001", claims=UPLOADER)[0] == 403
    assert call("GET", "/appeals", claims=ALICE)[0] == 403
    assert call("GET", "/review/queue", claims=ALICE, query={"lane": "escalated"})[0] == 403
    assert call("GET", "/admin/banks", claims=SUE)[0] == 403
    # Someone else's item cannot be appealed, and does not even look like it exists
    assert call("POST", "/items/roles0001/appeal", claims={"sub": "user-0002"},
                body={"statement": "mine"})[0] == 404
    # In local mode (no authorizer) a dev token from the map stands in for a JWT
    status, page = call("GET", "/review/queue", claims=None, token="dev-reviewer-token", query={"lane": "normal"})
    assert status == 200 and any(t["media_id"] == "roles0001" for t in page["items"])


def test_requests_are_validated_with_stable_error_codes(stack, call):
    scored_into_review(stack, "valid0001", risk=0.91, reach=0)
    assert call("POST", "/review/valid0001/claim", claims=ALICE)[0] == 200
    # No reason code, an unknown one, or one that does not justify the action: 400, nothing enforced
    for body in ({"action": "remove"}, {"action": "remove", "reason_code": "because"},
                 {"action": "remove", "reason_code": "no_violation"}, {"action": "nuke", "reason_code": "ncii"}):
        status, error = call("POST", "/review/valid0001/decision", claims=ALICE, body=body)
        assert (status, error["reason"]) == (400, "invalid_request"), body
    assert _item("valid0001")["action"] == "review"
    assert call("GET", "/review/queue", claims=ALICE, query={"lane": "sideways"})[0] == 400
    assert call("GET", "/review/queue", claims=ALICE, query={"limit": 1000})[0] == 400
    assert call("GET", "/items/nope0000", claims=ALICE)[1]["reason"] == "not_found"
    assert call("POST", "/review/nope0000/claim", claims=ALICE)[0] == 404
    assert call("GET", "/no/such/route", claims=ALICE)[0] == 404
    # Deciding without a claim is a conflict
    scored_into_review(stack, "valid0002", risk=0.91, reach=0)
    status, error = call("POST", "/review/valid0002/decision", claims=ALICE,
                         body={"action": "approve", "reason_code": "no_violation"})
    assert (status, error["reason"]) == (409, "not_claimed")


def test_the_openapi_document_lists_every_route(call):
    status, document = call("GET", "/openapi.json", claims=None)
    assert status == 200 and document["info"]["title"] == "mediaguard review API"
    paths = document["paths"]
    assert {"/review/queue", "/review/{media_id}/claim", "/review/{media_id}/decision", "/items/{media_id}",
            "/items/{media_id}/appeal", "/appeals", "/appeals/{appeal_id}/decision", "/admin/geofence"} <= set(paths)
    assert {"get", "post", "delete"} <= set(paths["/admin/geofence"])
    reason_enum = document["components"]["schemas"]["ReviewReason"]["enum"]
    assert "ncii" in reason_enum and "no_violation" in reason_enum


# --- the SLA sweep ---------------------------------------------------------------------------------------------


def test_the_scheduled_sweep_moves_an_overdue_task_to_the_senior_lane(stack, call):
    from datetime import UTC, datetime, timedelta

    from mediaguard import wiring
    from mediaguard.decisions.review.queue import TaskQueue
    from mediaguard.wiring import task_queue

    # GIVEN a fast-lane task queued two hours ago (its SLA is one hour)
    queue = task_queue()
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    TaskQueue(queue.tasks, queue.items, queue.settings, clock=lambda: two_hours_ago).enqueue(
        "late0001", 0.96, 100, "policy:review")
    wiring.operator_deps().items.append_audit("upload:late0001", "client:user-0001", "upload_granted", {"reach": 100})
    # WHEN the scheduled function runs with its sample event
    result = _load(REPO / "functions" / "sla" / "app.py").handler(load_event("sla"), _Context())
    # THEN the task is escalated, audited by the sweep, and listed for senior reviewers only
    assert "late0001" in result["media_ids"] and result["escalated"] >= 1
    assert chain("late0001")[-1].actor == "system:sla"
    escalated = call("GET", "/review/queue", claims=SUE, query={"lane": "escalated"})[1]["items"]
    assert any(t["media_id"] == "late0001" and t["escalated"] for t in escalated)
    assert all(t["media_id"] != "late0001" for t in call("GET", "/review/queue", claims=ALICE)[1]["items"])


# --- admin ---------------------------------------------------------------------------------------------------


def test_admins_manage_geofence_rules_and_every_change_is_audited(stack, call):
    rule = {"country": "de", "scope": "media:geo0001", "legal_reference": "LG Berlin 27 O 123/26"}
    # Reviewers, even senior ones, cannot touch legal restrictions
    assert call("POST", "/admin/geofence", claims=SUE, body=rule)[0] == 403
    status, added = call("POST", "/admin/geofence", claims=ADMIN, body=rule)
    assert status == 201
    assert (added["country"], added["scope"], added["stored_scope"]) == ("DE", "media:geo0001", "path:/media/geo0001/")
    assert added["enforced_at_edge"] is True
    # Writing the same key again is a conflict unless the admin asks to replace it
    assert call("POST", "/admin/geofence", claims=ADMIN, body=rule)[1]["reason"] == "rule_exists"
    assert call("POST", "/admin/geofence", claims=ADMIN, body=rule | {"legal_reference": "LG Berlin 27 O 124/26",
                                                                       "replace": True})[0] == 201
    listed = call("GET", "/admin/geofence", claims=ADMIN)[1]["items"]
    assert [(r["country"], r["legal_reference"]) for r in listed] == [("DE", "LG Berlin 27 O 124/26")]
    # A code that is no country is refused with geofence's own reason
    assert call("POST", "/admin/geofence", claims=ADMIN, body=rule | {"country": "XX"})[1]["reason"] == "invalid_rule"
    assert call("DELETE", "/admin/geofence", claims=ADMIN, query={"country": "DE", "scope": "media:geo0001"})[0] == 204
    assert call("DELETE", "/admin/geofence", claims=ADMIN, query={"country": "DE", "scope": "media:geo0001"})[0] == 404
    assert call("GET", "/admin/geofence", claims=ADMIN)[1]["items"] == []
    records = chain("geofence:DE")
    assert [(r.actor, r.event) for r in records] == [("admin:root-admin", "geofence_added"),
                                                      ("admin:root-admin", "geofence_added"),
                                                      ("admin:root-admin", "geofence_removed")]
    assert verify(records) == []


def test_admins_list_the_banks(stack, call):
    from mediaguard import wiring
    from mediaguard.adapters.banks import DynamoBankStore
    from mediaguard.analysis.banks.model import Bank

    DynamoBankStore(wiring.operator_deps().settings).create_bank(Bank(name="ncii-demo", kind="block", action="remove"))
    status, page = call("GET", "/admin/banks", claims=ADMIN)
    assert status == 200
    assert [(b["name"], b["kind"], b["action"], b["pdq_threshold"]) for b in page["items"]] == [
        ("ncii-demo", "block", "remove", 31)]


# --- helpers ----------------------------------------------------------------------------------------------


def _item(media_id: str) -> dict:
    from mediaguard import wiring

    return wiring.operator_deps().items.get(media_id)


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


# --- bodies no route can read (issue 14 #1) ------------------------------------------------------------

NOT_UTF8 = base64.b64encode('{"statement": "caf\xe9"}'.encode("latin-1")).decode()
UNREADABLE_BODIES = {
    # API Gateway base64-encodes a body it does not take for text: latin-1, not UTF-8
    "not-utf8": ({"body": NOT_UTF8, "isBase64Encoded": True}, 400, "malformed_body"),
    "not-base64": ({"body": "{not base64}", "isBase64Encoded": True}, 400, "malformed_body"),
    # escapes JSON allows but no store can encode: a lone surrogate
    "lone-surrogate": ({"body": '{"statement": "\\ud800"}'}, 400, "malformed_body"),
    # 1,000 levels: small, but past Python's recursion limit when parsed
    "nested-1000": ({"body": "[" * 1000 + "]" * 1000}, 400, "malformed_body"),
    "nested-100000": ({"body": "[" * 100_000 + "]" * 100_000}, 413, "body_too_large"),
    "one-megabyte": ({"body": json.dumps({"statement": "x" * 1_000_000})}, 413, "body_too_large"),
}


def _raw(handler, path: str, over: dict, *, claims: dict | None) -> tuple[int, dict, str]:
    """POST ``path`` with a body exactly as given (``over`` replaces event fields)."""
    event = copy.deepcopy(load_event("api"))
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = "POST"
    event["rawQueryString"], event["queryStringParameters"] = "", None
    event["headers"]["content-type"] = "application/json"
    if claims is None:
        del event["requestContext"]["authorizer"]
        event["headers"].pop("authorization")
    else:
        event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    event.update(over)
    result = handler(event, _Context())
    return result["statusCode"], {k.lower(): v for k, v in (result.get("headers") or {}).items()}, result["body"]


@pytest.fixture(scope="module")
def uploads_handler(stack):
    # The upload API's handler over the same moto state (the stack's env names its bucket).
    return _load(REPO / "functions" / "uploads" / "app.py").handler


@pytest.mark.parametrize(("over", "status", "reason"), list(UNREADABLE_BODIES.values()), ids=list(UNREADABLE_BODIES))
def test_an_unreadable_body_is_refused_before_auth_and_validation(stack, uploads_handler, over, status, reason):
    handler, _ = stack
    for api, path in ((handler, "/items/body0001/appeal"), (uploads_handler, "/v1/uploads")):
        # GIVEN a caller without any credentials (WHEN authentication ran first, this were a 401)
        code, headers, text = _raw(api, path, over, claims=None)
        # THEN the body is refused first, cleanly, in the one error format
        assert (code, json.loads(text)["reason"]) == (status, reason), path
        assert headers["content-type"] == "application/json"
        # AND nothing of the body is echoed
        assert "caf" not in text and "xxxx" not in text


def test_nothing_is_audited_for_an_unreadable_upload_request(stack, uploads_handler):
    # GIVEN an uploader with a valid JWT and a declaration that is not UTF-8
    body = base64.b64encode(b'{"content_type": "image/jpeg\xff", "content_length": 10}').decode()
    # WHEN it asks for an upload form
    code, _, text = _raw(uploads_handler, "/v1/uploads", {"body": body, "isBase64Encoded": True}, claims=UPLOADER)
    # THEN it is refused before an id is assigned: there is no refusal chain to write to
    assert (code, json.loads(text)) == (400, {"reason": "malformed_body", "media_id": None,
                                              "message": "the request body is not UTF-8 text"})


def test_a_base64_encoded_json_body_is_read_as_before(stack, uploads_handler):
    # GIVEN a valid declaration that API Gateway chose to base64-encode
    body = base64.b64encode(json.dumps({"content_type": "image/png", "content_length": 1000}).encode()).decode()
    # WHEN it is sent THEN the grant comes back
    code, _, text = _raw(uploads_handler, "/v1/uploads", {"body": body, "isBase64Encoded": True}, claims=UPLOADER)
    assert code == 201 and json.loads(text)["upload"]["fields"]


def test_both_apis_refuse_in_one_error_format(stack, uploads_handler):
    handler, _ = stack
    # GIVEN the same unreadable body, then a body in a type neither API reads
    for over in ({"body": NOT_UTF8, "isBase64Encoded": True},
                 {"body": "statement=x", "headers": {"content-type": "text/plain"}}):
        # WHEN each API answers it
        review = _raw(handler, "/items/body0001/appeal", over, claims=UPLOADER)
        upload = _raw(uploads_handler, "/v1/uploads", over, claims=UPLOADER)
        # THEN the statuses and the bodies are the same; the upload API adds its media_id,
        # null as on every refusal before an id is assigned
        assert review[0] == upload[0] and review[0] in (400, 415)
        review_body, upload_body = json.loads(review[2]), json.loads(upload[2])
        assert upload_body.pop("media_id") is None
        assert review_body == upload_body and set(review_body) == {"reason", "message"}


def test_the_docs_page_runs_only_its_own_inline_code(stack):
    handler, _ = stack
    # WHEN anyone (the page needs no token) opens the Swagger UI page
    event = copy.deepcopy(load_event("api"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/docs"
    event["rawQueryString"], event["queryStringParameters"] = "", None
    del event["requestContext"]["authorizer"]
    result = handler(event, _Context())
    headers = {k.lower(): v for k, v in result["headers"].items()}
    # THEN it comes with a Content-Security-Policy that allows its own inline scripts and
    # styles by hash, and nothing from anywhere else
    assert result["statusCode"] == 200 and "SwaggerUIBundle" in result["body"]
    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self'" and policy["base-uri"] == "'none'"
    scripts = re.findall(r"<script>(.*?)</script>", result["body"], re.DOTALL)
    assert len(scripts) == 2
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"].split()
    assert "'unsafe-inline'" not in headers["content-security-policy"] and "http" not in policy["script-src"]
    assert headers["x-content-type-options"] == "nosniff"
