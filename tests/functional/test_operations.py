"""Operating a deployed stack, on the local stack: failed upload events are redriven
(issue 14 #6) and secrets reach functions at run time, not through their configuration (#4)."""

from __future__ import annotations

import json
import uuid

import pytest

from mediaguard import wiring
from mediaguard.adapters.redrive import RedriveTarget
from mediaguard.cli.main import main
from mediaguard.cli.redrive_events import run_redrive_events
from mediaguard.ingress.grant import upload_key
from tests.conftest import jpeg_bytes, load_event, photo


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


class _Args:
    stack = region = None
    json = True


def _target(cloud) -> RedriveTarget:
    return RedriveTarget(queue_url=cloud.output("StartFailedEventsQueue"),
                         function_name=cloud.stack.physical_name("StartFunction"), region=cloud.stack.region)


def _on_failure_record(cloud, key: str, version_id: str | None = None) -> str:
    """What Lambda sends to the on-failure destination once S3's async invocation gave up."""
    event = load_event("start")
    event["Records"][0]["s3"]["bucket"]["name"] = cloud.upload_bucket
    event["Records"][0]["s3"]["object"]["key"] = key
    # The real object's version (the upload bucket is versioned), as S3's event carries it.
    event["Records"][0]["s3"]["object"].pop("versionId", None)
    if version_id:
        event["Records"][0]["s3"]["object"]["versionId"] = version_id
    return json.dumps({
        "version": "1.0", "timestamp": "2026-12-02T09:00:00.000Z",
        "requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetriesExhausted", "approximateInvokeCount": 3,
                           "functionArn": f"{cloud.stack.get_att('StartFunction', 'Arn')}:$LATEST"},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    })


def _queued(cloud) -> int:
    attributes = cloud.client("sqs").get_queue_attributes(
        QueueUrl=_target(cloud).queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                           "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def lost_upload(cloud):
    """An upload whose S3 event never reached the start function: it sits in the queue."""
    s3 = cloud.client("s3")
    notifications = s3.get_bucket_notification_configuration(Bucket=cloud.upload_bucket)
    notifications.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=cloud.upload_bucket, NotificationConfiguration={})
    media_id = uuid.uuid4().hex
    try:
        put = s3.put_object(Bucket=cloud.upload_bucket, Key=upload_key(media_id), Body=jpeg_bytes(photo("chelsea")),
                            ContentType="image/jpeg")
    finally:
        s3.put_bucket_notification_configuration(Bucket=cloud.upload_bucket, NotificationConfiguration=notifications)
    record = _on_failure_record(cloud, upload_key(media_id), put.get("VersionId"))
    cloud.client("sqs").send_message(QueueUrl=_target(cloud).queue_url, MessageBody=record)
    return media_id


def test_redrive_starts_the_lost_upload_and_keeps_what_still_fails(cloud, lost_upload):
    # GIVEN a lost upload event and an event start rejects (a key outside the upload prefix)
    sqs = cloud.client("sqs")
    sqs.send_message(QueueUrl=_target(cloud).queue_url, MessageBody=_on_failure_record(cloud, "elsewhere/x"))
    assert cloud.item(lost_upload) is None
    # WHEN the operator redrives
    out = _Lines()
    code = run_redrive_events(_Args(), out, _target(cloud), clients=(sqs, cloud.client("lambda")))
    # THEN the lost upload runs through the pipeline and leaves the queue
    results = {tuple(r["keys"]): r for r in map(json.loads, out.lines)}
    assert results[(upload_key(lost_upload),)]["outcome"] == "redriven"
    assert cloud.wait(lost_upload).status == "SUCCEEDED"
    assert cloud.item(lost_upload)["status"] != "failed"
    # AND the rejected event is reported by error type, kept for later, and the run exits 1
    failed = results[("elsewhere/x",)]
    assert (failed["outcome"], failed["error"], failed["condition"]) == ("failed", "MediaRejectedError", "RetriesExhausted")
    assert code == 1
    assert _queued(cloud) == 1
    sqs.purge_queue(QueueUrl=_target(cloud).queue_url)


def test_redriving_an_event_twice_starts_the_upload_once(cloud, lost_upload):
    # GIVEN the same lost event queued twice (Lambda delivers at least once)
    sqs = cloud.client("sqs")
    sqs.send_message(QueueUrl=_target(cloud).queue_url, MessageBody=_on_failure_record(cloud, upload_key(lost_upload)))
    # WHEN both are redriven
    out = _Lines()
    code = run_redrive_events(_Args(), out, _target(cloud), clients=(sqs, cloud.client("lambda")))
    # THEN both succeed and leave the queue, and one execution ran (start dedupes)
    assert code == 0 and [json.loads(line)["outcome"] for line in out.lines] == ["redriven", "redriven"]
    assert _queued(cloud) == 0
    assert cloud.wait(lost_upload).status == "SUCCEEDED"
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]
    assert [e["name"] for e in executions].count(lost_upload) == 1


def test_redrive_events_finds_the_queue_through_the_stack_outputs(cloud, lost_upload, capfd):
    # GIVEN a deployed stack whose outputs name the queue and the start function
    target = _target(cloud)
    cloud.client("cloudformation").create_stack(StackName="prod", TemplateBody=json.dumps({
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"StartFailedEventsQueueUrl": {"Value": target.queue_url},
                    "StartFunctionName": {"Value": target.function_name}}}))
    # WHEN the command runs against it by name
    code = main(["redrive-events", "--stack", "prod", "--json"])
    # THEN the queued event is redriven
    assert code == 0
    assert [json.loads(line)["keys"] for line in capfd.readouterr().out.splitlines()] == [[upload_key(lost_upload)]]
    # AND a stack without those outputs is a usage error that reads nothing
    assert main(["redrive-events", "--stack", "no-such-stack"]) == 2


def test_no_function_configuration_holds_the_uploader_key(cloud):
    # GIVEN the local stack's secret and every function configuration
    secret = cloud.client("secretsmanager").get_secret_value(SecretId=cloud.output("UploaderKeySecret"))["SecretString"]
    lam = cloud.client("lambda")
    variables = [lam.get_function_configuration(FunctionName=spec.name).get("Environment", {}).get("Variables", {})
                 for spec in cloud.functions.values()]
    # THEN the value is in none of them; the functions that key uploader ids hold its id
    assert not any(secret in value for env in variables for value in env.values())
    # (start, enforce, the review API, the upload API for "my uploads", and erasure's caller)
    assert sum("MEDIAGUARD_UPLOADER_KEY_SECRET_ARN" in env for env in variables) == 5
    # AND the history still keys uploaders with it, read at run time and kept per container
    from mediaguard.decisions.history import Pseudonymiser

    assert wiring.uploader_keys().key("user-42") == Pseudonymiser(secret).key("user-42")
    cloud.client("secretsmanager").delete_secret(SecretId=cloud.output("UploaderKeySecret"), ForceDeleteWithoutRecovery=True)
    assert wiring.uploader_keys().key("user-42") == Pseudonymiser(secret).key("user-42")
