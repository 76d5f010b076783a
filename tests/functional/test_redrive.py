"""Uploads that never started, or failed, get another run (issue 14 #10, #11): the sweep,
``mediaguard redrive`` and ``POST /admin/items/{media_id}/redrive``, through the local
stack (the real template, state machine and handlers); failed items reach people; an
item shows an action only once enforcement applied it."""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
import uuid

import pytest

from mediaguard.adapters.aws import ExecutionExistsError, StepFunctionsWorkflow
from mediaguard.audit.chain import verify
from mediaguard.cli.redrive import run_redrive
from mediaguard.ingress.grant import upload_key
from mediaguard.models import Upload
from tests.conftest import jpeg_bytes, load_event, photo

ADMIN = {"sub": "root-admin", "cognito:groups": "[admin]"}
REVIEWER = {"sub": "alice", "cognito:groups": "[reviewer]"}


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def events_of(cloud, media_id: str) -> list[str]:
    return [r.event for r in cloud.deps().items.audit_chain(media_id)]


def upload_without_start(cloud, data: bytes, *, audited: bool = True) -> tuple[str, str]:
    """What a start function that died right after creating the item leaves: the object,
    the item in ``received``, its first audit record, and no execution."""
    s3, bucket = cloud.client("s3"), cloud.upload_bucket
    saved = s3.get_bucket_notification_configuration(Bucket=bucket)
    saved.pop("ResponseMetadata", None)
    media_id = uuid.uuid4().hex
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        s3.put_object(Bucket=bucket, Key=upload_key(media_id), Body=data, ContentType="image/jpeg")
    finally:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=saved)
    items = cloud.deps().items
    run = items.create_once(Upload(media_id=media_id, bucket=bucket, key=upload_key(media_id)))
    if audited:  # False: the start died between creating the item and its first audit record
        items.append_audit(media_id, "system:start", "received", {"key": upload_key(media_id), "run": run})
    return media_id, run


def api(cloud, method: str, path: str, claims: dict, body: dict | None = None) -> tuple[int, dict | None]:
    """One request to the review API function as API Gateway hands it over (JWT claims validated)."""
    event = copy.deepcopy(load_event("api"))
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    event["rawQueryString"], event["queryStringParameters"] = "", None
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    result = cloud.invoke("ApiFunction", event)
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


@pytest.fixture
def later(cloud):
    """The stack's clock ten minutes ahead: two sweep periods have passed."""
    cloud.set_clock(lambda: time.time() + 600)
    yield
    cloud.set_clock(time.time)


# --- #10: stuck uploads ------------------------------------------------------------------------


def test_an_upload_whose_start_died_is_redriven_by_the_sweep(cloud, later):
    # GIVEN an upload whose start function died between creating the item and StartExecution
    media_id, first_run = upload_without_start(cloud, jpeg_bytes(photo("astronaut")))
    # WHEN the scheduled sweep runs, minutes later
    result = cloud.invoke("SweepFunction", load_event("sweep"))
    # THEN it re-drives the item under a new execution name, audited
    assert result["stuck"] >= 1 and len(result["redriven"]) >= 1 and result["failed"] == []
    run = cloud.item(media_id)["run"]
    assert run in result["redriven"] and run != first_run
    execution = cloud.wait(run)
    assert execution.status == "SUCCEEDED" and execution.states[-1] == "Done"
    item = cloud.item(media_id)
    assert (item["status"], item["action"]) == ("done", "allow")
    assert "start_pending" not in item and run in item["claimed_by"]  # the execution ARN names its run
    assert events_of(cloud, media_id)[:2] == ["received", "redriven"]
    assert verify(cloud.deps().items.audit_chain(media_id)) == []
    # AND the next sweep finds nothing left to do for it
    assert run not in cloud.invoke("SweepFunction", load_event("sweep"))["redriven"]


def test_a_stuck_upload_never_audited_gets_its_receipt_recorded_first(cloud, later):
    # GIVEN an item whose start died before writing the chain's first record (found by the
    # fault test: the chain began with "redriven")
    media_id, _ = upload_without_start(cloud, jpeg_bytes(photo("rocket")), audited=False)
    # WHEN the sweep re-drives it
    cloud.invoke("SweepFunction", load_event("sweep"))
    assert cloud.wait(cloud.item(media_id)["run"]).status == "SUCCEEDED"
    # THEN its chain still begins with the receipt, marked as recorded late, and verifies
    chain = cloud.deps().items.audit_chain(media_id)
    assert [r.event for r in chain[:2]] == ["received", "redriven"]
    assert chain[0].detail["recorded_late"] is True and chain[0].detail["key"] == upload_key(media_id)
    assert [r.event for r in chain].count("received") == 1 and verify(chain) == []


