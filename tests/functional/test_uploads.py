"""The upload API end to end: the real handler fed events/uploads.json, presigned POSTs
checked by local mode the way S3 checks them, and the pipeline behind the bucket."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.banks.model import NewEntry
from mediaguard.api.auth import UPLOADER_TOKEN_NEEDED
from mediaguard.audit.chain import verify
from mediaguard.decisions import enforcement
from mediaguard.decisions.review.queue import REACH_CAP
from mediaguard.ingress.ingest import prepare
from mediaguard.local.postpolicy import PostPolicyViolation, verify_post
from mediaguard.local.runtime import LocalCloud
from mediaguard.local.template import load_template
from mediaguard.settings import Settings
from tests.conftest import REPO, jpeg_bytes, load_event, photo

DEV_TOKEN = "local-dev-token-for-tests"
REVIEWER_TOKEN = "local-reviewer-token-for-tests"  # noqa: S105 - a test token


@pytest.fixture(scope="module")
def cloud():
    reviewers = json.dumps({REVIEWER_TOKEN: {"sub": "alice", "roles": ["reviewer"]}})
    with LocalCloud(parameters={"LogLevel": "INFO", "DevToken": DEV_TOKEN, "DevTokens": reviewers}) as local:
        yield local


def call_api(cloud, body: dict | None = None, *, auth: str = "jwt") -> tuple[int, dict]:
    """Invoke the uploads function with the sample event, as API Gateway would."""
    event = load_event("uploads")
    if body is not None:
        event["body"] = json.dumps(body)
    if auth != "jwt":  # no JWT authorizer ran: local mode
        del event["requestContext"]["authorizer"]
        if auth:
            event["headers"]["authorization"] = auth
        else:
            del event["headers"]["authorization"]
    response = cloud.client("lambda").invoke(FunctionName=f"{cloud.stack.name}-UploadsFunction",
                                             Payload=json.dumps(event))
    result = json.loads(response["Payload"].read())
    return result["statusCode"], json.loads(result["body"])


def policy_of(grant: dict) -> dict:
    return json.loads(base64.b64decode(grant["upload"]["fields"]["policy"]))


def stored(cloud, key: str) -> bool:
    listing = cloud.client("s3").list_objects_v2(Bucket=cloud.upload_bucket, Prefix=key)
    return any(o["Key"] == key for o in listing.get("Contents", []))


def started(cloud, media_id: str) -> bool:
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)
    return any(e["name"] == media_id for e in executions["executions"])


def upload_chain(cloud, media_id: str):
    return cloud.deps().items.audit_chain(f"upload:{media_id}")


# --- the happy path -------------------------------------------------------------------


class _Records(logging.Handler):
    """Every log line the library and handler emit, formatted as Powertools prints them
    (Powertools may adopt this handler as its own, so it carries its formatter)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(LambdaPowertoolsFormatter())
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(self.format(record))


@pytest.fixture
def log_records():
    records, logger = _Records(), logging.getLogger("mediaguard")
    # The library's Powertools child loggers are created once per process, at the level of
    # whichever local stack imported them first (another module's may be WARNING); this
    # test reads INFO lines, so it lowers them for its duration.
    ours = [logger] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                       if name.startswith("mediaguard.")]
    levels = [lg.level for lg in ours]
    for lg in ours:
        lg.setLevel(logging.INFO)
    logger.addHandler(records)
    yield records.seen
    logger.removeHandler(records)
    for lg, level in zip(ours, levels, strict=True):
        lg.setLevel(level)


