"""The audit store on (in-process) DynamoDB and S3: transactions, head pointers, Object Lock
digests, and ``mediaguard audit verify`` catching each kind of tampering by name."""

from __future__ import annotations

import argparse
import importlib.util
import json
import threading
from datetime import UTC, datetime, timedelta
from functools import cache, partial

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from pynamodb.exceptions import TransactWriteError

from mediaguard import wiring
from mediaguard.adapters import audit as audit_adapter
from mediaguard.adapters import tables
from mediaguard.adapters.audit import (
    AuditNames,
    DigestConflictError,
    DynamoAuditStore,
    names_from_settings,
    pending_shard,
)
from mediaguard.audit.chain import DIGEST_CHAIN, Head, digest_key, next_record, verify_trail
from mediaguard.cli.audit import add_audit_parser, run_audit
from mediaguard.settings import Settings
from tests.conftest import REPO
from tests.fakes import Clock, Lines

REGION = "us-east-1"
NAMES = AuditNames(REGION, "test-audit", "test-audit-heads", "test-audit-digests")
CHAIN = "0f3c8a1e6b2d4c59a7e1f0b2c3d4e5f6"
EVENTS = [
    ("system:start", "received", {"key": f"uploads/{CHAIN}"}),
    ("system:sanitize", "sanitized", {"removed": ["exif"], "pdq": "2d6b1af3"}),
    ("system:classify", "classified", {"nsfw": 0.12}),
    ("system:score", "scored", {"risk": 0.096, "action": "allow"}),
    ("moderator:42", "appeal-upheld", {"action": "allow"}),
]





def ticking_clock() -> Clock:
    """Each reading one second later, so records and digests have distinct, ordered times."""
    return Clock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC), step=timedelta(seconds=1))


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@cache
def client(service: str):
    # One client per service for the module: creating one costs ~0.1 s, and moto intercepts
    # every client while a mock is active, whenever it was created.
    return boto3.client(service, region_name=REGION)


def ddb():
    return client("dynamodb")


def create_trail_resources(names: AuditNames = NAMES, lock: bool = True) -> None:
    """The two tables from the pynamodb models and the digest bucket, as the template declares them."""
    DynamoAuditStore(names)  # binds the models to these names
    tables.AuditItem.create_table()
    tables.AuditHead.create_table()
    s3 = client("s3")
    s3.create_bucket(Bucket=names.digest_bucket, ObjectLockEnabledForBucket=lock)
    if lock:
        s3.put_object_lock_configuration(Bucket=names.digest_bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})


@pytest.fixture
def store(aws) -> DynamoAuditStore:
    create_trail_resources()
    return DynamoAuditStore(NAMES, s3=client("s3"), clock=ticking_clock())


def fill(store: DynamoAuditStore, chain: str = CHAIN, events=EVENTS) -> None:
    for actor, event, detail in events:
        store.append(chain, actor, event, detail)


def problems(store: DynamoAuditStore, chain: str | None = None) -> list[tuple[str, int | None, str]]:
    report = verify_trail(store.snapshot(chain))
    return [(f.chain, f.seq, f.kind) for f in report.problems]


def audit_key(chain: str, seq: int) -> dict:
    return {"chain": {"S": chain}, "seq": {"N": str(seq)}}


# --- writing ---------------------------------------------------------------------------------


def test_append_writes_the_record_and_moves_the_head_in_one_step(store):
    fill(store)
    records = store.records(CHAIN)
    assert [r.seq for r in records] == [0, 1, 2, 3, 4]
    assert store.head(CHAIN) == Head(4, records[-1].hash)
    row = tables.AuditHead.get(CHAIN, consistent_read=True)
    assert row.pending == pending_shard(CHAIN)  # waiting for the next digest
    assert problems(store) == []


def test_a_transaction_whose_head_moved_writes_nothing(store):
    # GIVEN a writer that read the head at #0, while another writer appended #1 meanwhile
    fill(store, events=EVENTS[:1])
    stale = store.head(CHAIN)
    fill(store, events=EVENTS[1:2])
    # WHEN it commits a record at a free seq (#2) on the stale head: the record's own condition holds
    record = next_record(CHAIN, store.records(CHAIN)[-1], "2026-11-23T11:00:00Z", "system:x", "late", {})
    with pytest.raises(TransactWriteError):
        store._commit(record, stale, pending=0)
    # THEN the failed head condition cancelled the record too: the chain is what the winner left
    assert [r.event for r in store.records(CHAIN)] == ["received", "sanitized"]
    assert problems(store) == []


