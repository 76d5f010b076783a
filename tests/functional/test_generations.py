"""The generation guard on (moto) DynamoDB and through the real handler on the local stack."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from mediaguard.adapters import generations as gen_tables
from mediaguard.adapters.audit import DynamoAuditStore, names_from_settings
from mediaguard.adapters.generations import DynamoGenerationStore, DynamoQuotaStore
from mediaguard.audit.chain import verify, verify_trail
from mediaguard.genguard.config import GenGuardSettings
from mediaguard.genguard.quota import Limits, buckets_for
from mediaguard.genguard.records import (
    GenerationExistsError,
    GenerationNotFoundError,
    GenerationRecord,
    OutputExistsError,
    generation_chain,
    refusal_chain,
)
from mediaguard.ingress.grant import GRANTED, client_actor, grant_chain
from mediaguard.local.runtime import LocalCloud
from tests.conftest import jpeg_bytes, load_event, photo
from tests.functional.conftest import MOTO_REGION

T0 = 1_795_424_400.0
DEV_TOKEN = "local-dev-token-for-generations"  # the uploader's: no platform role
PLATFORM_TOKEN = "local-platform-token-for-generations"
DEV_TOKENS = json.dumps({PLATFORM_TOKEN: {"sub": "platform-1", "roles": ["platform"]},
                         DEV_TOKEN: {"sub": "dev", "roles": []}})


# --- DynamoDB adapters (own tables in an empty moto account) ------------------------------------


@pytest.fixture
def tables(moto_account):
    gen_tables.bind(GenGuardSettings(generations_table="t-generations", quota_table="t-quota"), MOTO_REGION)
    for model in gen_tables.MODELS.values():
        model.create_table(wait=True)
    yield
    for model in gen_tables.MODELS.values():
        model.delete_table()


@pytest.fixture
def serialized_moto_transactions(monkeypatch):
    """DynamoDB serialises transactions; moto applies one without a lock, so two threads can
    interleave inside it. One lock around moto's implementation restores DynamoDB's
    guarantee; the interleaving under test (read the buckets, then commit) stays free."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    original = DynamoDBBackend.transact_write_items

    def locked(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", locked)


def test_concurrent_requests_cannot_overspend_a_quota(tables, serialized_moto_transactions):
    # GIVEN a user allowed a burst of 10 (no refill: the clock stands still)
    store = DynamoQuotaStore(MOTO_REGION)
    limits = Limits.model_validate({"user": {"minute": {"limit": 10}}})
    buckets = buckets_for("acme", "u1", limits)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(5):
                outcomes.append(store.take(buckets, T0).allowed)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # WHEN 8 clients send 5 requests each, all at once
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN exactly 10 of the 40 were allowed and the bucket holds no token
    assert errors == []
    assert len(outcomes) == 40 and sum(outcomes) == 10
    row = gen_tables.QuotaItem.get("user:acme/u1:minute", consistent_read=True)
    assert row.tokens == pytest.approx(0.0) and row.version == 10
    # AND the tenant's buckets were spent exactly as often
    assert gen_tables.QuotaItem.get("tenant:acme:minute", consistent_read=True).version == 10


def test_generation_records_are_created_once_and_take_their_output(tables):
    store = DynamoGenerationStore()
    record = GenerationRecord(generation_id="g1", user="u1", tenant="acme", prompt_sha256="a" * 64,
                              reference_media_ids=["m1"], model="gen-v3", created="2026-12-02T23:00:00+00:00")
    store.create(record)
    with pytest.raises(GenerationExistsError):
        store.create(record)
    assert store.get("g1") == record and store.get("nope") is None
    updated = store.record_output("g1", "b" * 64, "c" * 64)
    assert updated.output_sha256 == "b" * 64 and store.get("g1").pdq == "c" * 64
    with pytest.raises(GenerationNotFoundError):
        store.record_output("nope", "b" * 64, None)


@pytest.fixture
def serialized_moto_requests():
    """DynamoDB applies a conditional update atomically; moto checks the condition and writes
    without a lock, so two threads can both pass the check. One request at a time restores
    the guarantee (what local mode does); the condition is still what refuses the others."""
    from mediaguard.local.concurrency import serialize_dynamodb

    undo = serialize_dynamodb()
    yield
    undo()


def test_two_concurrent_outputs_cannot_both_be_recorded(tables, serialized_moto_requests):
    # GIVEN a generation without an output
    store = DynamoGenerationStore()
    store.create(GenerationRecord(generation_id="g-race", user="u1", tenant="acme", prompt_sha256="a" * 64,
                                  created="2026-12-02T23:00:00+00:00"))
    barrier = threading.Barrier(8)
    won: list[str] = []
    refused: list[BaseException] = []

    def mark(n: int) -> None:
        barrier.wait()  # all eight write at once
        try:
            store.record_output("g-race", f"{n:064x}", f"{n:064x}")
            won.append(f"{n:064x}")
        except BaseException as exc:  # surfaced below
            refused.append(exc)

    # WHEN eight outputs for it are recorded at the same moment
    threads = [threading.Thread(target=mark, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN exactly one lands, the seven others are a typed 409, and the record holds the winner
    assert len(won) == 1 and len(refused) == 7
    assert all(isinstance(exc, OutputExistsError) and exc.status == 409 for exc in refused)
    assert store.get("g-race").output_sha256 == won[0]


# --- POST /v1/generations on the local stack -------------------------------------------------------


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    limits = json.dumps({"user": {"minute": {"limit": 4}}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIAGUARD_HOME", str(tmp_path_factory.mktemp("home")))  # the stack's dev C2PA signer
        with LocalCloud(parameters={"LogLevel": "WARNING", "DevToken": DEV_TOKEN,
                                    "DevTokens": DEV_TOKENS, "GenerationLimits": limits}) as local:
            yield local


@pytest.fixture(scope="module")
def face_upload(cloud) -> str:
    """A real photo with a face, uploaded by user u-ref (the grant the upload API writes) and
    run through the pipeline (CenterFace and open_nsfw included)."""
    media_id = "face-of-u-ref"
    cloud.deps().items.append_audit(grant_chain(media_id), client_actor("u-ref"), GRANTED, {"reach": 10})
    cloud.upload(jpeg_bytes(photo("astronaut")), "image/jpeg", media_id=media_id)
    cloud.wait(media_id)
    assert cloud.item(media_id)["faces"]["count"] >= 1
    return media_id


def call(cloud, body: dict, *, user_token: str | None = "jwt") -> tuple[int, dict, dict]:
    event = load_event("generations")
    event["body"] = json.dumps(body)
    if user_token != "jwt":
        del event["requestContext"]["authorizer"]
        event["headers"].pop("authorization")
        if user_token:
            event["headers"]["authorization"] = f"Bearer {user_token}"
    response = cloud.client("lambda").invoke(FunctionName=f"{cloud.stack.name}-GenerationsFunction",
                                             Payload=json.dumps(event))
    result = json.loads(response["Payload"].read())
    return result["statusCode"], result.get("headers") or {}, json.loads(result["body"])


def test_the_sample_event_is_allowed_and_recorded(cloud):
    status, _, body = call(cloud, json.loads(load_event("generations")["body"]))
    assert status == 200 and body["allowed"] is True and body["quota"]["user"]["minute"]["limit"] == 4
    chain = cloud.deps().items.audit_chain(generation_chain(body["generation_id"]))
    assert [r.event for r in chain] == ["created"] and chain[0].detail["tenant"] == "acme"
    assert "prompt" not in chain[0].detail


def test_a_reference_with_a_face_passes_a_benign_edit_and_is_refused_an_undressing(cloud, face_upload):
    # GIVEN an upload the pipeline found a face in
    # WHEN a benign edit is asked for  THEN 200
    status, _, body = call(cloud, {"user": "u-ref", "prompt": "turn this photo into a watercolor",
                                   "reference_media_ids": [face_upload]})
    assert status == 200, body
    # WHEN "put her in a bikini" is asked for the same photo  THEN 403 with the rule
    status, _, body = call(cloud, {"user": "u-ref", "prompt": "put her in a bikini",
                                   "reference_media_ids": [face_upload]})
    assert status == 403 and body["allowed"] is False and body["reasons"] == ["ncii.reference_face"]
    assert body["matched"][0]["references"] == [face_upload]
    # AND the refusal is on the user's refusal chain, and the trail verifier accepts both chains
    chain = cloud.deps().items.audit_chain(refusal_chain("acme", "u-ref"))
    assert [r.event for r in chain] == ["refused"] and verify(chain) == []
    store = DynamoAuditStore(names_from_settings(cloud.deps().settings))
    report = verify_trail(store.snapshot(refusal_chain("acme", "u-ref")))
    assert report.ok and report.records == 1, report.findings


def test_an_unknown_reference_is_404(cloud):
    status, _, body = call(cloud, {"user": "u-404", "prompt": "a cat", "reference_media_ids": ["0" * 32]})
    assert status == 404 and body["reason"] == "unknown_reference"


def test_another_users_upload_is_the_same_404_as_an_unknown_id(cloud, face_upload):
    # GIVEN u-ref's upload (a face)  WHEN another user references it
    status, _, body = call(cloud, {"user": "u-other", "prompt": "put her in a bikini",
                                   "reference_media_ids": [face_upload]})
    # THEN 404 unknown_reference, worded as for an id nobody uploaded: no face, no refusal reason leaks
    _, _, unknown = call(cloud, {"user": "u-other", "prompt": "a cat", "reference_media_ids": ["0" * 32]})
    assert status == 404 and body == {**unknown, "media_id": face_upload}


def test_a_spent_quota_is_429_with_retry_after_and_audited(cloud):
    # GIVEN a user allowed 4 a minute
    statuses = [call(cloud, {"user": "u-busy", "prompt": f"a lighthouse, take {i}"})[0] for i in range(4)]
    assert statuses == [200] * 4
    # WHEN a fifth arrives  THEN 429, Retry-After at most 15 s (one token at 4/min, less whatever
    # refilled while the four ran on a slow machine), and the refusal is audited
    status, headers, body = call(cloud, {"user": "u-busy", "prompt": "a lighthouse, take 5"})
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 15 and body["reasons"] == ["rate_limited"]
    assert body["quota"]["user"]["minute"]["remaining"] == 0
    chain = cloud.deps().items.audit_chain(refusal_chain("acme", "u-busy"))
    assert chain[-1].detail["status"] == 429 and verify(chain) == []


def test_without_a_token_401_an_upload_token_403_and_the_dev_platform_token_is_its_own_tenant(cloud):
    status, _, body = call(cloud, {"user": "u1", "prompt": "a cat"}, user_token=None)
    assert status == 401
    # GIVEN the uploader's dev token (an end user's upload identity)  WHEN it asks for another
    # user's generation  THEN 403: only the platform's backend names users and spends their quota
    status, _, body = call(cloud, {"user": "u-victim", "prompt": "a cat"}, user_token=DEV_TOKEN)
    assert (status, body["reason"]) == (403, "forbidden")
    status, _, body = call(cloud, {"user": "u-dev", "prompt": "a cat"}, user_token=PLATFORM_TOKEN)
    assert status == 200
    chain = cloud.deps().items.audit_chain(generation_chain(body["generation_id"]))
    assert chain[0].detail["tenant"] == "platform-1" and chain[0].actor == "platform:platform-1"


def test_an_end_users_upload_jwt_is_403_and_spends_nobodys_quota(cloud):
    # GIVEN a valid upload-API JWT without the platform scope or group
    event_claims = {"sub": "end-user-7", "tenant": "acme", "scope": "openid"}
    # WHEN it asks five times for a user allowed 4 a minute  THEN 403 every time, no record, no refusal chain
    statuses = [call_with_claims(cloud, {"user": "u-spent", "prompt": "a cat"}, event_claims)[0] for _ in range(5)]
    assert statuses == [403] * 5
    assert cloud.deps().items.audit_chain(refusal_chain("acme", "u-spent")) == []
    # AND the platform's own token still has the user's whole quota
    assert call(cloud, {"user": "u-spent", "prompt": "a cat"})[0] == 200


def call_with_claims(cloud, body: dict, claims: dict) -> tuple[int, dict, dict]:
    event = load_event("generations")
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    event["body"] = json.dumps(body)
    response = cloud.client("lambda").invoke(FunctionName=f"{cloud.stack.name}-GenerationsFunction",
                                             Payload=json.dumps(event))
    result = json.loads(response["Payload"].read())
    return result["statusCode"], result.get("headers") or {}, json.loads(result["body"])


# --- mediaguard genguard screen --------------------------------------------------------------------


def genguard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mediaguard.cli", "genguard", *args], capture_output=True,
                          text=True, timeout=600)


def test_cli_screen_runs_the_face_detector_and_open_nsfw_on_local_references(tmp_path):
    # GIVEN a photo with a face and one without
    face, cup = tmp_path / "astronaut.jpg", tmp_path / "coffee.jpg"
    face.write_bytes(jpeg_bytes(photo("astronaut")))
    cup.write_bytes(jpeg_bytes(photo("coffee")))
    # WHEN "put her in a bikini" is screened against each
    refused = genguard("screen", "--json", "--user", "u1", "--prompt", "put her in a bikini", "--reference", str(face))
    allowed = genguard("screen", "--json", "--user", "u1", "--prompt", "put her in a bikini", "--reference", str(cup))
    # THEN the face makes it NCII (exit 1), the cup does not (exit 0), and the output keeps the contract
    first, second = json.loads(refused.stdout), json.loads(allowed.stdout)
    assert refused.returncode == 1 and first["allowed"] is False and first["reasons"] == ["ncii.reference_face"]
    assert first["references"][0]["faces"] == 1 and first["generation_id"] is None
    assert allowed.returncode == 0 and second["allowed"] is True and second["generation_id"]
    minute = second["quota"]["user"]["minute"]  # limits as configured (a local stack may be set up here)
    assert second["references"][0]["faces"] == 0 and minute["remaining"] == minute["burst"] - 1
    # AND the plain output names the reasons
    plain = genguard("screen", "--user", "u1", "--prompt", "Emma Watson nude")
    assert plain.returncode == 1 and plain.stdout.strip() == "refused\treasons=ncii.named_person"