def test_granted_post_lands_and_runs_the_pipeline(cloud, astronaut_jpeg, log_records):
    # GIVEN a client that declares its JPEG's type and exact length
    status, grant = call_api(cloud, {"content_type": "image/jpeg", "content_length": len(astronaut_jpeg),
                                     "reach": 1200})
    # THEN it gets a presigned POST whose signed policy pins key, type, length and expiry
    assert status == 201
    media_id = grant["media_id"]
    assert grant["key"] == f"uploads/{media_id}" and grant["upload"]["fields"]["key"] == grant["key"]
    policy = policy_of(grant)
    assert {"key": f"uploads/{media_id}"} in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"]
    assert ["content-length-range", 1, len(astronaut_jpeg)] in policy["conditions"]
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=300)
    assert grant["upload"]["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"

    # WHEN the client POSTs the file with that form
    result = cloud.post_upload(grant["upload"], astronaut_jpeg)

    # THEN S3 stores it, the S3 notification starts the pipeline and it runs to the end
    assert result.stored, result
    run = cloud.wait(media_id)
    assert run.status == "SUCCEEDED" and run.states[-1] == "Done"
    assert cloud.item(media_id)["status"] == "done"
    original = cloud.client("s3").get_object(Bucket=cloud.upload_bucket, Key=grant["key"])
    assert original["Body"].read() == astronaut_jpeg and original["ContentType"] == "image/jpeg"
    # AND the grant is in its own verifiable audit chain, with who asked and what they declared
    chain = upload_chain(cloud, media_id)
    assert [r.event for r in chain] == ["upload_granted"]
    assert chain[0].actor == "client:user-0001" and chain[0].detail["reach"] == 1200
    assert verify(chain) == []
    # AND the logs name the grant but never carry the presigned form (it is a credential)
    assert any("upload granted" in r and media_id in r for r in log_records)
    fields = grant["upload"]["fields"]
    for secret in (fields["x-amz-signature"], fields["policy"][:40], fields["x-amz-credential"]):
        assert not any(secret in r for r in log_records)


def test_a_reviewer_finds_an_upload_by_its_uploader_id_or_pseudonymous_ref(cloud, astronaut_jpeg):
    from mediaguard import wiring
    from mediaguard.decisions.review.roles import Caller

    # GIVEN an upload granted to user-0001 (the sample JWT's subject) that ran through the pipeline
    status, grant = call_api(cloud, {"content_type": "image/jpeg", "content_length": len(astronaut_jpeg)})
    assert status == 201 and cloud.post_upload(grant["upload"], astronaut_jpeg).stored
    media_id = grant["media_id"]
    assert cloud.wait(media_id).status == "SUCCEEDED"
    # THEN the item holds the uploader's keyed HMAC, never the id
    key = wiring.uploader_keys().key("user-0001")
    assert cloud.item(media_id)["uploader"] == key
    # WHEN a reviewer searches by the id, by a prefix of the key, and by someone else's id
    service, alice = wiring.review_service(), Caller("alice", frozenset({"reviewer"}))
    by_id = [h.media_id for h in service.search(alice, uploader="user-0001", limit=500).items]
    by_ref = [h.media_id for h in service.search(alice, uploader=key[:8], limit=500).items]
    other = [h.media_id for h in service.search(alice, uploader="user-0002", limit=500).items]
    # THEN the first two find it and the third does not
    assert media_id in by_id and media_id in by_ref and media_id not in other


# --- POSTs that S3 (here: local mode) must refuse -------------------------------------------


def _oversize(grant, data):
    return grant["upload"], data + b"\0" * 1024, None


def _wrong_type(grant, data):
    return grant["upload"], data, "image/png"


def _rekeyed(grant, data):
    upload = {"url": grant["upload"]["url"], "fields": {**grant["upload"]["fields"], "key": "uploads/someone-else"}}
    return upload, data, None


def _forged_policy(grant, data):
    # A client that widens its own length range and re-encodes the policy: the signature no longer fits.
    policy = policy_of(grant)
    policy["conditions"] = [["content-length-range", 1, 10**9] if isinstance(c, list) else c
                            for c in policy["conditions"]]
    forged = base64.b64encode(json.dumps(policy).encode()).decode()
    return {"url": grant["upload"]["url"], "fields": {**grant["upload"]["fields"], "policy": forged}}, data * 2, None


def _extra_field(grant, data):
    fields = {**grant["upload"]["fields"], "x-amz-meta-reach": "99999999"}
    return {"url": grant["upload"]["url"], "fields": fields}, data, None


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (_oversize, "EntityTooLarge"),
        (_wrong_type, "AccessDenied"),
        (_rekeyed, "AccessDenied"),
        (_forged_policy, "SignatureDoesNotMatch"),
        (_extra_field, "AccessDenied"),
    ],
    ids=["oversize", "wrong-type", "re-keyed", "forged-policy", "extra-field"],
)
def test_post_outside_the_signed_policy_is_refused_and_nothing_is_stored(cloud, tamper, code):
    # GIVEN a grant for a declared JPEG
    data = jpeg_bytes(photo("rocket"))
    status, grant = call_api(cloud, {"content_type": "image/jpeg", "content_length": len(data)})
    assert status == 201
    # WHEN the client's POST strays from what was signed
    upload, body, content_type = tamper(grant, data)
    result = cloud.post_upload(upload, body, content_type)
    # THEN S3's refusal comes back, nothing is stored under either key and no run starts
    assert (result.stored, result.error_code) == (False, code), result
    assert result.status in (400, 403)
    assert not stored(cloud, grant["key"]) and not stored(cloud, "uploads/someone-else")
    assert not started(cloud, grant["media_id"])