def test_an_append_applied_but_reported_failed_is_not_appended_twice(store, monkeypatch):
    # GIVEN a commit that reaches DynamoDB but whose caller sees a conditional failure (the
    # answer lost, then the SDK's retry of the same transaction meeting its own write)
    fill(store, events=EVENTS[:1])
    real_commit = store._commit
    calls = []

    def applied_then_refused(record, head, pending):
        calls.append(record.seq)
        real_commit(record, head, pending)
        if len(calls) == 1:
            with pytest.raises(TransactWriteError) as refused:
                real_commit(record, head, pending)  # the retry: its conditions now fail
            raise refused.value

    monkeypatch.setattr(store, "_commit", applied_then_refused)
    # WHEN the record is appended
    record = store.append(CHAIN, "system:x", "sanitized", {})
    # THEN it is in the chain once, and the store noticed instead of appending a copy
    assert [r.event for r in store.records(CHAIN)] == ["received", "sanitized"]
    assert calls == [1] and record.seq == 1
    assert problems(store) == []


@pytest.fixture
def serialized_moto_transactions(monkeypatch):
    """DynamoDB serialises transactions; moto applies one by deep-copying the tables it
    touches and restoring that copy if it fails, with no lock, so two threads corrupt each
    other's state. One lock around moto's implementation restores DynamoDB's guarantee;
    the interleaving the test is about (read the head, then commit) stays free."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    original = DynamoDBBackend.transact_write_items

    def locked(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", locked)


def test_concurrent_writers_on_one_chain_each_get_their_own_seq(store, serialized_moto_transactions):
    # GIVEN three writers appending to the same chain at once
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(3):
                store.append(CHAIN, f"system:w{n}", "step", {"writer": n, "i": i})
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise only printed
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN all nine records landed on distinct consecutive seqs and the chain verifies
    assert errors == []
    records = store.records(CHAIN)
    assert [r.seq for r in records] == list(range(9))
    assert sorted((r.detail["writer"], r.detail["i"]) for r in records) == [(n, i) for n in range(3) for i in range(3)]
    assert problems(store) == []


def test_a_chain_written_before_head_pointers_continues_and_gains_one(store):
    # GIVEN a chain of two records written the old way (no head item)
    fill(store, events=EVENTS[:2])
    tables.AuditHead(CHAIN).delete()
    # WHEN appended to
    record = store.append(CHAIN, *EVENTS[2])
    # THEN it continues the chain and the head pointer exists again
    assert record.seq == 2 and store.head(CHAIN) == Head(2, record.hash)
    assert problems(store) == []


def test_the_digest_chain_is_not_writable_through_append(store):
    with pytest.raises(ValueError):
        store.append(DIGEST_CHAIN, "someone", "digest", {})


# --- digests ---------------------------------------------------------------------------------


def test_a_digest_anchors_pending_chains_in_the_locked_archive_and_clears_them(store):
    fill(store)
    fill(store, "upload:abc", EVENTS[:2])
    # WHEN the digest job runs
    outcome = store.write_digest()
    # THEN one digest anchors both chains, archived under a compliance lock
    assert (outcome.seq, outcome.chains, outcome.key) == (0, 2, digest_key(0))
    obj = store.s3.get_object(Bucket=NAMES.digest_bucket, Key=digest_key(0))
    assert obj["ObjectLockMode"] == "COMPLIANCE"
    assert json.loads(obj["Body"].read())["heads"] == {
        CHAIN: [4, store.head(CHAIN).hash], "upload:abc": [1, store.head("upload:abc").hash]}
    # AND the chains are no longer pending, so an idle run writes nothing
    assert all(row.pending is None for row in tables.AuditHead.scan())
    assert store.write_digest().seq is None
    report = verify_trail(store.snapshot())
    assert report.ok and report.findings == [] and report.digests == 1


def test_a_capped_run_leaves_the_rest_for_the_next(store):
    # GIVEN three chains waiting and a cap of two per digest
    for chain in ("m-1", "m-2", "m-3"):
        fill(store, chain, EVENTS[:1])
    # WHEN the job runs twice
    first, second = store.write_digest(max_heads=2), store.write_digest(max_heads=2)
    # THEN the first anchors two and says more wait, the second anchors the third
    assert (first.chains, first.more_pending) == (2, True)
    assert (second.chains, second.more_pending) == (1, False)
    report = verify_trail(store.snapshot())
    assert report.ok and report.findings == [] and report.digests == 2


def test_a_locked_digest_cannot_be_deleted_or_replaced_in_place(store):
    fill(store, events=EVENTS[:1])
    store.write_digest()
    s3 = store.s3
    version = s3.list_object_versions(Bucket=NAMES.digest_bucket)["Versions"][0]["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=NAMES.digest_bucket, Key=digest_key(0), VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as conflict:
        s3.put_object(Bucket=NAMES.digest_bucket, Key=digest_key(0), Body=b"{}", IfNoneMatch="*")
    assert conflict.value.response["Error"]["Code"] == "PreconditionFailed"


def test_digests_are_locked_even_where_the_bucket_has_no_default_retention(aws):
    # GIVEN a lock-enabled bucket without default retention (as local mode creates it)
    names = AuditNames(REGION, "nodefault-audit", "nodefault-heads", "nodefault-digests", retention_days=30)
    create_trail_resources(names, lock=False)
    client("s3").delete_bucket(Bucket=names.digest_bucket)
    client("s3").create_bucket(Bucket=names.digest_bucket, ObjectLockEnabledForBucket=True)
    clock = ticking_clock()
    store = DynamoAuditStore(names, s3=client("s3"), clock=clock)
    fill(store, events=EVENTS[:1])
    # WHEN a digest is written
    store.write_digest()
    # THEN it carries its own compliance lock of the configured length
    obj = client("s3").head_object(Bucket=names.digest_bucket, Key=digest_key(0))
    assert obj["ObjectLockMode"] == "COMPLIANCE"
    assert obj["ObjectLockRetainUntilDate"] == clock.now + timedelta(days=30)
    assert problems(store) == []


def test_a_digest_job_asked_for_locks_refuses_an_unlockable_bucket(aws):
    names = AuditNames(REGION, "plain2-audit", "plain2-heads", "plain2-digests", retention_days=30)
    create_trail_resources(names, lock=False)
    store = DynamoAuditStore(names, s3=client("s3"), clock=ticking_clock())
    fill(store, events=EVENTS[:1])
    with pytest.raises(ClientError):
        store.write_digest()
    assert client("s3").list_objects_v2(Bucket=names.digest_bucket).get("KeyCount") == 0


def test_records_appended_after_a_digest_are_unanchored_until_the_next(store):
    fill(store, events=EVENTS[:3])
    store.write_digest()
    fill(store, events=EVENTS[3:])
    report = verify_trail(store.snapshot())
    assert report.ok
    assert [(f.chain, f.seq, f.kind) for f in report.findings] == [(CHAIN, 3, "unanchored")]
    assert store.write_digest().seq == 1
    assert verify_trail(store.snapshot()).findings == []


def test_a_run_that_stopped_after_archiving_is_finished_by_the_next(store, monkeypatch):
    # GIVEN a digest run that archived digest 0 and died before recording it
    fill(store)
    original = store._record

    def crash(digest, head):
        raise RuntimeError("Lambda timed out")

    monkeypatch.setattr(store, "_record", crash)
    with pytest.raises(RuntimeError):
        store.write_digest()
    monkeypatch.setattr(store, "_record", original)
    assert [f[2] for f in problems(store)] == ["deleted"]  # the table copy of digest 0 is missing
    # WHEN the next run starts
    outcome = store.write_digest()
    # THEN it adopts the archived digest and the trail is whole again
    assert outcome.adopted == 0 and outcome.seq is None
    assert problems(store) == []


def test_a_forged_next_digest_in_the_archive_stops_the_job(store):
    fill(store)
    store.s3.put_object(Bucket=NAMES.digest_bucket, Key=digest_key(0), Body=b"{}")
    with pytest.raises(DigestConflictError):
        store.write_digest()


# --- tampering, each named -------------------------------------------------------------------


@pytest.fixture
def anchored(store) -> DynamoAuditStore:
    """A trail with two chains, both anchored by digest 0."""
    fill(store)
    fill(store, "upload:abc", EVENTS[:2])
    store.write_digest()
    assert problems(store) == []
    return store


def test_editing_a_record_in_the_table_is_named(anchored):
    ddb().update_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, 3),
                      UpdateExpression="SET detail = :d", ExpressionAttributeValues={":d": {"S": '{"risk":0.0}'}})
    assert problems(anchored) == [(CHAIN, 3, "edited")]


def test_deleting_a_middle_record_is_named(anchored):
    ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, 2))
    assert problems(anchored) == [(CHAIN, 2, "deleted")]


def test_deleting_the_newest_record_before_any_digest_is_caught_by_the_head(store):
    fill(store)
    ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, 4))
    assert problems(store) == [(CHAIN, 4, "deleted")]


def test_deleting_the_newest_records_and_rewinding_the_head_is_caught_by_the_digest(anchored):
    # GIVEN an intruder who deletes #3 and #4 and points the head at #2, so the table is self-consistent
    for seq in (3, 4):
        ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, seq))
    two = anchored.records(CHAIN)[-1]
    tables.AuditHead(CHAIN, seq=2, hash=two.hash, at=two.at).save()
    # THEN the digest names both deleted records
    assert problems(anchored) == [(CHAIN, 3, "deleted"), (CHAIN, 4, "deleted")]


def test_deleting_a_whole_chain_is_named(anchored):
    for seq in range(5):
        ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, seq))
    tables.AuditHead(CHAIN).delete()
    assert problems(anchored) == [(CHAIN, None, "deleted")]
    assert problems(anchored, CHAIN) == [(CHAIN, None, "deleted")]  # --chain finds it too


def test_swapping_two_records_is_named(anchored):
    items = {seq: ddb().get_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, seq))["Item"] for seq in (1, 3)}
    ddb().put_item(TableName=NAMES.audit_table, Item={**items[3], "seq": {"N": "1"}})
    ddb().put_item(TableName=NAMES.audit_table, Item={**items[1], "seq": {"N": "3"}})
    assert problems(anchored) == [(CHAIN, 1, "reordered"), (CHAIN, 3, "reordered")]


def test_editing_the_table_copy_of_a_digest_is_named(anchored):
    ddb().update_item(TableName=NAMES.audit_table, Key=audit_key(DIGEST_CHAIN, 0),
                      UpdateExpression="SET detail = :d",
                      ExpressionAttributeValues={":d": {"S": json.dumps({"chains": 1, "root": "0" * 64})}})
    assert problems(anchored) == [(DIGEST_CHAIN, 0, "edited")]


def test_writing_over_an_archived_digest_is_named_and_the_original_still_counts(anchored):
    # GIVEN a new version (and then a delete marker) written over digest 0
    anchored.s3.put_object(Bucket=NAMES.digest_bucket, Key=digest_key(0), Body=b'{"forged": true}')
    anchored.s3.delete_object(Bucket=NAMES.digest_bucket, Key=digest_key(0))
    # AND the chain it anchors then truncated
    ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, 4))
    tables.AuditHead(CHAIN).delete()
    # THEN the overwrite is named, and the locked original still proves the deletion
    found = problems(anchored)
    assert (DIGEST_CHAIN, 0, "overwritten") in found
    assert (CHAIN, 4, "deleted") in found


def test_an_unlocked_archive_is_a_problem(aws):
    names = AuditNames(REGION, "plain-audit", "plain-heads", "plain-digests")
    create_trail_resources(names, lock=False)
    store = DynamoAuditStore(names, s3=client("s3"), clock=ticking_clock())
    fill(store, events=EVENTS[:1])
    store.write_digest()
    assert problems(store) == [(DIGEST_CHAIN, 0, "unlocked")]


# --- the command line -------------------------------------------------------------------------




def cli(argv: list[str], settings=None) -> tuple[int, list[str]]:
    parser = argparse.ArgumentParser(prog="mediaguard")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    out = Lines()
    return run_audit(parser.parse_args(argv), out, settings=settings), out.lines


def stub_cloudformation(monkeypatch, response: dict | None = None, error: str | None = None) -> Stubber:
    """CloudFormation answering one DescribeStacks, shapes checked against the API model; the
    real ``names_from_stack`` reads it. (moto's CloudFormation costs ~6 s to import.)"""
    cfn = boto3.client("cloudformation", region_name=REGION)  # its own: a stubber stays on its client
    stubber = Stubber(cfn)
    if error:
        stubber.add_client_error("describe_stacks", service_error_code="ValidationError", service_message=error)
    else:
        stubber.add_response("describe_stacks", response)
    stubber.activate()
    monkeypatch.setattr(audit_adapter, "names_from_stack", partial(audit_adapter.names_from_stack, client=cfn))
    return stubber


@pytest.fixture
def stack(anchored, monkeypatch) -> str:
    """A deployed stack whose outputs name the trail, as the template's do."""
    outputs = [{"OutputKey": key, "OutputValue": value} for key, value in (
        ("AuditTableName", NAMES.audit_table), ("AuditHeadTableName", NAMES.head_table),
        ("DigestBucketName", NAMES.digest_bucket), ("MediaTableName", "unrelated"))]
    stub_cloudformation(monkeypatch, {"Stacks": [{
        "StackName": "mg-test", "CreationTime": datetime(2026, 11, 1, tzinfo=UTC), "StackStatus": "UPDATE_COMPLETE",
        "Outputs": outputs}]})
    return "mg-test"


def test_verify_against_a_stack_passes_a_clean_trail(stack):
    code, lines = cli(["audit", "verify", "--stack", stack, "--region", REGION])
    assert code == 0
    assert lines[-1].startswith("verified: 2 chains, 7 records, 1 digest")


def test_verify_lists_each_problem_and_exits_1(stack):
    ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, 2))
    ddb().update_item(TableName=NAMES.audit_table, Key=audit_key("upload:abc", 0),
                      UpdateExpression="SET actor = :a", ExpressionAttributeValues={":a": {"S": "moderator:1"}})
    code, lines = cli(["audit", "verify", "--stack", stack, "--region", REGION])
    assert code == 1
    assert any(line.startswith(f"FAIL {CHAIN}#2 deleted") for line in lines)
    assert any(line.startswith("FAIL upload:abc#0 edited") for line in lines)
    assert "2 problems" in lines[-1]


