"""bench/cost.py on the local stack: what one still costs, counted from its real API calls."""

from __future__ import annotations

import base64
import io
import json

import numpy as np

from bench.cost import STAGE_GRANT, STAGE_UPLOAD, Recorder, load_prices, measure, price


def test_a_still_is_counted_by_stage_and_its_embeddings_never_touch_s3(cloud, astronaut_jpeg):
    # GIVEN the recorder on the local stack, warmed with one still
    recorder = Recorder(cloud).install()
    try:
        # WHEN two stills go through it as a client uploads them (grant, then POST)
        meter = measure(cloud, recorder, lambda n: iter([(astronaut_jpeg, "image/jpeg")] * n), 1, 2, "still")
    finally:
        recorder.uninstall()
    result = price(meter, 2, cloud, load_prices())
    calls = result["_detail"]["calls_per_image_by_stage"]

    # THEN the client's POST and the grant are their own stages, billed once per image
    assert calls[STAGE_UPLOAD] == {"s3.PostObject": 1.0}
    assert result["by_stage"][STAGE_GRANT] > 0
    # AND a still's embeddings travel in the state payload: classify, detect and similarity
    # read the sanitized copy but write and read nothing else in S3
    assert calls["Classify"] == {"s3.GetObject": 1.0} and calls["Detect"] == {"s3.GetObject": 1.0}
    # (the stage ran once per image, so an empty S3 row means it read nothing, not that it never ran)
    assert result["_detail"]["invocations_per_image"]["Similarity"] == 1.0
    assert [k for k in calls.get("Similarity", {}) if k.startswith("s3.")] == []
    # AND the audit trail's stream batch is billed once per image, not once per record
    assert result["_detail"]["invocations_per_image"]["AuditLog"] == 1.0
    # AND the figures add up: by service and by stage are the same money
    total = result["usd_per_1000"]
    assert abs(sum(result["by_service"].values()) - total) < 1e-4
    assert abs(sum(result["by_stage"].values()) - total) < 1e-4
    assert 0.005 < total < 1.0


def test_a_stills_embeddings_reach_the_similarity_stage_in_its_input(cloud, astronaut_jpeg):
    # GIVEN a still through the pipeline
    media_id = cloud.upload(astronaut_jpeg, "image/jpeg")
    assert cloud.wait(media_id).status == "SUCCEEDED"
    # WHEN the similarity stage's input is read from the execution history
    arn = cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{media_id}"
    events = cloud.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = next(json.loads(e["stateEnteredEventDetails"]["input"]) for e in events
                   if e.get("stateEnteredEventDetails", {}).get("name") == "Similarity")
    # THEN open_nsfw's and CLIP's vectors are both there, as float32 rows, and no key names the bucket
    for stage, width in (("classify", 1024), ("detect", 512)):
        (batch,) = entered[stage]
        assert batch["embeddings_key"] is None
        vectors = np.load(io.BytesIO(base64.b64decode(batch["embeddings"])), allow_pickle=False)
        assert vectors.shape == (1, width) and vectors.dtype == np.float32
    # AND nothing was written under the media's embeddings prefixes
    listing = cloud.client("s3").list_objects_v2(Bucket=cloud.output("MediaBucket"), Prefix=f"media/{media_id}/")
    assert [o["Key"] for o in listing.get("Contents", []) if "embeddings" in o["Key"]] == []