def test_expired_policy_is_refused(cloud):
    # GIVEN a grant, and a client that only sends its POST six minutes later
    data = jpeg_bytes(photo("rocket"))
    _, grant = call_api(cloud, {"content_type": "image/jpeg", "content_length": len(data)})
    sent_at = datetime.now(UTC) + timedelta(minutes=6)
    cloud.clock = lambda: sent_at
    try:
        # WHEN it posts exactly what it was given
        result = cloud.post_upload(grant["upload"], data)
    finally:
        cloud.clock = lambda: datetime.now(UTC)
    # THEN the policy has expired and nothing is stored
    assert (result.stored, result.error_code) == (False, "AccessDenied")
    assert "expired" in (result.message or "")
    assert not stored(cloud, grant["key"])


# --- a form used twice ------------------------------------------------------------------------


def test_a_reused_form_cannot_replace_the_scanned_original(cloud):
    # GIVEN an upload that was posted with its form and scanned (allowed)
    scanned = jpeg_bytes(photo("rocket"))
    status, grant = call_api(cloud, {"content_type": "image/jpeg", "content_length": len(scanned)})
    assert status == 201
    media_id, key = grant["media_id"], grant["key"]
    assert cloud.post_upload(grant["upload"], scanned).stored
    assert cloud.wait(media_id).status == "SUCCEEDED"
    item = cloud.item(media_id)
    pinned = item["upload_version_id"]
    assert pinned and item["sha256"] == hashlib.sha256(scanned).hexdigest()

    # WHEN different bytes are posted with the same, still valid form (a new version of the key)
    swapped = jpeg_bytes(photo("coffee").resize((200, 130)), quality=70)
    assert len(swapped) <= len(scanned) and swapped != scanned
    assert cloud.post_upload(grant["upload"], swapped).stored  # S3 accepts it: the form is valid

    # THEN no second run starts, the item still points at the scanned version,
    # and the replacement is tagged as refused and recorded on the item's audit chain
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)
    assert [e["name"] for e in executions["executions"]].count(media_id) == 1
    item = cloud.item(media_id)
    assert item["upload_version_id"] == pinned and item["status"] == "done"
    s3 = cloud.client("s3")
    versions = [v for v in s3.list_object_versions(Bucket=cloud.upload_bucket, Prefix=key)["Versions"]
                if v["Key"] == key]
    replacement = next(v["VersionId"] for v in versions if v["IsLatest"])
    assert replacement != pinned and item["replaced_versions"] == {replacement}
    tags = s3.get_object_tagging(Bucket=cloud.upload_bucket, Key=key, VersionId=replacement)["TagSet"]
    assert {"Key": "mediaguard-state", "Value": "replaced-refused"} in tags
    chain = cloud.deps().items.audit_chain(media_id)
    refused = [r for r in chain if r.event == "upload_replaced_refused"]
    assert [r.detail["version_id"] for r in refused] == [replacement]
    assert refused[0].detail["pinned_version_id"] == pinned

    # WHEN a reviewer later removes the item
    decision = enforcement.apply(media_id, "remove", actor="reviewer:sam", reason="policy.violation",
                                 deps=cloud.deps())

    # THEN the scanned bytes, not the replacement, are the original in the evidence store
    assert decision.action == "remove"
    evidence = s3.get_object(Bucket=cloud.output("EvidenceBucket"), Key=f"evidence/{media_id}/original")
    assert hashlib.sha256(evidence["Body"].read()).hexdigest() == hashlib.sha256(scanned).hexdigest()
    # AND exactly the scanned version left the upload bucket; the refused one stays, tagged, unserved
    left = [v["VersionId"] for v in s3.list_object_versions(Bucket=cloud.upload_bucket, Prefix=key)["Versions"]
            if v["Key"] == key]
    assert left == [replacement]
    # AND the chain says which version was preserved, and verifies
    chain = cloud.deps().items.audit_chain(media_id)
    preserved = next(r for r in chain if r.event == "evidence_preserved")
    original = next(e for e in preserved.detail["evidence"] if e["role"] == "original")
    assert original["version_id"] == pinned and original["sha256"] == item["sha256"]
    assert verify(chain) == []