def test_verify_json_is_one_object_with_every_finding(stack):
    ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, 4))
    code, lines = cli(["audit", "verify", "--stack", stack, "--region", REGION, "--json", "--chain", CHAIN])
    body = json.loads("\n".join(lines))
    assert code == 1 and body["ok"] is False and body["chains"] == 1
    assert [(f["chain"], f["seq"], f["kind"], f["failing"]) for f in body["findings"]] == [(CHAIN, 4, "deleted", True)]


def test_verify_in_process_uses_the_settings_it_is_given(anchored):
    settings = Settings(audit_table=NAMES.audit_table, region=REGION).model_copy(
        update={"audit_head_table": NAMES.head_table, "digest_bucket": NAMES.digest_bucket})
    assert names_from_settings(settings) == NAMES
    code, lines = cli(["audit", "verify", "--chain", CHAIN], settings=settings)
    assert code == 0 and lines[-1].startswith("verified: 1 chain, 5 records, 1 digest")


def test_verify_of_a_stack_that_does_not_exist_exits_2(aws, monkeypatch):
    stub_cloudformation(monkeypatch, error="Stack with id no-such-stack does not exist")
    code, lines = cli(["audit", "verify", "--stack", "no-such-stack", "--region", REGION])
    assert code == 2 and lines == []


