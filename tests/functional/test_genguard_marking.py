"""Generated outputs, marked by genguard, re-uploaded to the local stack with their metadata gone."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.featurize import media_featurizer
from mediaguard.audit.chain import verify as verify_chain
from mediaguard.genguard import provenance
from mediaguard.genguard.mark import OWN_GENERATIONS_BANK, bank_ref, mark_output
from mediaguard.genguard.records import GenerationLedger, GenerationRecord, InMemoryGenerationStore, generation_chain
from tests.conftest import photo


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
    assert match["ref"] == bank_ref(generation_id)
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