def test_an_event_for_a_version_that_no_longer_exists_ends_without_parking(cloud):
    # GIVEN a scanned upload
    data = jpeg_bytes(photo("chelsea"))
    status, grant = call_api(cloud, {"content_type": "image/jpeg", "content_length": len(data)})
    assert status == 201 and cloud.post_upload(grant["upload"], data).stored
    media_id, key = grant["media_id"], grant["key"]
    assert cloud.wait(media_id).status == "SUCCEEDED"

    # WHEN S3 delivers an ObjectCreated event naming a version of its key that does not exist
    # (written and deleted before delivery): before, tagging it raised NoSuchVersion, the event
    # failed every retry, parked on the on-failure queue and failed again on every redrive
    event = load_event("start")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = cloud.upload_bucket
    record["s3"]["object"]["key"] = key
    record["s3"]["object"]["versionId"] = "gone-version-0000"
    delivered = cloud.invoke_async("StartFunction", event)

    # THEN the start function succeeds first time, and the chain records the refusal
    # with the version marked missing; the item's decision is untouched
    assert delivered is True
    refused = [r for r in cloud.deps().items.audit_chain(media_id) if r.event == "upload_replaced_refused"]
    assert [(r.detail["version_id"], r.detail.get("version_missing")) for r in refused] == [
        ("gone-version-0000", True)]
    assert cloud.item(media_id)["status"] == "done"


# --- declarations refused before any upload --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"content_type": "application/pdf", "content_length": 1000}, 415, "unsupported_media_type"),
        ({"content_type": "video/x-msvideo", "content_length": 1000}, 415, "unsupported_media_type"),
        ({"content_type": "image/jpeg", "content_length": Settings().max_image_bytes + 1}, 413, "too_large"),
    ],
    ids=["pdf", "video", "oversize"],
)
def test_unacceptable_declarations_are_refused_with_a_reason_and_audited(cloud, body, status, reason):
    # WHEN a client declares something the pipeline would reject anyway
    code, answer = call_api(cloud, body)
    # THEN it gets no upload form, a stable reason code, and the refusal is audited
    assert (code, answer["reason"]) == (status, reason)
    assert "upload" not in answer
    chain = upload_chain(cloud, answer["media_id"])
    assert [r.event for r in chain] == ["upload_refused"]
    assert chain[0].detail["reason"] == reason and chain[0].detail["content_type"] == body["content_type"]