def test_verify_of_a_chain_that_has_no_trail_exits_2(stack):
    code, lines = cli(["audit", "verify", "--chain", "no-such-chain", "--stack", stack, "--region", REGION])
    assert code == 2 and lines == []


def test_verify_without_a_trail_configured_exits_2(aws):
    code, _ = cli(["audit", "verify"], settings=Settings(region=REGION))
    assert code == 2


# --- records written after the last digest (issue 14, defect 9) ---------------------------------


def settings_for(names: AuditNames = NAMES) -> Settings:
    return Settings(audit_table=names.audit_table, region=REGION).model_copy(
        update={"audit_head_table": names.head_table, "digest_bucket": names.digest_bucket})


def test_a_record_no_digest_anchors_for_two_periods_fails_verify(anchored):
    # GIVEN a record appended after the last digest, without its chain marked pending (so
    # no digest will ever anchor it), and more than two digest periods ago
    record = next_record(CHAIN, anchored.head(CHAIN), "2026-11-23T10:01:00+00:00", "moderator:9", "approved", {})
    anchored._commit(record, anchored.head(CHAIN), pending=None)
    # WHEN verified now
    code, lines = cli(["audit", "verify", "--chain", CHAIN], settings=settings_for())
    # THEN it is a failure, not a note
    assert code == 1
    assert any(line.startswith(f"FAIL {CHAIN}#5 stale") for line in lines), lines


