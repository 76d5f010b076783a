"""A generated output, marked by genguard, re-uploaded to the local stack as a stripped JPEG."""

from __future__ import annotations

import io
import time

from PIL import Image

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.audit.chain import verify as verify_chain
from mediaguard.genguard import provenance
from mediaguard.genguard.mark import OWN_GENERATIONS_BANK, bank_ref, mark_output
from mediaguard.genguard.records import GenerationLedger, GenerationRecord, InMemoryGenerationStore, generation_chain
from tests.conftest import photo


def test_a_resaved_generated_output_is_labelled_ai_generated_by_the_pipeline(cloud, tmp_path):
    # GIVEN an output of the platform's generator, marked: its PDQ banked in own-generations
    deps = cloud.deps()
    banks = dynamo_bank_service(deps.settings)
    ledger = GenerationLedger(InMemoryGenerationStore(), deps.items)
    ledger.create(GenerationRecord(generation_id="gen-func-1", user="user-1", tenant="tenant-1",
                                   prompt_sha256="cd" * 32, model="test-diffusion",
                                   created="2026-12-02T23:00:00+00:00"), "platform:test")
    buf = io.BytesIO()
    photo("coffee").save(buf, "PNG")
    out = mark_output(buf.getvalue(), "gen-func-1", ledger=ledger, banks=banks,
                      signing=provenance.dev_signing_material(tmp_path), settings=deps.settings)
    # Bank changes are matchable within 60 s without an index rebuild: let a minute pass.
    cloud.set_clock(lambda: time.time() + 61)
    # WHEN someone re-saves it as JPEG q75 (manifest and metadata gone) and uploads it
    resaved = io.BytesIO()
    Image.open(io.BytesIO(out.data)).convert("RGB").save(resaved, "JPEG", quality=75)
    media_id = cloud.upload(resaved.getvalue(), "image/jpeg")
    cloud.wait(media_id)
    item = cloud.item(media_id)
    # THEN the normal pipeline matches the own-generations bank and labels the item AI-generated
    match = next(m for m in item["matches"] if m["bank"] == OWN_GENERATIONS_BANK)
    assert match["ref"] == bank_ref("gen-func-1") and match["signal"] in ("pdq", "pdq_dihedral")
    assert item["action"] == "label"
    decision = item["enforcement"]["decision"]
    assert decision["reason"] == "ai_generated_own"
    assert decision["label"] == {"category": "ai_generated", "text": "Made with AI"}
    # AND the generation's audit chain in the stack verifies
    chain = deps.items.audit_chain(generation_chain("gen-func-1"))
    assert [r.event for r in chain] == ["created", "output"]
    assert verify_chain(chain, chain=generation_chain("gen-func-1")) == []