def test_a_duplicate_or_replaced_execution_stops_at_the_first_stage(cloud, later):
    # GIVEN an item re-driven after its first StartExecution answered with an error although
    # the execution had started (it ran late)
    media_id, first_run = upload_without_start(cloud, jpeg_bytes(photo("chelsea")))
    cloud.invoke("SweepFunction", load_event("sweep"))
    run = cloud.item(media_id)["run"]
    assert cloud.wait(run).status == "SUCCEEDED"
    # WHEN the first run's execution arrives
    bucket = cloud.upload_bucket
    late = Upload(media_id=media_id, bucket=bucket, key=upload_key(media_id), run=first_run)
    cloud.client("stepfunctions").start_execution(stateMachineArn=cloud.state_machine_arn, name=first_run,
                                                  input=late.model_dump_json())
    # THEN it stops quietly at the claim and leaves the item as the current run left it
    stale = cloud.wait(first_run)
    assert (stale.status, stale.states) == ("SUCCEEDED", ["Sanitize", "Superseded"])
    assert cloud.item(media_id)["status"] == "done"
    assert events_of(cloud, media_id).count("sanitized") == 1


def test_a_replaced_run_that_fails_cannot_mark_the_current_run_failed(cloud, later):
    # GIVEN an item re-driven by the sweep and finished by its new run
    media_id, first_run = upload_without_start(cloud, jpeg_bytes(photo("rocket")))
    cloud.invoke("SweepFunction", load_event("sweep"))
    run = cloud.item(media_id)["run"]
    assert cloud.wait(run).status == "SUCCEEDED"
    # WHEN the replaced run's execution fails in a stage and its Catch records the failure
    # (before, RecordFailure carried no run and marked the finished item failed)
    event = load_event("failure")
    event.update(media_id=media_id, bucket=cloud.upload_bucket, key=upload_key(media_id),
                 version_id=cloud.item(media_id).get("upload_version_id"), run=first_run,
                 error={"Error": "States.Timeout", "Cause": "{}"})
    result = cloud.invoke("FailureFunction", event)
    # THEN nothing is recorded: the item keeps the current run's outcome, untagged and unqueued
    assert result["status"] == "superseded"
    item = cloud.item(media_id)
    assert (item["status"], item.get("error_type")) == ("done", None)
    tags = cloud.client("s3").get_object_tagging(Bucket=cloud.upload_bucket, Key=upload_key(media_id))["TagSet"]
    assert not any(t["Key"] == "mediaguard-state" for t in tags)
    assert "failed" not in events_of(cloud, media_id)
    # AND the current run's own failure still is recorded
    event["run"] = run
    assert cloud.invoke("FailureFunction", event)["status"] == "failed"
    assert cloud.item(media_id)["status"] == "failed"


def test_a_failure_after_the_original_left_the_upload_bucket_still_ends_the_item(cloud):
    # GIVEN an item whose original version is no longer in the upload bucket (a removal moved
    # it to evidence, then a later step of the same run failed)
    media_id, run = upload_without_start(cloud, jpeg_bytes(photo("coffee")))
    event = load_event("failure")
    event.update(media_id=media_id, bucket=cloud.upload_bucket, key=upload_key(media_id),
                 version_id="moved-to-evidence-0000", run=run, error={"Error": "States.Timeout", "Cause": "{}"})
    # WHEN the run's Catch records the failure (before: tagging the gone version raised on
    # every retry and the item never reached a terminal status)
    result = cloud.invoke("FailureFunction", event)
    # THEN the item is failed, queued for people, and the chain says the original was elsewhere
    assert result["status"] == "failed" and cloud.item(media_id)["status"] == "failed"
    failed = [r for r in cloud.deps().items.audit_chain(media_id) if r.event == "failed"]
    assert [r.detail.get("original") for r in failed] == ["not_in_upload_bucket"]


def test_an_existing_execution_name_is_not_taken_for_a_started_run(cloud):
    # GIVEN an execution of a name already started
    workflow = StepFunctionsWorkflow(cloud.client("stepfunctions"), cloud.state_machine_arn)
    media_id, run = upload_without_start(cloud, jpeg_bytes(photo("astronaut")))
    payload = Upload(media_id=media_id, bucket=cloud.upload_bucket, key=upload_key(media_id), run=run).model_dump()
    workflow.start(run, payload)
    cloud.wait(run)
    # WHEN the same name is started again THEN it is an error, never "running"
    with pytest.raises(ExecutionExistsError):
        workflow.start(run, payload)


# --- #11: failed items ---------------------------------------------------------------------------


@pytest.fixture
def enforce_crashes(cloud, monkeypatch):
    """The enforce function dies (a timeout, an out-of-memory kill) on every call."""
    spec = cloud.functions[cloud.stack.physical_name("EnforceFunction")]

    def crash(event, context):
        raise TimeoutError("Task timed out after 60.00 seconds")

    monkeypatch.setattr(spec, "callable", lambda: crash)
    return monkeypatch