def stream_batch(*writes: tuple[str, str, int, str | None, str | None]) -> list[dict]:
    """Records as the audit table's stream delivers them (only the fields the log keeps)."""
    return [{"eventID": f"{i}-{event}-{chain}-{seq}", "eventName": event,
             "dynamodb": {"ApproximateCreationDateTime": 1795428000 + i,
                          "Keys": {"chain": {"S": chain}, "seq": {"N": str(seq)}},
                          **({"OldImage": {"hash": {"S": old}}} if old else {}),
                          **({"NewImage": {"hash": {"S": new}}} if new else {})}}
            for i, (event, chain, seq, old, new) in enumerate(writes)]


def test_the_change_log_keeps_each_batch_once_under_a_lock_and_verify_names_overwrites(store):
    from mediaguard.audit.chain import changes_from_stream

    # GIVEN a chain whose newest record was deleted and written again, differently, before any digest
    fill(store)
    original = store.records(CHAIN)[4]
    ddb().delete_item(TableName=NAMES.audit_table, Key=audit_key(CHAIN, 4))
    store._commit(next_record(CHAIN, store.records(CHAIN)[3], original.at, "moderator:42", "appeal-upheld",
                              {"action": "remove"}), Head(4, original.hash), pending=pending_shard(CHAIN))
    assert problems(store) == []  # the table alone cannot tell
    # WHEN the stream's batch reaches the change log (twice: the mapping retried it)
    batch = changes_from_stream(stream_batch(("INSERT", CHAIN, 4, None, original.hash),
                                             ("REMOVE", CHAIN, 4, original.hash, None),
                                             ("INSERT", CHAIN, 4, None, store.head(CHAIN).hash)))
    key = store.log_changes(batch)
    assert store.log_changes(batch) == key
    # THEN it is archived once, under a compliance lock
    versions = client("s3").list_object_versions(Bucket=NAMES.digest_bucket, Prefix="changes/")["Versions"]
    assert [v["Key"] for v in versions] == [key]
    assert client("s3").head_object(Bucket=NAMES.digest_bucket, Key=key)["ObjectLockMode"] == "COMPLIANCE"
    # AND verify names the deletion, even after a digest anchored the rewritten chain
    store.write_digest()
    assert problems(store) == [(CHAIN, 4, "deleted")]


# --- the scheduled handler ----------------------------------------------------------------------


def test_the_digest_handler_runs_one_digest_for_the_sample_event(anchored, monkeypatch):
    fill(anchored, "upload:def", EVENTS[:1])
    monkeypatch.setattr(wiring, "audit_store", lambda: anchored)
    spec = importlib.util.spec_from_file_location("digest_app", REPO / "functions" / "digest" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    event = json.loads((REPO / "events" / "digest.json").read_text())
    from mediaguard.local.runtime import LambdaContext

    context = LambdaContext(function_name="digest", memory_limit_in_mb=512,
                            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:digest")
    result = module.handler(event, context)
    assert result["seq"] == 1 and result["chains"] == 1 and result["key"] == digest_key(1)
