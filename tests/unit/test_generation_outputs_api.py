"""POST /v1/generations/{id}/outputs through the Powertools resolver, with in-memory ports."""

from __future__ import annotations

import base64
import copy
import io
import json

import numpy as np
import pytest
from PIL import Image

from mediaguard.analysis.banks.service import BankService
from mediaguard.api import generation_outputs as api
from mediaguard.genguard import provenance, watermark
from mediaguard.genguard.config import GenGuardSettings
from mediaguard.genguard.records import GenerationLedger, GenerationRecord, InMemoryGenerationStore
from mediaguard.local.bankfile import FileBankStore
from mediaguard.settings import Settings
from tests.conftest import load_event, photo

PLATFORM = {"sub": "acme-backend", "tenant": "acme", "scope": "mediaguard/generations"}


class _Context:
    function_name = "mediaguard-generation-outputs"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mediaguard-generation-outputs"
    aws_request_id = "req-1"


@pytest.fixture
def ports(tmp_path):
    store = FileBankStore(tmp_path / "banks")
    ledger = GenerationLedger(InMemoryGenerationStore(), store)
    for gid, tenant in (("gen-acme", "acme"), ("gen-other", "other")):
        ledger.create(GenerationRecord(generation_id=gid, user="user-1", tenant=tenant, prompt_sha256="ef" * 32,
                                       created="2026-12-02T23:00:00+00:00"), "platform:test")
    signing = provenance.dev_signing_material(tmp_path)
    ports = api.OutputPorts(ledger=ledger, banks=BankService(store, audit=store.append_audit),
                            signing=lambda: signing, settings=Settings())
    api.use(lambda: ports)
    yield ports
    api.use(None)  # type: ignore[arg-type]


def post(generation_id: str, body: dict | str, claims: dict | None = PLATFORM) -> tuple[int, dict]:
    event = copy.deepcopy(load_event("api"))
    path = f"/v1/generations/{generation_id}/outputs"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /v1/generations/{generation_id}/outputs"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = "POST"
    event["rawQueryString"], event["queryStringParameters"] = "", None
    event["pathParameters"] = {"generation_id": generation_id}
    event["headers"]["content-type"] = "application/json"
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    if claims is None:
        del event["requestContext"]["authorizer"]
        event["headers"].pop("authorization")
    else:
        event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    result = api.app.resolve(event, _Context())
    return result["statusCode"], json.loads(result["body"])


def image_b64(name: str = "coffee") -> str:
    buf = io.BytesIO()
    photo(name).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_the_output_comes_back_marked_signed_and_recorded(ports, tmp_path):
    # GIVEN an allowed generation of the caller's tenant; WHEN its output is posted
    status, body = post("gen-acme", {"image": image_b64()})
    # THEN 201 with the marked output: our watermark, a trusted manifest, the record filled
    assert status == 201, body
    marked = base64.b64decode(body["image"])
    assert body["content_type"] == "image/png" and set(body) == {"generation_id", "content_type", "image",
                                                                 "output_sha256", "pdq"}
    assert watermark.read(np.asarray(Image.open(io.BytesIO(marked)).convert("RGB"))).digest == \
        watermark.generation_digest("gen-acme", ports.signing().watermark_key).hex()
    ca = str(tmp_path / "genguard" / "dev-ca.pem")
    assert provenance.read(marked, "image/png", trust_anchors=ca).state == "trusted"
    record = ports.ledger.get("gen-acme")
    assert (record.output_sha256, record.pdq) == (body["output_sha256"], body["pdq"])


def test_unknown_foreign_and_already_marked_generations_are_refused(ports):
    # GIVEN one output marked already
    assert post("gen-acme", {"image": image_b64()})[0] == 201
    # THEN a second output is a conflict, an unknown id and another tenant's id are 404
    assert post("gen-acme", {"image": image_b64("rocket")}) == (409, {
        "reason": "output_exists", "message": "the generation already has an output"})
    assert post("gen-nope", {"image": image_b64()}) == (404, {"reason": "unknown_generation",
                                                             "message": "no such generation"})
    assert post("gen-other", {"image": image_b64()})[0] == 404


def test_bad_bodies_and_callers_are_refused_with_typed_errors(ports):
    assert post("gen-acme", {"image": "not base64!"})[1]["reason"] == "invalid_output"
    assert post("gen-acme", {"image": base64.b64encode(b"plain text").decode()})[1]["reason"] == "invalid_output"
    assert post("gen-acme", {"picture": image_b64()})[0] == 422
    assert post("gen-acme", {"image": "A" * (api.MAX_BODY_BYTES + 10)})[0] == 413
    assert post("gen-acme", {"image": image_b64()}, claims=None)[0] == 401
    # AND nothing was recorded for the generation
    assert ports.ledger.get("gen-acme").output_sha256 is None


def test_the_sample_event_is_marked_and_the_tenant_claim_is_the_guards(ports):
    # GIVEN the sample event's generation, recorded for tenant "acme"
    event = load_event("generation_outputs")
    gid = event["pathParameters"]["generation_id"]
    ports.ledger.create(GenerationRecord(generation_id=gid, user="user-0042", tenant="acme", prompt_sha256="ab" * 32,
                                         created="2026-12-02T23:00:00+00:00"), "platform:test")
    # WHEN the sample (sam local invoke's input) is resolved  THEN its output is marked
    result = api.app.resolve(copy.deepcopy(event), _Context())
    assert result["statusCode"] == 201, result["body"]
    assert json.loads(result["body"])["generation_id"] == gid
    # AND a platform that names its tenant claim otherwise is read through that claim, as on
    # POST /v1/generations: the token's "tenant" (acme) is then not the tenant, so 404
    api.use(lambda: api.OutputPorts(**{**ports.__dict__, "guard": GenGuardSettings(tenant_claim="org")}))
    status, body = post("gen-acme", {"image": image_b64()}, claims={**PLATFORM, "org": "other"})
    assert status == 404 and body["reason"] == "unknown_generation"


def test_an_end_users_upload_token_cannot_mark_outputs(ports):
    # GIVEN a valid upload-API JWT of the tenant without the platform scope or group
    user_token = {"sub": "end-user-7", "tenant": "acme", "scope": "openid profile"}
    # WHEN it posts an output for the tenant's generation  THEN 403 and nothing is recorded
    status, body = post("gen-acme", {"image": image_b64()}, claims=user_token)
    assert (status, body["reason"]) == (403, "forbidden")
    assert ports.ledger.get("gen-acme").output_sha256 is None
    # AND the platform group (cognito:groups, flattened by API Gateway) is the platform role too
    assert post("gen-acme", {"image": image_b64()}, claims={**user_token, "cognito:groups": "[platform]"})[0] == 201
