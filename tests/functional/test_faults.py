"""Nothing is lost under AWS-style faults (issue 14, faults and load).

200 uploads through the real template and state machine while 10 % of the stack's
DynamoDB, S3, EventBridge, Step Functions and Lambda calls fail with the errors AWS
returns (local/faults.py), and a fifth of the uploads' S3 events are delivered twice.
Absorbing them is left to what absorbs them on AWS: botocore's standard retries, the
ASL's Retry rules, Lambda's async retries and the start function's idempotency.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.banks.model import NewEntry
from mediaguard.audit.chain import verify
from mediaguard.ingress.grant import upload_key
from mediaguard.ingress.ingest import prepare
from mediaguard.local.faults import FaultPlan
from mediaguard.local.runtime import LocalCloud, LocalRuntimeError
from mediaguard.settings import Settings
from tests.conftest import jpeg_bytes, load_event, photo

UPLOADS = int(os.environ.get("MEDIAGUARD_FAULT_UPLOADS", "200"))
RATE = 0.10
TERMINAL = {"done", "rejected", "failed"}
ASL = Path(__file__).resolve().parents[2] / "statemachine" / "pipeline.asl.json"


def _attempt_bounds(states: dict | None = None) -> dict[str, int]:
    """Per Task state, the most tries its Retry rules allow: 1 + the MaxAttempts of each
    retrier (each counts its own retries)."""
    states = states if states is not None else json.loads(ASL.read_text())["States"]
    bounds = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            bounds[name] = 1 + sum(r.get("MaxAttempts", 3) for r in state.get("Retry", []))
        for branch in [state.get("ItemProcessor") or state.get("Iterator")] + state.get("Branches", []):
            if branch:
                bounds.update(_attempt_bounds(branch["States"]))
    return bounds


def _images(n: int) -> list[bytes]:
    """n distinct small JPEGs: crops of four shipped photos (small keeps 200 runs affordable)."""
    sources = [photo(name).convert("RGB") for name in ("coffee", "astronaut", "chelsea", "rocket")]
    out = []
    for i in range(n):
        img = sources[i % len(sources)]
        side = min(img.size)
        offset = (i // len(sources)) * 3 % max(1, side // 4)
        crop = img.crop((offset, offset, offset + side * 3 // 4, offset + side * 3 // 4)).resize((160, 160))
        out.append(jpeg_bytes(crop, quality=80 + i % 15))
    return out


def _s3_event(bucket: str, key: str, version_id: str) -> dict:
    """The ObjectCreated event S3 delivers a second time: the same key and version."""
    event = load_event("start")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = key
    record["s3"]["object"]["versionId"] = version_id
    return event


def _redrive(cloud: LocalCloud) -> int:
    """Re-deliver start events parked on an on-failure destination or DLQ (what an operator
    does with `aws sqs` after an incident); returns how many.

    The queues are drained first and redriven after: a redriven event that parks again must
    wait for the next pass, or a pass that keeps receiving what it just parked never ends."""
    sqs, payloads = cloud.client("sqs"), []
    for url in sqs.list_queues().get("QueueUrls", []):
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                body = json.loads(message["Body"])
                payload = body.get("requestPayload", body)
                if "Records" in payload:
                    payloads.append(payload)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for payload in payloads:
        cloud.invoke_async("StartFunction", payload)
    return len(payloads)


@pytest.mark.slow
def test_every_upload_ends_once_and_nothing_is_lost_under_injected_faults():
    # GIVEN the local stack with 10 % of its AWS calls failing (time compressed 50x), a block
    # bank holding one photo, and 200 distinct uploads of which every tenth is that photo
    plan = FaultPlan(rate=RATE, seed=14, time_scale=0.02)
    images = _images(UPLOADS)
    banked = jpeg_bytes(photo("camera").convert("RGB").resize((160, 160)))
    with LocalCloud(parameters={"LogLevel": "ERROR"}, faults=plan) as cloud:
        # (the test's own calls are not the stack's: no faults are injected into them)
        banks = dynamo_bank_service(cloud.deps().settings)
        banks.create_bank("victims", "block", actor="test")
        pdq = prepare(banked, "image/jpeg", Settings()).fingerprints.pdq
        banks.add_entries("victims", [NewEntry(ref="victim-1", signal="pdq", value=pdq, quality=100)], actor="test")
        cloud.set_clock(lambda: time.time() + 61)  # new bank entries are matchable after a minute
        sent = {}
        for i, data in enumerate(images):
            sent[f"{i:04d}" + hashlib.sha256(data).hexdigest()[:28]] = banked if i % 10 == 9 else data
        started = time.perf_counter()

        # WHEN they are uploaded four at a time and every fifth S3 event is delivered again
        def upload(item: tuple[str, bytes]) -> None:
            media_id, data = item
            cloud.upload(data, "image/jpeg", media_id=media_id)
            if int(media_id[:4]) % 5 == 0:
                key = upload_key(media_id)
                version = cloud.client("s3").head_object(Bucket=cloud.upload_bucket, Key=key)["VersionId"]
                cloud.invoke_async("StartFunction", _s3_event(cloud.upload_bucket, key, version))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, sent.items()))
        # Start events Lambda gave up on sit in the start function's on-failure queue: the
        # operator's redrive (mediaguard redrive-events) re-delivers them, and a redriven
        # event can park again under the same fault rate, so until the queue stays empty.
        redriven = 0
        for _ in range(5):
            again = _redrive(cloud)
            redriven += again
            if not again:
                break
        runs = {}
        for media_id in sent:
            try:
                runs[media_id] = cloud.wait(media_id, timeout=300)
            except LocalRuntimeError:
                runs[media_id] = None
        redriven += _redrive(cloud) if any(r is None for r in runs.values()) else 0
        for media_id, run in runs.items():
            if run is None:
                try:
                    runs[media_id] = cloud.wait(media_id, timeout=300)
                except LocalRuntimeError:
                    pass
        # An upload whose start died after creating the item (a fault that also hit the start's
        # own error handling) has no execution: on AWS the scheduled sweep re-drives it five
        # minutes later. Let the stack's clock pass that and run the sweep, as the schedule would
        # (its own calls see faults too, so it may take more than one run).
        swept = []
        for _ in range(5):
            stuck = [m for m, r in runs.items() if r is None]
            if not stuck:
                break
            cloud.set_clock(lambda: time.time() + 61 + 600)
            try:
                swept += cloud.invoke("SweepFunction", load_event("sweep"))["redriven"]
            except LocalRuntimeError:
                pass  # SweepIncompleteError: the next scheduled run tries again
            for media_id in stuck:
                item = cloud.item(media_id) or {}
                if item.get("run") and item["run"] != media_id:
                    try:
                        runs[media_id] = cloud.wait(item["run"], timeout=300)
                    except LocalRuntimeError:
                        pass
        never_started = [(m, (cloud.item(m) or {}).get("status")) for m, r in runs.items() if r is None]
        if never_started:
            errors = Counter(f"{i.error}: {i.message[:120]}" for i in cloud.invocations
                             if i.function == "StartFunction" and i.error)
            print("start errors:", errors.most_common(8))
        assert not never_started, never_started
        elapsed = time.perf_counter() - started

        # THEN every upload has exactly one item in a terminal state
        # (reads by the test are not the stack's calls: no faults are injected into them)
        deps = cloud.deps()
        items = {media_id: cloud.item(media_id) for media_id in sent}
        statuses = Counter(item["status"] if item else None for item in items.values())
        s3 = cloud.client("s3")
        lost, bad_chains, duplicated = [], [], []
        for media_id, data in sent.items():
            assert items[media_id] is not None, media_id
            # AND one audit chain that verifies, with one "received" and one decision
            chain = deps.items.audit_chain(media_id)
            if verify(chain) != [] or not chain:
                bad_chains.append(media_id)
            events = Counter(r.event for r in chain)
            if events["received"] != 1:
                duplicated.append((media_id, dict(events)))
            # AND the original survives: in the upload bucket, or moved to evidence
            digest = hashlib.sha256(data).hexdigest()
            found = []
            for bucket, key in ((cloud.upload_bucket, upload_key(media_id)),
                                (cloud.output("EvidenceBucket"), f"evidence/{media_id}/original")):
                try:
                    found.append(hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest())
                except s3.exceptions.NoSuchKey:
                    pass
            if digest not in found:
                lost.append(media_id)
        # AND retries were bounded: no Task state tried more often than its Retry allows
        bounds, over_bound, history_attempts = _attempt_bounds(), [], Counter()
        for run in runs.values():
            for state, tries in _task_attempts(cloud, run.name).items():
                history_attempts[state] = max(history_attempts[state], tries)
                if tries > bounds[state]:
                    over_bound.append((run.name, state, tries))
        stats = cloud.fault_stats.summary()
        starts = sum(1 for i in cloud.invocations if i.function == "StartFunction")

    print(f"\nfault test: {UPLOADS} uploads, {UPLOADS // 5} duplicate S3 events, rate {RATE}, "
          f"{elapsed:.0f}s; statuses {dict(statuses)}; redriven {redriven}; swept {len(swept)}; "
          f"start invocations {starts}")
    print(f"fault test figures: {json.dumps(stats)}")
    print(f"fault test: {stats['injected']} faults injected; botocore retried {stats['sdk_retries']} attempts, "
          f"{stats['sdk_absorbed']} of which succeeded; {stats['sdk_exhausted']} calls gave up (of which "
          f"{stats['sfn_retries']} were retried by the ASL); Lambda async retries {stats['async_retries']}; "
          f"terminal failures {statuses.get('failed', 0)}")
    print(f"fault test: most tries of each Task state {dict(history_attempts)} (ASL bounds {bounds})")
    assert set(statuses) <= TERMINAL, statuses
    assert sum(statuses.values()) == UPLOADS
    assert not lost, lost[:5]
    assert not bad_chains, bad_chains[:5]
    assert not duplicated, duplicated[:5]
    assert not over_bound, over_bound[:5]
    assert stats["injected"] > 0 and stats["sdk_absorbed"] > 0
    assert stats["async_dropped"] == 0


def _task_attempts(cloud: LocalCloud, media_id: str) -> Counter:
    sfn = cloud.client("stepfunctions")
    arn = cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{media_id}"
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    per_state: Counter = Counter()
    current = None
    for event in events:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "LambdaFunctionScheduled" and current is not None:
            per_state[current] += 1
    return per_state


def test_a_lost_answer_to_the_start_write_does_not_drop_the_upload():
    # GIVEN every DynamoDB UpdateItem's first attempt reaching the table but its answer lost
    # (a read timeout), so botocore retries a write that already happened
    plan = FaultPlan(rate=1.0, services=frozenset({"dynamodb"}), operations=frozenset({"dynamodb.UpdateItem"}),
                     codes=frozenset({"timeout"}), first_attempt_only=True, time_scale=0.01)
    with LocalCloud(parameters={"LogLevel": "ERROR"}, faults=plan) as cloud:
        # WHEN an upload arrives
        media_id = cloud.upload(jpeg_bytes(photo("coffee")), "image/jpeg")
        # THEN start recognises its own item in the retry's ConditionalCheckFailed and the
        # pipeline runs to a decision (before the fix: "duplicate upload event ignored", no execution)
        run = cloud.wait(media_id, timeout=120)
        assert run.status == "SUCCEEDED", run.states
        assert cloud.item(media_id)["status"] == "done"
        assert cloud.fault_stats.injected[("dynamodb", "timeout")] >= 1
