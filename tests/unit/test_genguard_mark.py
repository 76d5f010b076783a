"""genguard marking: the watermark embedder against the pipeline's decoder, the signed
C2PA manifest, the own-generations bank, verify, and the generation's audit chain."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from mediaguard.analysis.banks.service import BankService
from mediaguard.audit.chain import verify as verify_chain
from mediaguard.decisions.enforcement import AI_GENERATED, DEFAULT_LABELS, reason_from_score
from mediaguard.decisions.scoring import ScoreInputs, load_policy, score
from mediaguard.genguard import provenance, watermark
from mediaguard.genguard.mark import (
    OWN_GENERATIONS_BANK,
    OutputExistsError,
    OutputRejectedError,
    bank_ref,
    mark_output,
    pipeline_pdq,
)
from mediaguard.genguard.records import (
    GenerationLedger,
    GenerationNotFoundError,
    GenerationRecord,
    InMemoryGenerationStore,
    generation_chain,
)
from mediaguard.genguard.verify import verify
from mediaguard.ingress.forensics import detect_watermark, inspect
from mediaguard.local.bankfile import FileBankStore
from mediaguard.models import Match
from mediaguard.settings import Settings
from mediaguard.signals import PdqSignal
from tests.conftest import photo

KEY = b"unit-test-watermark-key-32-bytes"


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def resaved_jpeg(data: bytes, quality: int = 75) -> bytes:
    """What a re-upload looks like: decoded and saved again, no metadata carried over."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# --- watermark --------------------------------------------------------------------------


