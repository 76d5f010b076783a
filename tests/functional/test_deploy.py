"""Tests that deploy their own local stack (moto's state is process-wide, so these
never run beside the shared module stack)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.banks.model import NewEntry
from mediaguard.local.runtime import LocalCloud, LocalRuntimeError
from tests.conftest import REPO, jpeg_bytes, photo


def test_unexpected_error_ends_failed_without_leaking_internals():
    # GIVEN a bank entry whose stored hash was corrupted behind the bank service's back
    with LocalCloud(parameters={"LogLevel": "ERROR"}) as cloud:
        settings = cloud.deps().settings
        banks = dynamo_bank_service(settings)
        banks.create_bank("broken", "flag", actor="test")
        banks.add_entries("broken", [NewEntry(ref="bad", signal="pdq", value="ab" * 32, quality=100)], actor="test")
        cloud.client("dynamodb").update_item(
            TableName=settings.bank_entries_table, Key={"bank": {"S": "broken"}, "ref": {"S": "bad"}},
            UpdateExpression="SET #v = :v", ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":v": {"S": "zz-not-hex"}})
        # WHEN a good image is scanned
        media_id = cloud.upload(jpeg_bytes(photo("chelsea")), "image/jpeg")
        run = cloud.wait(media_id)
        item = cloud.item(media_id)
    # THEN the run ends in the Fail state after recording the failure
    assert run.status == "FAILED"
    assert run.states[-2:] == ["RecordFailure", "Failed"]
    assert (item["status"], item["error_type"], item["error_reason"]) == ("failed", "ValueError", "internal_error")
    assert "zz-not-hex" not in item["error_message"]


def _stack_copy(tmp_path: Path) -> Path:
    for name in ("template.yaml", "statemachine", "functions"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path / "template.yaml"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda asl: asl.replace('"Type": "Succeed"', '"Type": "Succeeed"', 1),
        lambda asl: asl.replace('"Next": "Score"', '"Next": "Scoring"'),
        lambda asl: asl.replace('"${ScoreFunctionArn}"', '"${ScorerFunctionArn}"'),
        lambda asl: asl[: len(asl) // 2],
    ],
    ids=["unknown-type", "dangling-next", "unresolved-substitution", "truncated-json"],
)
def test_malformed_state_machine_fails_deployment(tmp_path, breakage):
    # GIVEN a copy of the stack whose ASL file is broken
    template = _stack_copy(tmp_path)
    asl = tmp_path / "statemachine" / "pipeline.asl.json"
    asl.write_text(breakage(asl.read_text()))
    # WHEN local mode deploys it THEN it refuses, loudly
    with pytest.raises(Exception) as excinfo:
        LocalCloud.start(template).stop()
    assert excinfo.type.__name__ in ("LocalRuntimeError", "AslError", "ASLParserException", "JSONDecodeError",
                                     "ClientError", "InvalidDefinition")


def test_template_parameter_overrides_are_checked():
    with pytest.raises(LocalRuntimeError):
        LocalCloud(parameters={"NoSuchParameter": "x"})




def test_only_one_local_stack_runs_at_a_time():
    with LocalCloud(parameters={"LogLevel": "ERROR"}):
        with pytest.raises(LocalRuntimeError):
            LocalCloud.start()


def test_a_shadow_policy_is_recorded_beside_the_active_one_and_never_acts():
    # GIVEN a stack whose shadow policy is the previous policy version
    with LocalCloud(parameters={"LogLevel": "ERROR", "ShadowPolicy": "policy-2026-11-23.2.json"}) as cloud:
        # WHEN an image runs through the pipeline
        media_id = cloud.upload(jpeg_bytes(photo("coffee")), "image/jpeg")
        assert cloud.wait(media_id).status == "SUCCEEDED"
        item = cloud.item(media_id)
    # THEN the decision names the active policy, and the shadow's verdict is recorded beside it
    assert item["policy_version"] == "2026-12-02.2"
    shadow = item["shadow"]
    assert shadow["policy_version"] == "2026-11-23.2" and 0.0 <= shadow["risk"] <= 1.0
    assert shadow["differs"] == (shadow["action"] != item["action"] or shadow["escalate"] != item["escalate"])
    # AND the inputs are stored, so the decision can be replayed under either policy
    assert set(item["score_inputs"]) >= {"classifier", "matches", "provenance", "history"}
