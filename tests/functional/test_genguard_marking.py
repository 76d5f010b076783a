"""Generated outputs, marked by genguard, re-uploaded to the local stack with their metadata gone;
and issue 12's whole story through the deployed routes: screen, mark, re-save, verify, upload,
label, audit."""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import time

import pytest
from PIL import Image

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.featurize import media_featurizer
from mediaguard.audit.chain import verify as verify_chain
from mediaguard.cli.audit import run_audit
from mediaguard.genguard import provenance
from mediaguard.genguard.mark import OWN_GENERATIONS_BANK, generation_of_ref, mark_output, pipeline_pdq
from mediaguard.genguard.records import GenerationLedger, GenerationRecord, InMemoryGenerationStore, generation_chain
from mediaguard.genguard.verify import verify
from mediaguard.local.runtime import LocalCloud
from tests.conftest import load_event, photo


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """$MEDIAGUARD_HOME of this module: where the local stack keeps its dev C2PA signer."""
    return tmp_path_factory.mktemp("mediaguard-home")


@pytest.fixture(scope="module")
def cloud(home):
    """One local stack for the module, its dev signer under ``home`` (not the working directory)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIAGUARD_HOME", str(home))
        with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
            yield local


def jpeg(img: Image.Image, quality: int = 75) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)  # nothing of the original's metadata carried over
    return buf.getvalue()


def crop10(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * 0.05), round(h * 0.05), round(w * 0.95), round(h * 0.95)))


@pytest.fixture(scope="module")
def marked(cloud, tmp_path_factory):
    """Two outputs of the platform's generator, marked: one banked by PDQ only (as the output
    API does), one with the embeddings too (as the CLI does where the models are installed)."""
    deps = cloud.deps()
    banks = dynamo_bank_service(deps.settings)
    ledger = GenerationLedger(InMemoryGenerationStore(), deps.items)
    signing = provenance.dev_signing_material(tmp_path_factory.mktemp("genguard"))
    outputs = {}
    for gid, name, featurizer in (("gen-func-1", "coffee", None),
                                  ("gen-func-2", "chelsea", media_featurizer(deps.settings))):
        ledger.create(GenerationRecord(generation_id=gid, user="user-1", tenant="tenant-1", prompt_sha256="cd" * 32,
                                       model="test-diffusion", created="2026-12-02T23:00:00+00:00"), "platform:test")
        buf = io.BytesIO()
        photo(name).save(buf, "PNG")
        outputs[gid] = mark_output(buf.getvalue(), gid, ledger=ledger, banks=banks, signing=signing,
                                   settings=deps.settings, featurizer=featurizer)
    # Bank changes are matchable within 60 s without an index rebuild: let a minute pass.
    cloud.set_clock(lambda: time.time() + 61)
    return outputs


def _scan(cloud, data: bytes) -> dict:
    media_id = cloud.upload(data, "image/jpeg")
    cloud.wait(media_id)
    return cloud.item(media_id)


def _labelled_ai_generated(item: dict, generation_id: str) -> dict:
    match = next(m for m in item["matches"] if m["bank"] == OWN_GENERATIONS_BANK)
    assert generation_of_ref(match["ref"]) == generation_id
    assert item["action"] == "label"
    decision = item["enforcement"]["decision"]
    assert decision["reason"] == "ai_generated_own"
    assert decision["label"] == {"category": "ai_generated", "text": "Made with AI"}
    return match


def test_a_resaved_generated_output_is_labelled_ai_generated_by_the_pipeline(cloud, marked):
    # WHEN someone re-saves an output as JPEG q75 (manifest and metadata gone) and uploads it
    item = _scan(cloud, jpeg(Image.open(io.BytesIO(marked["gen-func-1"].data))))
    # THEN the normal pipeline matches the own-generations bank by PDQ and labels it "Made with AI"
    assert _labelled_ai_generated(item, "gen-func-1")["signal"] in ("pdq", "pdq_dihedral")
    # AND the generation's audit chain in the stack verifies
    chain = cloud.deps().items.audit_chain(generation_chain("gen-func-1"))
    assert [r.event for r in chain] == ["created", "output"]
    assert verify_chain(chain, chain=generation_chain("gen-func-1")) == []


def test_a_cropped_generated_output_is_found_by_its_banked_embedding(cloud, marked):
    # WHEN an output banked with its embeddings comes back cropped by 10 %, where PDQ and
    # the watermark both fail (bench/watermark.py)
    item = _scan(cloud, jpeg(crop10(Image.open(io.BytesIO(marked["gen-func-2"].data)))))
    # THEN the pipeline still finds it, by likeness, and labels it
    assert _labelled_ai_generated(item, "gen-func-2")["signal"] in ("embedding", "clip")


# --- the whole story through the deployed routes -------------------------------------------------


def _route(cloud, logical: str, event_name: str, body: dict, path: str | None = None) -> tuple[int, dict]:
    """One request as the upload API hands it over (JWT authorizer passed: sub platform-backend, tenant acme)."""
    event = copy.deepcopy(load_event(event_name))
    if path is not None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"generation_id": path.split("/")[3]}
    event["body"] = json.dumps(body)
    result = cloud.invoke(logical, event)
    return result["statusCode"], json.loads(result["body"])


def _presigned_upload(cloud, data: bytes) -> str:
    event = load_event("uploads")
    event["body"] = json.dumps({"content_type": "image/jpeg", "content_length": len(data)})
    response = cloud.invoke("UploadsFunction", event)
    grant = json.loads(response["body"])
    assert response["statusCode"] == 201, grant
    assert cloud.post_upload(grant["upload"], data, "image/jpeg").stored
    return grant["media_id"]


def test_generate_mark_resave_verify_upload_label_and_audit(cloud, home):
    # GIVEN the platform asks whether a user's prompt may run  THEN it may (200, a generation id)
    status, allowed = _route(cloud, "GenerationsFunction", "generations",
                             {"user": "user-0042", "prompt": "a rocket on the launch pad at dawn",
                              "model": "platform-imagegen-v3"})
    assert status == 200 and allowed["allowed"] is True, allowed
    gid = allowed["generation_id"]
    outputs = f"/v1/generations/{gid}/outputs"

    # WHEN its generator's output is posted to the outputs route
    buf = io.BytesIO()
    photo("rocket").save(buf, "PNG")
    status, marked = _route(cloud, "GenerationOutputsFunction", "generation_outputs",
                            {"image": base64.b64encode(buf.getvalue()).decode()}, path=outputs)
    # THEN it comes back marked, with its sha256 and the PDQ the pipeline computes
    assert status == 201, marked
    data = base64.b64decode(marked["image"])
    assert marked["generation_id"] == gid and marked["content_type"] == "image/png"
    assert marked["output_sha256"] == hashlib.sha256(data).hexdigest()
    assert marked["pdq"] == pipeline_pdq(data, cloud.deps().settings)[0]
    # AND its C2PA manifest, signed with the stack's signer (the dev CA locally), validates
    # and declares the image generated
    dev_ca = str(home / "genguard" / "dev-ca.pem")
    manifest = provenance.read(data, "image/png", trust_anchors=dev_ca)
    assert manifest.state == "trusted" and manifest.generation_id == gid
    assert manifest.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA
    # AND a second output for the same generation is refused
    status, again = _route(cloud, "GenerationOutputsFunction", "generation_outputs",
                           {"image": base64.b64encode(buf.getvalue()).decode()}, path=outputs)
    assert status == 409 and again["reason"] == "output_exists"

    # WHEN someone re-saves it as JPEG q75, metadata and manifest gone
    resaved = jpeg(Image.open(io.BytesIO(data)))
    assert provenance.read(resaved, "image/jpeg").present is False
    # THEN verify still knows it: ours, this generation, the bank among the evidence
    banks = dynamo_bank_service(cloud.deps().settings)
    verdict = verify(resaved, banks=banks, settings=cloud.deps().settings, trust_anchors=dev_ca)
    assert verdict.own_generation and verdict.generation_id == gid and "bank" in verdict.evidence, verdict
    assert "c2pa" not in verdict.evidence and verdict.distance is not None

    # WHEN it is uploaded through the normal pipeline (presigned POST, the real state machine),
    # the bank entry being older than the matcher's refresh
    cloud.set_clock(lambda: time.time() + 181)
    media_id = _presigned_upload(cloud, resaved)
    cloud.wait(media_id)
    # THEN the item is labelled AI-generated, by the own-generations bank
    assert _labelled_ai_generated(cloud.item(media_id), gid)["signal"] in ("pdq", "pdq_dihedral")

    # AND the generation's chain (created, output) and the bank's pass the audit verifier
    chain = cloud.deps().items.audit_chain(generation_chain(gid))
    assert [r.event for r in chain] == ["created", "output"]
    assert chain[1].detail["output_sha256"] == marked["output_sha256"]
    assert generation_of_ref(chain[1].detail["ref"]) == gid
    for name in (generation_chain(gid), f"bank:{OWN_GENERATIONS_BANK}"):
        code, report = audit_verify(cloud, name)
        assert code == 0 and report["ok"] and report["records"] >= 1, (name, report)


def audit_verify(cloud, chain: str) -> tuple[int, dict]:
    """``mediaguard audit verify --json CHAIN`` on the local stack."""
    lines: list[str] = []

    class Out:
        def line(self, text: str) -> None:
            lines.append(text)

    args = argparse.Namespace(command="audit", audit_command="verify", chain=chain, json=True, stack=None,
                              region=None)
    code = run_audit(args, Out(), settings=cloud.deps().settings)
    return code, json.loads(lines[0])


# --- mediaguard genguard mark screens first --------------------------------------------------------


def genguard(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDIAGUARD_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "mediaguard.cli", "genguard", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_cli_mark_screens_the_prompt_before_it_records_or_writes_anything(tmp_path):
    src, out = tmp_path / "gen.png", tmp_path / "marked.png"
    photo("coffee").save(src, "PNG")
    store = str(tmp_path / "banks")
    # WHEN an NCII prompt comes with an output to mark
    refused = genguard(tmp_path, "mark", "--json", "--pdq-only", "--store", store, "--user", "u1",
                       "--prompt", "Emma Watson nude", str(src), str(out))
    # THEN it is refused with the screening's reasons (exit 1) and nothing is written
    body = json.loads(refused.stdout)
    assert refused.returncode == 1 and body["allowed"] is False and body["reasons"] == ["ncii.named_person"]
    assert body["generation_id"] is None and not out.exists()
    plain = genguard(tmp_path, "mark", "--pdq-only", "--store", store, "--user", "u1",
                     "--prompt", "Emma Watson nude", str(src), str(out))
    assert plain.returncode == 1 and plain.stdout.strip() == "refused\treasons=ncii.named_person"
    assert not out.exists()
    # WHEN a benign prompt comes with it  THEN it is recorded and marked, and verify knows the output
    done = genguard(tmp_path, "mark", "--json", "--pdq-only", "--store", store, "--user", "u1",
                    "--prompt", "a cup of coffee, product photo", str(src), str(out))
    record = json.loads(done.stdout)
    assert done.returncode == 0 and record["allowed"] is True and out.is_file(), done.stderr
    verified = genguard(tmp_path, "verify", "--json", "--store", store, str(out))
    assert json.loads(verified.stdout) == {"own_generation": True, "generation_id": record["generation_id"],
                                           "evidence": ["watermark", "c2pa", "bank"], "distance": 0}