def test_crc16_is_ccitt_false():
    assert watermark.crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_the_embedded_payload_is_read_back_by_the_pipelines_decoder(name):
    # GIVEN a photo and the payload of one generation
    bits = watermark.payload_for("gen-42", KEY)
    # WHEN it is embedded and read at native size
    marked = watermark.embed(np.asarray(photo(name)), bits)
    reading = watermark.read(marked)
    # THEN every bit comes back, tag and CRC hold, and the digest is the generation's
    assert reading.bit_accuracy(bits) == 1.0
    assert reading.digest == watermark.generation_digest("gen-42", KEY).hex()
    # AND the change is small: PSNR above 25 dB
    mse = np.mean((marked.astype(float) - np.asarray(photo(name))) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25


def test_an_unmarked_photo_or_another_generation_does_not_read_as_ours():
    # GIVEN unmarked photos: no payload passes tag + CRC
    for name in ("astronaut", "rocket", "coffee", "camera"):
        assert not watermark.read(np.asarray(photo(name))).found
    # AND a photo marked for one generation does not carry another's digest
    marked = watermark.embed(np.asarray(photo("rocket")), watermark.payload_for("gen-a", KEY))
    assert watermark.read(marked).digest != watermark.generation_digest("gen-b", KEY).hex()
    # AND the SD/SDXL check of forensics does not mistake our mark for theirs
    assert not detect_watermark(marked).detected


def test_too_small_an_image_cannot_carry_the_mark():
    with pytest.raises(watermark.WatermarkError):
        watermark.embed(np.zeros((200, 200, 3), dtype=np.uint8), watermark.payload_for("g", KEY))


# --- marking ----------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path):
    store = FileBankStore(tmp_path / "banks")
    banks = BankService(store, audit=store.append_audit)
    ledger = GenerationLedger(InMemoryGenerationStore(), store)
    ledger.create(GenerationRecord(generation_id="gen-1", user="user-1", tenant="tenant-1", prompt_sha256="ab" * 32,
                                   model="test-diffusion", created="2026-12-02T23:00:00+00:00"), "platform:test")
    signing = provenance.dev_signing_material(tmp_path)
    return {"store": store, "banks": banks, "ledger": ledger, "signing": signing,
            "ca": str(tmp_path / "genguard" / "dev-ca.pem"), "settings": Settings()}


def mark(world, image: bytes, generation_id: str = "gen-1"):
    return mark_output(image, generation_id, ledger=world["ledger"], banks=world["banks"],
                       signing=world["signing"], settings=world["settings"])


def test_a_marked_output_resaved_as_jpeg_q75_without_metadata_is_recognised(world):
    # GIVEN a generated output, marked
    out = mark(world, png(photo("coffee")))
    assert out.content_type == "image/png"
    # WHEN it comes back as a JPEG q75 re-save, manifest and metadata gone
    copy = resaved_jpeg(out.data)
    assert provenance.read(copy, "image/jpeg").present is False
    verdict = verify(copy, banks=world["banks"], settings=world["settings"], trust_anchors=world["ca"])
    # THEN verify names the generation through the bank (and the watermark, which survives q75 here)
    assert verdict.own_generation and verdict.generation_id == "gen-1"
    assert verdict.evidence == ["watermark", "bank"]
    assert verdict.distance is not None and verdict.distance <= 31


def test_the_marked_output_itself_carries_all_three_pieces_of_evidence(world):
    out = mark(world, png(photo("astronaut")))
    verdict = verify(out.data, banks=world["banks"], settings=world["settings"], trust_anchors=world["ca"])
    assert verdict.to_dict() == {"own_generation": True, "generation_id": "gen-1",
                                 "evidence": ["watermark", "c2pa", "bank"], "distance": 0}


def test_a_mark_made_with_another_key_or_for_an_unbanked_generation_is_not_evidence(world):
    # GIVEN our stack marked gen-1 (its digest keyed with our signer's key)
    mark(world, png(photo("coffee")))
    ours = world["signing"].watermark_key
    # WHEN another deployment (its own key) marks its own "gen-1" on an unrelated photo,
    # and our key marks a generation this stack never banked
    foreign = np.asarray(photo("rocket"))
    other_key = provenance.SigningMaterial(b"", provenance.make_es256_chain("another platform")[1]).watermark_key
    for key, gid in ((other_key, "gen-1"), (ours, "gen-never-banked")):
        marked = watermark.embed(foreign, watermark.payload_for(gid, key))
        assert watermark.read(marked).found  # tag and CRC pass: the mark is well formed
        verdict = verify(png(Image.fromarray(marked)), banks=world["banks"], settings=world["settings"],
                         trust_anchors=world["ca"])
        # THEN it is not our generation: no watermark evidence, no id
        assert verdict.to_dict() == {"own_generation": False, "generation_id": None, "evidence": [],
                                     "distance": None}, (gid, verdict)
    # AND the two keys give gen-1 different digests
    assert watermark.generation_digest("gen-1", other_key) != watermark.generation_digest("gen-1", ours)


def test_an_unrelated_photo_is_not_ours(world):
    mark(world, png(photo("coffee")))
    verdict = verify(resaved_jpeg(png(photo("rocket"))), banks=world["banks"], settings=world["settings"],
                     trust_anchors=world["ca"])
    assert verdict.to_dict() == {"own_generation": False, "generation_id": None, "evidence": [], "distance": None}


def test_the_manifest_validates_and_declares_trained_algorithmic_media(world):
    # GIVEN a marked JPEG output
    out = mark(world, resaved_jpeg(png(photo("chelsea")), 95))
    assert out.content_type == "image/jpeg"
    # WHEN c2pa reads it with our CA as the trust anchor
    reading = provenance.read(out.data, "image/jpeg", trust_anchors=world["ca"])
    # THEN it is trusted, names the generation and says a trained model made it
    assert reading.state == "trusted" and reading.generation_id == "gen-1"
    assert reading.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA
    # AND the pipeline's forensics, with no trust anchors, sees a valid manifest marking it AI-generated
    found = inspect(out.data, "jpeg", use_exiftool=False)
    assert found.c2pa.state == "valid" and found.ai_generated


def test_the_output_is_banked_recorded_and_audited_once(world):
    # GIVEN one marked output
    out = mark(world, png(photo("coffee")))
    # THEN the own-generations bank (flag, action label) holds its PDQ under the generation's ref
    bank = world["banks"].get_bank(OWN_GENERATIONS_BANK)
    assert (bank.kind, bank.action) == ("flag", "label")
    entry = next(iter(world["banks"].entries(OWN_GENERATIONS_BANK)))
    assert (entry.ref, entry.pdq) == (bank_ref("gen-1", world["signing"].watermark_key), out.pdq)
    # AND the record has the output's sha256 and PDQ
    record = world["ledger"].get("gen-1")
    assert (record.output_sha256, record.pdq) == (out.output_sha256, out.pdq)
    # AND the generation's audit chain verifies and names the output by hash
    chain = world["store"].audit_chain(generation_chain("gen-1"))
    assert [r.event for r in chain] == ["created", "output"]
    assert chain[1].detail["output_sha256"] == out.output_sha256
    assert chain[1].detail["watermark"] == watermark.generation_digest("gen-1", world["signing"].watermark_key).hex()
    assert verify_chain(chain, chain=generation_chain("gen-1")) == []
    # WHEN a second output is offered, or one for an unknown generation
    with pytest.raises(OutputExistsError):
        mark(world, png(photo("rocket")))
    with pytest.raises(GenerationNotFoundError):
        mark(world, png(photo("rocket")), "gen-unknown")
    # THEN both are refused and the bank still holds one entry
    assert len(list(world["banks"].entries(OWN_GENERATIONS_BANK))) == 1


def test_an_unusable_output_is_refused(world):
    with pytest.raises(OutputRejectedError):
        mark(world, b"not an image")
    with pytest.raises(OutputRejectedError):
        mark(world, png(photo("coffee").resize((200, 200))))


def test_a_match_on_the_own_generations_bank_is_labelled_made_with_ai():
    # GIVEN the scorer's decision for a PDQ match on the own-generations bank (flag, action label)
    match = Match(bank=OWN_GENERATIONS_BANK, kind="flag", ref=bank_ref("gen-1", KEY), signal="pdq", distance=4,
                  action="label")
    result = score(ScoreInputs(matches=[match]), load_policy())
    # THEN the action is the bank's label, and enforcement labels it "Made with AI"
    assert result.action == "label"
    reason = reason_from_score(result)
    assert reason == "ai_generated_own" and DEFAULT_LABELS[reason] == AI_GENERATED


def test_the_signing_key_comes_from_a_secret_on_aws(monkeypatch):
    # GIVEN a Secrets Manager secret (moto) holding the platform's chain and key
    import boto3
    from moto import mock_aws

    from mediaguard.adapters.secrets import genguard_signing_material

    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(var, value)
    chain_pem, key_pem, _ = provenance.make_es256_chain("mediaguard test platform", days=2)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = client.create_secret(Name="genguard-signer", SecretString=json.dumps(
            {"certificate_chain": chain_pem.decode(), "private_key": key_pem.decode()}))["ARN"]
        # WHEN the signer is built from settings naming it
        material = genguard_signing_material(Settings(genguard_signing_secret_arn=arn, region="eu-west-1"))
    # THEN it is that material, and it signs a manifest c2pa validates
    assert (material.chain_pem, material.key_pem) == (chain_pem, key_pem)
    signed = provenance.sign(png(photo("coffee")), "image/png", material, generation_id="g-aws")
    assert provenance.read(signed, "image/png").state == "valid"


def test_a_malformed_signing_secret_is_a_misconfiguration():
    from mediaguard.errors import MediaguardError

    with pytest.raises(MediaguardError) as caught:
        provenance.SigningMaterial.from_secret('{"private_key": "x"}')
    assert caught.value.reason == "misconfigured"


def test_the_secret_the_template_creates_empty_is_a_misconfiguration_until_the_platform_fills_it():
    # GIVEN the value the stack's signing secret holds before the platform puts its signer
    from mediaguard.errors import MediaguardError
    from mediaguard.local.template import Stack
    from tests.conftest import REPO

    placeholder = Stack.from_file(REPO / "template.yaml").of_type("AWS::SecretsManager::Secret")[
        "GenguardSigningSecret"]["Properties"]["SecretString"]
    # WHEN the outputs function builds its signer from it  THEN it refuses to sign, naming why
    with pytest.raises(MediaguardError) as caught:
        provenance.SigningMaterial.from_secret(placeholder)
    assert caught.value.reason == "misconfigured"


def test_cli_mark_then_verify_answers_with_the_contract_fields(tmp_path, monkeypatch, capfd):
    # GIVEN a generated image on disk and a fresh local home (banks, audit, dev signer)
    from mediaguard.cli.main import main

    monkeypatch.setenv("MEDIAGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDIAGUARD_C2PA_TRUST_ANCHORS", raising=False)
    source, marked = tmp_path / "gen.png", tmp_path / "gen-marked.png"
    photo("astronaut").save(source)
    # WHEN it is marked (PDQ only: no models needed) and a JPEG q75 re-save of the output is verified
    assert main(["genguard", "mark", "--json", "--pdq-only", "--user", "u-1", "--prompt", "an astronaut",
                 str(source), str(marked)]) == 0
    mark_line = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(resaved_jpeg(marked.read_bytes()))
    assert main(["genguard", "verify", "--json", str(copy)]) == 0
    verdict = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    # THEN verify names the generation mark created, with exactly the contract's fields
    # (the distance is the Hamming distance of the copy's PDQ, computed here, to the banked one)
    copy_pdq, _ = pipeline_pdq(copy.read_bytes(), Settings())
    expected = PdqSignal.distance(copy_pdq, mark_line["pdq"])
    assert verdict == {"own_generation": True, "generation_id": mark_line["generation_id"],
                       "evidence": ["watermark", "bank"], "distance": expected}
    assert expected <= 31
    # AND the prompt is kept only as its sha256: no file of the local state holds its text
    state = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert state and not any(b"an astronaut" in p.read_bytes() for p in state)


def test_the_bank_evidence_is_the_nearest_active_entry_of_a_large_bank(world):
    import random

    from mediaguard.analysis.banks.model import NewEntry
    from mediaguard.genguard.mark import ensure_bank
    from mediaguard.genguard.verify import _nearest

    # GIVEN an own-generations bank of 5,000 outputs: random hashes, one 3 bits from the
    # query, one 1 bit from it but withdrawn, and one exact copy banked after the 3-bit one
    rng = random.Random(12)
    query = f"{rng.getrandbits(256):064x}"

    def flipped(bits: int) -> str:
        return f"{int(query, 16) ^ ((1 << bits) - 1):064x}"

    ensure_bank(world["banks"], actor="test")
    rows = [NewEntry(ref=f"r{i}", value=f"{rng.getrandbits(256):064x}", quality=100) for i in range(5000)]
    rows[1234] = NewEntry(ref="near-3", value=flipped(3), quality=100)
    rows[2345] = NewEntry(ref="withdrawn-1", value=flipped(1), quality=100)
    rows[4321] = NewEntry(ref="exact", value=query, quality=100)
    world["banks"].add_entries(OWN_GENERATIONS_BANK, rows, actor="test")
    world["banks"].withdraw(OWN_GENERATIONS_BANK, "withdrawn-1", actor="test")
    # WHEN the nearest entry is looked up  THEN it is the exact copy, not the withdrawn one
    assert _nearest(world["banks"], query) == (0, "exact")
    # AND with the copy withdrawn too, the 3-bit neighbour; random hashes (~128 bits away) never match
    world["banks"].withdraw(OWN_GENERATIONS_BANK, "exact", actor="test")
    assert _nearest(world["banks"], query) == (3, "near-3")
    assert _nearest(world["banks"], f"{int(query, 16) ^ (2**256 - 1):064x}") is None