def test_client_pdq_near_a_block_bank_entry_is_refused_without_naming_the_bank(cloud):
    # GIVEN a block bank holding the PDQ of a victim's photo
    settings = Settings()
    banked = prepare(jpeg_bytes(photo("coffee")), "image/jpeg", settings).fingerprints
    banks = dynamo_bank_service(cloud.deps().settings)
    banks.create_bank("ncii-victims", "block", actor="test")
    banks.add_entries("ncii-victims", [NewEntry(ref="case-77", signal="pdq", value=banked.pdq,
                                                quality=banked.pdq_quality)], actor="test")
    cloud.set_clock(lambda: time.time() + 61)  # the entry is a minute old: past the delta's refresh
    # AND a client that hashed a resized, recompressed copy on the device
    copy = jpeg_bytes(photo("coffee").resize((300, 200)), quality=60)
    client = prepare(copy, "image/jpeg", settings).fingerprints
    declared = {"content_type": "image/jpeg", "content_length": len(copy), "sha256": client.sha256}

    # WHEN it asks to upload, declaring that PDQ with its quality
    status, answer = call_api(cloud, declared | {"pdq": client.pdq, "pdq_quality": client.pdq_quality})

    # THEN it is refused as blocked, and the answer does not reveal which bank or entry matched
    assert (status, answer["reason"]) == (403, "blocked_by_bank")
    assert "upload" not in answer
    assert "ncii-victims" not in json.dumps(answer) and "case-77" not in json.dumps(answer)
    # AND the audit record does say which one, and how close
    record = upload_chain(cloud, answer["media_id"])[-1]
    assert (record.event, record.detail["bank"], record.detail["ref"]) == ("upload_refused", "ncii-victims", "case-77")
    assert record.detail["distance"] <= 31 and record.detail["pdq"] == client.pdq

    # AND the same hash with a quality under 50 is not trusted to match, so it is granted
    status, _ = call_api(cloud, declared | {"pdq": client.pdq, "pdq_quality": 40})
    assert status == 201


def test_pdq_without_quality_is_a_validation_error(cloud):
    status, answer = call_api(cloud, {"content_type": "image/jpeg", "content_length": 10, "pdq": "f" * 64})
    assert status == 422
    assert "upload" not in answer
    # The one error format of both APIs, plus the fields Powertools' own 422 body had
    assert (answer["reason"], answer["media_id"]) == ("invalid_request", None) and answer["message"]
    assert answer["fields"] and (answer["statusCode"], answer["detail"][0]["loc"]) == (422, ["body"])
    assert "f" * 64 not in json.dumps(answer)  # nothing submitted is echoed


@pytest.mark.parametrize(
    "declared",
    [{"content_length": True}, {"content_length": 1000, "pdq": "f" * 64, "pdq_quality": True},
     {"content_length": 1000, "reach": True}, {"content_length": 1000, "reach": REACH_CAP + 1},
     {"content_length": 1000, "reach": 10**30}],
    ids=["length-true", "quality-true", "reach-true", "reach-over-cap", "reach-huge"],
)
def test_booleans_and_unbounded_numbers_are_not_accepted_as_numbers(cloud, declared):
    # WHEN a client declares true for a length (lax parsing would read it as 1 byte), or a
    # reach past where the review queue stops counting
    status, answer = call_api(cloud, {"content_type": "image/jpeg"} | declared)
    # THEN it is a schema error, and no form is handed out
    assert (status, answer["reason"]) == (422, "invalid_request")
    assert "upload" not in answer


def test_a_reach_at_the_cap_is_accepted(cloud):
    status, grant = call_api(cloud, {"content_type": "image/jpeg", "content_length": 1000, "reach": REACH_CAP})
    assert status == 201 and upload_chain(cloud, grant["media_id"])[0].detail["reach"] == REACH_CAP


