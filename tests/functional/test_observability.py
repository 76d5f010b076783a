"""Metrics and quality sampling on the local stack (issue 13 #1, #3): the EMF lines the
real handlers print while an upload runs through the real state machine, the queue levels
the SLA function reports, and a sampled decision re-decided blind in the ``qa`` lane."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from mediaguard import wiring
from mediaguard.decisions.review.models import DecisionRequest
from mediaguard.decisions.review.quality import qa_outcomes
from mediaguard.decisions.review.queue import qa_sampled
from mediaguard.decisions.review.roles import Caller
from mediaguard.local.runtime import LocalCloud
from tests.conftest import jpeg_bytes, load_event, photo

# Every dimension a metric may carry: low-cardinality by design, never an id.
DIMENSIONS = {"stage", "action", "reason", "media_type", "bank_kind", "signal", "lane", "outcome", "agree", "status",
              "service"}
ALICE = Caller("alice", frozenset({"reviewer"}))


def emf(out: str) -> list[dict]:
    """(name, value, unit, dimensions) of every EMF line in captured stdout."""
    metrics = []
    for line in out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                dims = {d: doc[d] for d in directive["Dimensions"][0]} if directive["Dimensions"] else {}
                metrics.append({"namespace": directive["Namespace"], "name": metric["Name"], "unit": metric["Unit"],
                                "value": doc[metric["Name"]], "dims": dims})
    return metrics


@pytest.fixture(scope="module")
def cloud():
    """The shared stack turns quality sampling off; this module tests it at the template's
    default rate."""
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local


@pytest.fixture
def metrics_on(monkeypatch):
    # The shared stack runs at LogLevel WARNING, where local mode keeps handlers' EMF
    # lines off stdout (LocalCloud's ``metrics``); this is the switch it sets.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def test_a_pipeline_run_prints_emf_metrics_by_stage_and_action_without_ids(cloud, capsys, metrics_on):
    # GIVEN a still image uploaded to the local stack
    capsys.readouterr()
    media_id = cloud.upload(jpeg_bytes(photo("chelsea")), "image/jpeg", media_id="obs-" + "1" * 12)
    # WHEN it runs through every stage
    assert cloud.wait(media_id).status == "SUCCEEDED"
    out = capsys.readouterr().out
    metrics = emf(out)
    # THEN every line is in the one namespace, with only low-cardinality dimensions
    assert metrics and {m["namespace"] for m in metrics} == {"mediaguard"}
    assert set().union(*(m["dims"] for m in metrics)) <= DIMENSIONS
    assert media_id not in "\n".join(line for line in out.splitlines() if line.startswith('{"_aws"'))
    # AND each stage that ran reported its duration in milliseconds
    durations = {m["dims"]["stage"]: m for m in metrics if m["name"] == "StageDuration"}
    assert {"start", "sanitize", "classify", "similarity", "score", "enforce"} <= set(durations)
    assert all(m["unit"] == "Milliseconds" and m["value"] > 0 for m in durations.values())
    # AND the decision is counted once, by the action now on the item
    decisions = [m for m in metrics if m["name"] == "Decisions"]
    assert [(m["dims"], m["value"]) for m in decisions] == [({"action": cloud.item(media_id)["action"]}, 1.0)]
    # AND the upload by its media type
    assert [m["dims"] for m in metrics if m["name"] == "Uploads"] == [{"media_type": "image"}]


def test_a_rejected_upload_is_counted_by_its_reason(cloud, capsys, metrics_on):
    # GIVEN bytes that are no image at all
    capsys.readouterr()
    media_id = cloud.upload(b"%PDF-1.4 not media", "image/jpeg")
    # WHEN the pipeline runs and the Catch routes it to the failure stage
    cloud.wait(media_id)
    rejections = [m for m in emf(capsys.readouterr().out) if m["name"] == "Rejections"]
    # THEN one rejection is counted, under the reason stored on the item
    assert [m["dims"] for m in rejections] == [{"reason": cloud.item(media_id)["error_reason"]}]


def test_the_sla_function_reports_depth_and_age_of_every_lane(cloud, capsys, metrics_on):
    # GIVEN the review queue as the pipeline left it
    queue = wiring.task_queue()
    expected = {level.lane: level.depth for level in queue.levels()}
    capsys.readouterr()
    # WHEN the scheduled SLA function runs
    result = cloud.invoke("SlaFunction", load_event("sla"))
    metrics = emf(capsys.readouterr().out)
    # THEN it reports each lane's depth and oldest age, and the breaches it escalated
    depth = {m["dims"]["lane"]: m["value"] for m in metrics if m["name"] == "ReviewQueueDepth"}
    assert depth == {lane: float(n) for lane, n in expected.items()}
    assert {m["dims"]["lane"] for m in metrics if m["name"] == "ReviewQueueOldestAge"} == set(expected)
    breaches = [m for m in metrics if m["name"] == "SlaBreaches"]
    assert [m["value"] for m in breaches] == [float(result["escalated"])]


def _media_id(sampled: bool) -> str:
    """An id the template's default rate (0.02) does or does not pick: sampling is a hash."""
    rate = float(wiring.task_queue().settings.qa_sample_rate)
    return next(f"qa-{i:06d}" for i in itertools.count() if qa_sampled(f"qa-{i:06d}", rate) == sampled)


def test_a_sampled_automated_decision_is_re_decided_blind_and_its_agreement_stored(cloud, capsys, metrics_on):
    # GIVEN the template's default sampling rate and an id it picks, and one it does not
    assert wiring.task_queue().settings.qa_sample_rate == 0.02
    picked, skipped = _media_id(True), _media_id(False)
    capsys.readouterr()
    # WHEN both run through the pipeline (a photo nothing flags: the automated action is allow)
    for media_id in (picked, skipped):
        cloud.wait(cloud.upload(jpeg_bytes(photo("coffee")), "image/jpeg", media_id=media_id))
    automated = cloud.item(picked)["action"]
    assert automated == "allow"
    service = wiring.review_service()
    # THEN only the picked one waits in the qa lane, and the listing hides the automated action
    page = service.queue(ALICE, "qa", 50)
    assert [t.media_id for t in page.items if t.media_id in (picked, skipped)] == [picked]
    assert all(t.action is None for t in page.items)
    assert [m["dims"] for m in emf(capsys.readouterr().out) if m["name"] == "QaSampled"] == [{"action": "allow"}]
    # AND the reviewer's view of it tells nothing of the decision
    view = service.item_view(ALICE, picked)
    assert (view.action, view.proposed_action, view.risk, view.signals, view.matches) == (None, None, None, [], [])
    assert view.task.action is None and view.media is not None and view.media.source == "sample"
    assert not {"scored", "enforced"} & {e.event for e in view.audit.events}
    # WHEN the reviewer approves it
    service.claim(ALICE, picked)
    service.decide(ALICE, picked, DecisionRequest(action="approve", reason_code="no_violation"))
    # THEN agreement is stored for the report, and nothing was enforced again
    now = datetime.now(UTC)
    outcomes = [o for o in qa_outcomes(service.tasks, now - timedelta(hours=1), now + timedelta(minutes=1))
                if o.media_id == picked]
    assert [(o.automated_action, o.reviewer_action, o.agree) for o in outcomes] == [("allow", "allow", True)]
    events = [r.event for r in cloud.deps().items.audit_chain(picked)]
    assert events[-1] == "qa_decided" and events.count("enforced") == 1
    assert cloud.item(picked)["action"] == "allow"