def test_a_failed_item_shows_no_action_goes_to_people_and_is_redriven_after_a_fix(cloud, enforce_crashes):
    # GIVEN an upload whose enforcement crashed
    original = jpeg_bytes(photo("astronaut"))
    media_id = cloud.upload(original, "image/jpeg")
    run = cloud.wait(media_id)
    assert run.states[-2:] == ["RecordFailure", "Failed"]
    item = cloud.item(media_id)
    # THEN the item shows what scoring proposed, not an action nobody applied
    assert (item["status"], item.get("action"), item["proposed_action"]) == ("failed", None, "allow")
    code, view = api(cloud, "GET", f"/items/{media_id}", REVIEWER)
    assert code == 200 and (view["action"], view["proposed_action"]) == (None, "allow")
    # AND the item is queued for people, with the reason
    task = view["task"]
    assert (task["state"], task["reason"]) == ("queued", "failed:internal_error")
    # AND meanwhile the upload form was used again: other bytes, refused as a replacement
    cloud.client("s3").put_object(Bucket=cloud.upload_bucket, Key=upload_key(media_id),
                                  Body=jpeg_bytes(photo("coffee")), ContentType="image/jpeg")
    assert cloud.item(media_id).get("replaced_versions")
    # WHEN enforcement is fixed and an admin re-drives the item
    enforce_crashes.undo()
    code, body = api(cloud, "POST", f"/admin/items/{media_id}/redrive", ADMIN, {"reason": "fixed_enforce"})
    # THEN a new run under a new name finishes it, and the trail says who and why
    assert code == 202 and (body["previous_status"], body["previous_run"]) == ("failed", media_id)
    assert cloud.wait(body["run"]).status == "SUCCEEDED"
    item = cloud.item(media_id)
    assert (item["status"], item["action"], item.get("error_type")) == ("done", "allow", None)
    # AND the re-run scanned the pinned version, not the refused replacement
    assert item["sha256"] == hashlib.sha256(original).hexdigest()
    redriven = [r for r in cloud.deps().items.audit_chain(media_id) if r.event == "redriven"]
    assert [(r.actor, r.detail["reason"], r.detail["run"]) for r in redriven] == [
        ("admin:root-admin", "fixed_enforce", body["run"])]
    # AND the failed run's review task is withdrawn, not left for someone to decide a run
    # that no longer exists (audited); the new run's outcome stands
    code, view = api(cloud, "GET", f"/items/{media_id}", REVIEWER)
    assert code == 200 and (view["task"]["state"], view["task"]["decision_action"]) == ("decided", "withdrawn")
    withdrawn = [r for r in cloud.deps().items.audit_chain(media_id) if r.event == "review_withdrawn"]
    assert [(r.actor, r.detail["run"]) for r in withdrawn] == [("admin:root-admin", body["run"])]


def test_only_admins_redrive_and_only_what_may_be_redriven(cloud):
    # GIVEN a finished item
    media_id = cloud.upload(jpeg_bytes(photo("chelsea")), "image/jpeg")
    assert cloud.wait(media_id).status == "SUCCEEDED"
    path = f"/admin/items/{media_id}/redrive"
    # THEN a reviewer may not re-drive, an admin may not re-drive a finished item, nor an unknown one
    assert api(cloud, "POST", path, REVIEWER)[0] == 403
    code, body = api(cloud, "POST", path, ADMIN)
    assert (code, body["reason"]) == (409, "redrive_refused")
    assert api(cloud, "POST", "/admin/items/no-such-item/redrive", ADMIN)[0] == 404
    assert "redriven" not in events_of(cloud, media_id)


def test_the_cli_redrives_a_stuck_item(cloud):
    # GIVEN an item whose start died
    media_id, first_run = upload_without_start(cloud, jpeg_bytes(photo("astronaut")))
    # WHEN an operator re-drives it
    out = Lines()
    args = argparse.Namespace(media_id=media_id, reason="start_lambda_timeout", json=True, stack=None, region=None)
    code = run_redrive(args, out, deps=cloud.deps())
    # THEN it runs to the end under a new name
    result = json.loads(out.lines[0])
    assert code == 0 and result["previous_status"] == "received" and result["run"] != first_run
    assert cloud.wait(result["run"]).status == "SUCCEEDED"
    # AND re-driving the finished item is refused (exit 1)
    assert run_redrive(args, Lines(), deps=cloud.deps()) == 1


def test_a_timed_out_sanitize_still_leaves_the_originals_hash(cloud):
    # GIVEN an upload whose sanitize never returned (States.Timeout: the function was killed,
    # so its except clause, the only place a failed upload's hash is written, never ran)
    data = jpeg_bytes(photo("camera"))
    media_id, run = upload_without_start(cloud, data)
    assert "sha256" not in cloud.item(media_id)
    event = load_event("failure")
    event.update(media_id=media_id, bucket=cloud.upload_bucket, key=upload_key(media_id),
                 version_id=cloud.item(media_id).get("upload_version_id"), run=run,
                 error={"Error": "States.Timeout", "Cause": "{}"})
    # WHEN the run's Catch records the failure
    assert cloud.invoke("FailureFunction", event)["status"] == "failed"
    # THEN the item and its chain carry the original's sha256 and size, computed from the upload
    item = cloud.item(media_id)
    assert (item["sha256"], int(item["size"])) == (hashlib.sha256(data).hexdigest(), len(data))
    failed = [r for r in cloud.deps().items.audit_chain(media_id) if r.event == "failed"]
    assert [r.detail.get("sha256") for r in failed] == [hashlib.sha256(data).hexdigest()]