def test_browsers_on_the_upload_origins_may_call_the_upload_api():
    # GIVEN the template: the pages allowed to POST to the upload bucket (its CORS rule)
    template = load_template(REPO / "template.yaml")
    resources = template["Resources"]
    bucket_rule = resources["UploadBucket"]["Properties"]["CorsConfiguration"]["CorsRules"][0]
    # THEN the same origins may call the upload API, which hands them the form, with the
    # two headers the upload page sends, and no cookies
    cors = resources["UploadsApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == bucket_rule["AllowedOrigins"] == {"Ref": "UploadAllowedOrigins"}
    assert {h.lower() for h in cors["AllowHeaders"]} == {"authorization", "content-type"}
    assert "POST" in cors["AllowMethods"] and not cors.get("AllowCredentials", False)


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "status"),
    [("", 401), ("Bearer not-the-token", 401), (f"Bearer {REVIEWER_TOKEN}", 401), (f"Basic {DEV_TOKEN}", 401),
     (f"Bearer {DEV_TOKEN}", 201)],
    ids=["none", "wrong-token", "reviewer-token", "wrong-scheme", "dev-token"],
)
def test_without_a_jwt_only_the_local_dev_token_is_accepted(cloud, auth, status):
    # GIVEN the local stack with an uploader's dev token and a reviewer's
    # WHEN the upload API is called with each kind of credential
    code, answer = call_api(cloud, {"content_type": "image/png", "content_length": 1000}, auth=auth)
    # THEN only the uploader's token opens it, and only the reviewer's is told it is the wrong
    # kind of token (any other invalid token gets the generic answer)
    assert code == status
    if status == 401:
        message = UPLOADER_TOKEN_NEEDED if REVIEWER_TOKEN in auth else "a valid bearer token is required"
        assert answer == {"reason": "unauthorized", "message": message, "media_id": None}


# --- the policy check itself (no cloud) ----------------------------------------------------------


def _signed_form(policy: dict, secret: str = "s3cr3t") -> dict:
    from mediaguard.local.postpolicy import sigv4_signature

    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    return {"key": "uploads/a", "policy": encoded, "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": "AKID/20260101/us-east-1/s3/aws4_request", "x-amz-date": "20260101T000000Z",
            "x-amz-signature": sigv4_signature(secret, "20260101", "us-east-1", "s3", encoded)}


_POLICY = {"expiration": "2030-01-01T00:00:00Z",
           "conditions": [{"bucket": "b"}, {"key": "uploads/a"}, {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                          {"x-amz-credential": "AKID/20260101/us-east-1/s3/aws4_request"},
                          {"x-amz-date": "20260101T000000Z"}, ["content-length-range", 1, 10]]}


def test_policy_check_accepts_a_conforming_post_and_refuses_unknown_keys_and_sigv2():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    known = {"AKID": "s3cr3t"}.get
    assert verify_post(_signed_form(_POLICY), 10, "b", secret_for=known, now=now)["conditions"]
    with pytest.raises(PostPolicyViolation) as refused:
        verify_post(_signed_form(_POLICY), 10, "other-bucket", secret_for=known, now=now)
    assert refused.value.code == "AccessDenied"
    with pytest.raises(PostPolicyViolation) as refused:
        verify_post(_signed_form(_POLICY), 0, "b", secret_for=known, now=now)
    assert refused.value.code == "EntityTooSmall"
    with pytest.raises(PostPolicyViolation) as refused:
        verify_post(_signed_form(_POLICY, secret="wrong"), 5, "b", secret_for=known, now=now)
    assert refused.value.code == "SignatureDoesNotMatch"
    with pytest.raises(PostPolicyViolation) as refused:
        verify_post(_signed_form(_POLICY), 5, "b", secret_for=lambda _: None, now=now)
    assert refused.value.code == "InvalidAccessKeyId"
    sigv2 = {"key": "uploads/a", "policy": "e30=", "AWSAccessKeyId": "AKID", "signature": "x"}
    with pytest.raises(PostPolicyViolation) as refused:
        verify_post(sigv2, 5, "b", secret_for=known, now=now)
    assert refused.value.code == "InvalidArgument"
