"""Human review on DynamoDB (moto): queue order, lanes, SLA escalation, claims, decisions
and the appeal rules, through the domain service and the real table adapters. (Moved from
tests/unit/test_review.py unchanged; the pure rules stay there.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from mediaguard.audit.chain import verify
from mediaguard.decisions.review.appeals import AppealDecisionRequest, AppealRequest
from mediaguard.decisions.review.models import DecisionRequest
from mediaguard.decisions.review.queue import TaskQueue, shard_of
from mediaguard.decisions.review.roles import Caller
from mediaguard.decisions.review.service import ReviewService
from mediaguard.decisions.review.settings import ReviewSettings
from mediaguard.errors import ConflictError, ForbiddenError, NotFoundError
from mediaguard.ports import Deps
from mediaguard.settings import Settings
from tests.fakes import Clock

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ALICE = Caller("alice", frozenset({"reviewer"}))
BOB = Caller("bob", frozenset({"reviewer"}))
SENIOR = Caller("sam", frozenset({"senior-reviewer"}))
SENIOR_2 = Caller("sue", frozenset({"senior-reviewer"}))
UPLOADER = Caller("user-0001")


@dataclass
class RecordingEnforcer:
    """Stands in for mediaguard.decisions.enforcement at the port: records calls, can be made to fail."""

    calls: list[tuple] = field(default_factory=list)
    fail: bool = False

    def apply(self, media_id, action, *, actor, reason, context, deps):
        if self.fail:
            raise RuntimeError("enforcement unavailable")
        self.calls.append(("apply", media_id, action, actor, reason))
        deps.items.update(media_id, {"action": action})

    def restore(self, media_id, *, actor, reason, deps):
        if self.fail:
            raise RuntimeError("enforcement unavailable")
        self.calls.append(("restore", media_id, actor, reason))
        deps.items.update(media_id, {"action": "allow"})


@dataclass
class World:
    service: ReviewService
    queue: TaskQueue
    enforcer: RecordingEnforcer
    clock: Clock
    deps: Deps


@pytest.fixture(scope="module")
def aws():
    """One in-process moto for the module (starting moto and boto3 clients is the slow part)."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(key, value)
        with mock_aws():
            import boto3
            from botocore.config import Config

            s3 = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
            s3.create_bucket(Bucket="media-bucket")
            yield s3


@pytest.fixture
def world(aws):
    """Fresh tables per test, the real DynamoDB adapters, a controllable clock."""
    from mediaguard.adapters import aws as adapters_aws
    from mediaguard.adapters import review as adapters
    from mediaguard.adapters import tables
    from mediaguard.adapters.history import DynamoHistory, HistoryItem
    from mediaguard.decisions.history import Pseudonymiser

    settings = Settings(media_table="media", audit_table="audit", audit_head_table="audit-heads",
                        media_bucket="media-bucket")
    rsettings = ReviewSettings(review_table="review", appeals_table="appeals", queue_shards=4)
    items = adapters_aws.DynamoItemStore(settings)
    tasks = adapters.DynamoTaskStore(rsettings, settings)
    appeals = adapters.DynamoAppealStore(rsettings, settings)
    clock, enforcer = Clock(T0), RecordingEnforcer()
    history = DynamoHistory("history", "us-east-1", Pseudonymiser("unit-test-uploader-key"), clock=clock)
    models = (tables.MediaItem, tables.AuditItem, tables.AuditHead, adapters.ReviewTaskItem, adapters.AppealItem,
              HistoryItem)
    for model in models:
        model.create_table(wait=True)
    deps = Deps(settings=settings, blobs=adapters_aws.S3BlobStore(aws), items=items)
    service = ReviewService(deps=deps, tasks=tasks, appeals=appeals, signer=adapters.S3UrlSigner(aws),
                                   enforcer=enforcer, settings=rsettings, history=history, clock=clock)
    yield World(service, TaskQueue(tasks, items, rsettings, clock=clock), enforcer, clock, deps)
    for model in models:
        model.delete_table()


def scored_item(w: World, media_id: str, *, risk: float = 0.9, reach: int = 0, uploader: str = "user-0001",
                action: str = "review") -> None:
    """An item as the pipeline leaves it before review: the upload grant in its own chain,
    the scores on the item, and the task in the queue."""
    w.deps.items.append_audit(f"upload:{media_id}", f"client:{uploader}", "upload_granted",
                              {"key": f"uploads/{media_id}", "reach": reach})
    w.deps.items.update(media_id, {"status": "done", "action": action, "risk": risk,
                                   "sanitized_key": f"media/{media_id}/sanitized.jpg"})
    if action == "review":
        w.queue.enqueue(media_id, risk, reach, "policy:review", action=action)


def decided_by(w: World, media_id: str, reviewer: Caller, action: str = "remove", reason: str = "ncii") -> None:
    w.service.claim(reviewer, media_id)
    w.service.decide(reviewer, media_id, DecisionRequest(action=action, reason_code=reason))


def events(w: World, media_id: str) -> list[str]:
    return [r.event for r in w.deps.items.audit_chain(media_id)]


# --- the queue ------------------------------------------------------------------------------------


def test_queue_lists_each_lane_highest_priority_first_across_shards(world):
    # GIVEN items of different risk and reach, spread over four shards
    cases = {"low-reach-high-risk": (0.97, 10), "famous": (0.92, 2_000_000), "nobody": (0.93, 0),
             "mid": (0.86, 5_000), "small": (0.86, 50), "tie-old": (0.88, 0)}
    for media_id, (risk, reach) in cases.items():
        scored_item(world, media_id, risk=risk, reach=reach)
        world.clock.advance(seconds=1)
    scored_item(world, "tie-new", risk=0.88, reach=0)
    assert len({shard_of(m, 4) for m in [*cases, "tie-new"]}) > 1
    # WHEN reviewers list the lanes
    fast = world.service.queue(ALICE, "fast", 10).items
    normal = world.service.queue(ALICE, "normal", 10).items
    # THEN risk >= 0.9 is fast, the rest normal, each ordered by risk x (1 + log10(1 + reach))
    assert [t.media_id for t in fast] == ["famous", "low-reach-high-risk", "nobody"]
    # and equal priorities keep their arrival order
    assert [t.media_id for t in normal] == ["mid", "small", "tie-old", "tie-new"]
    assert [t.priority for t in fast] == sorted((t.priority for t in fast), reverse=True)
    # AND the limit cuts the merged list, not each shard
    assert [t.media_id for t in world.service.queue(ALICE, "normal", 2).items] == ["mid", "small"]


def test_listing_and_the_sla_sweep_are_index_queries_never_scans(world, monkeypatch):
    import botocore.client

    for i in range(6):
        scored_item(world, f"m{i}", risk=0.95)
    calls = []
    original = botocore.client.BaseClient._make_api_call

    def spy(client, operation, params):
        if params.get("TableName") == "review":
            calls.append((operation, params.get("IndexName"), params.get("Limit")))
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    world.service.queue(ALICE, "fast", 3)
    # One Query per shard on the queue index, each asking for no more than the page
    assert calls == [("Query", "queue", 3)] * 4
    calls.clear()
    world.clock.advance(hours=2)
    world.queue.escalate_overdue()
    # Reads of the review table: Queries of the due index (one per shard and lane) and the
    # GetItem of each task it escalates
    assert {c[:2] for c in calls if c[0] in ("Query", "Scan")} == {("Query", "due")}
    assert len([c for c in calls if c[0] == "Query"]) == 2 * 4


def test_lanes_have_their_own_deadlines_and_enqueueing_twice_is_a_no_op(world):
    scored_item(world, "hot", risk=0.95)
    scored_item(world, "warm", risk=0.86)
    hot, warm = world.service.tasks.get("hot"), world.service.tasks.get("warm")
    assert (hot.lane, hot.due_at) == ("fast", T0 + timedelta(hours=1))
    assert (warm.lane, warm.due_at) == ("normal", T0 + timedelta(hours=24))
    # WHEN a retried enforce stage enqueues the same item again, later
    world.clock.advance(minutes=30)
    again = world.queue.enqueue("hot", 0.95, 0, "policy:review")
    # THEN the task and its deadline are unchanged and the chain has one enqueue record
    assert again.due_at == hot.due_at
    assert events(world, "hot").count("review_enqueued") == 1
    # AND once decided, a new enqueue (a rescan) opens a new review
    decided_by(world, "hot", ALICE)
    reopened = world.queue.enqueue("hot", 0.95, 0, "bank.block")
    assert (reopened.state, reopened.reason, reopened.decided_by) == ("queued", "bank.block", None)
    assert [t.media_id for t in world.service.queue(ALICE, "fast", 5).items] == ["hot"]


# --- claims and decisions -----------------------------------------------------------------------------


def test_only_one_reviewer_holds_a_task_until_the_lease_runs_out(world):
    scored_item(world, "m1")
    claimed = world.service.claim(ALICE, "m1")
    assert (claimed.state, claimed.claimed_by) == ("claimed", "alice")
    assert claimed.lease_until == T0 + timedelta(minutes=15)
    # Bob cannot take it while Alice's lease runs
    with pytest.raises(ConflictError) as taken:
        world.service.claim(BOB, "m1")
    assert taken.value.reason == "claimed"
    # and cannot decide it either
    with pytest.raises(ConflictError) as refused:
        world.service.decide(BOB, "m1", DecisionRequest(action="remove", reason_code="ncii"))
    assert refused.value.reason == "not_claimed"
    # Once the lease has passed, Bob can claim it, and Alice's late decision is refused
    world.clock.advance(minutes=16)
    assert world.service.claim(BOB, "m1").claimed_by == "bob"
    with pytest.raises(ConflictError):
        world.service.decide(ALICE, "m1", DecisionRequest(action="approve", reason_code="no_violation"))
    assert world.enforcer.calls == []


def test_a_decision_enforces_audits_and_takes_the_task_out_of_the_queue(world):
    scored_item(world, "m1", risk=0.95)
    world.service.claim(ALICE, "m1")
    decision = world.service.decide(ALICE, "m1", DecisionRequest(action="remove", reason_code="ncii",
                                                                 note="matches victim report"))
    assert (decision.enforced_action, decision.decided_by) == ("remove", "alice")
    assert world.enforcer.calls == [("apply", "m1", "remove", "reviewer:alice", "ncii")]
    assert world.service.queue(ALICE, "fast", 10).items == []
    record = world.deps.items.audit_chain("m1")[-1]
    assert (record.event, record.actor, record.detail["reason_code"]) == ("review_decided", "reviewer:alice", "ncii")
    # A second decision on the same task is a conflict, not a second enforcement
    with pytest.raises(ConflictError) as again:
        world.service.decide(ALICE, "m1", DecisionRequest(action="approve", reason_code="no_violation"))
    assert again.value.reason == "already_decided"
    assert len(world.enforcer.calls) == 1


def test_a_failed_enforcement_leaves_the_task_claimed_for_a_retry(world):
    scored_item(world, "m1")
    world.service.claim(ALICE, "m1")
    world.enforcer.fail = True
    with pytest.raises(RuntimeError):
        world.service.decide(ALICE, "m1", DecisionRequest(action="blur", reason_code="sexual_content"))
    task = world.service.tasks.get("m1")
    assert (task.state, task.claimed_by, task.decided_by) == ("claimed", "alice", None)
    assert [t.media_id for t in world.service.queue(ALICE, "fast", 5).items] == ["m1"]
    assert "review_decided" not in events(world, "m1")
    world.enforcer.fail = False
    assert world.service.decide(ALICE, "m1", DecisionRequest(action="blur", reason_code="sexual_content")).action == "blur"


# --- SLA and escalation ----------------------------------------------------------------------------------


def test_the_sla_sweep_escalates_overdue_tasks_once_and_only_seniors_see_them(world):
    scored_item(world, "hot", risk=0.95)
    scored_item(world, "warm", risk=0.86)
    scored_item(world, "done", risk=0.95)
    decided_by(world, "done", ALICE)
    world.service.claim(BOB, "hot")
    # WHEN the sweep runs before the fast deadline, nothing moves
    world.clock.advance(minutes=59)
    assert world.queue.escalate_overdue() == []
    # WHEN it runs after the fast deadline (but before the normal one)
    world.clock.advance(minutes=2)
    assert world.queue.escalate_overdue() == ["hot"]
    # THEN the overdue task is in the escalated lane, Bob's claim dropped, and audited
    hot = world.service.tasks.get("hot")
    assert (hot.lane, hot.state, hot.escalated, hot.claimed_by) == ("escalated", "queued", True, None)
    assert world.deps.items.audit_chain("hot")[-1].actor == "system:sla"
    assert world.queue.escalate_overdue() == []  # a second sweep finds nothing new
    # AND only senior reviewers can list, claim or decide it
    with pytest.raises(ForbiddenError):
        world.service.queue(BOB, "escalated", 10)
    with pytest.raises(ForbiddenError):
        world.service.claim(BOB, "hot")
    with pytest.raises(ForbiddenError):
        world.service.decide(BOB, "hot", DecisionRequest(action="remove", reason_code="ncii"))
    assert [t.media_id for t in world.service.queue(SENIOR, "escalated", 10).items] == ["hot"]
    decided_by(world, "hot", SENIOR)
    # AND the normal task escalates only after its own 24 h
    world.clock.advance(hours=23)
    assert world.queue.escalate_overdue() == ["warm"]


def test_a_reviewer_can_escalate_a_claimed_task_by_hand(world):
    scored_item(world, "m1", risk=0.86)
    world.service.claim(ALICE, "m1")
    decision = world.service.decide(ALICE, "m1", DecisionRequest(action="escalate", reason_code="minor_safety"))
    assert (decision.lane, decision.enforced_action) == ("escalated", None)
    assert world.enforcer.calls == []  # escalating changes who decides, not the item
    assert [t.media_id for t in world.service.queue(SENIOR, "escalated", 5).items] == ["m1"]
    assert "review_escalated" in events(world, "m1")


# --- appeals -----------------------------------------------------------------------------------------------


def test_the_reviewer_who_decided_cannot_decide_the_appeal(world):
    scored_item(world, "m1")
    decided_by(world, "m1", SENIOR)  # a senior reviewer made the original decision
    appeal = world.service.open_appeal(UPLOADER, "m1", AppealRequest(statement="This is me, I posted it myself."))
    overturn = AppealDecisionRequest(outcome="overturn", reason_code="consent_verified")
    # WHEN the same senior tries to decide the appeal
    with pytest.raises(ForbiddenError) as own:
        world.service.decide_appeal(SENIOR, appeal.appeal_id, overturn)
    # THEN it is refused and nothing was restored
    assert own.value.reason == "own_decision"
    assert world.service.appeals.get(appeal.appeal_id).state == "open"
    assert [c[0] for c in world.enforcer.calls] == ["apply"]
    # AND a different senior can; the item is restored and a second outcome is a conflict
    assert world.service.history.snapshot("user-0001").strikes == 1  # the removal was a strike
    decided = world.service.decide_appeal(SENIOR_2, appeal.appeal_id, overturn)
    assert (decided.state, decided.outcome, decided.handled_by) == ("decided", "overturn", "sue")
    assert world.enforcer.calls[-1] == ("restore", "m1", "reviewer:sue", "consent_verified")
    # and the overturn withdrew the strike
    assert world.service.history.snapshot("user-0001").strikes == 0
    assert world.deps.items.audit_chain("m1")[-1].detail["strike_removed"] is True
    with pytest.raises(ConflictError):
        world.service.decide_appeal(SENIOR_2, appeal.appeal_id,
                                    AppealDecisionRequest(outcome="uphold", reason_code="decision_correct"))
    chain = world.deps.items.audit_chain("m1")
    assert [r.event for r in chain][-2:] == ["appeal_opened", "appeal_decided"]
    assert verify(chain) == []


def test_only_the_uploader_appeals_once_and_only_a_decided_restriction(world):
    scored_item(world, "m1")
    statement = AppealRequest(statement="Please look again.")
    # Pending review: nothing to appeal yet
    with pytest.raises(ConflictError) as pending:
        world.service.open_appeal(UPLOADER, "m1", statement)
    assert pending.value.reason == "review_pending"
    decided_by(world, "m1", ALICE)
    # Someone else's item looks like no item at all
    with pytest.raises(NotFoundError):
        world.service.open_appeal(Caller("user-0002"), "m1", statement)
    receipt = world.service.open_appeal(UPLOADER, "m1", statement)
    assert receipt.appeal_id == "ap-m1" and receipt.state == "open"
    with pytest.raises(ConflictError) as twice:
        world.service.open_appeal(UPLOADER, "m1", statement)
    assert twice.value.reason == "already_appealed"
    # The chain keeps a hash of the statement, never its words
    opened = next(r for r in world.deps.items.audit_chain("m1") if r.event == "appeal_opened")
    assert "Please look again." not in str(opened.detail) and opened.detail["statement_chars"] == 18
    # An approved (allowed) item has nothing to appeal
    scored_item(world, "m2")
    decided_by(world, "m2", ALICE, action="approve", reason="no_violation")
    with pytest.raises(ConflictError) as allowed:
        world.service.open_appeal(UPLOADER, "m2", statement)
    assert allowed.value.reason == "nothing_to_appeal"


def test_an_automated_removal_can_be_appealed_and_any_senior_decides_it(world):
    scored_item(world, "m1", action="remove")  # a block-bank match: removed without review
    receipt = world.service.open_appeal(UPLOADER, "m1", AppealRequest(statement="Wrong match."))
    listed = world.service.list_appeals(SENIOR, "open", 10).items
    assert [(a.appeal_id, a.original_decider) for a in listed] == [(receipt.appeal_id, "system")]
    assert not hasattr(listed[0], "uploader")  # seniors see the statement, not the person's id
    with pytest.raises(ForbiddenError):
        world.service.list_appeals(ALICE, "open", 10)  # appeals are for senior reviewers
    upheld = world.service.decide_appeal(SENIOR, receipt.appeal_id,
                                         AppealDecisionRequest(outcome="uphold", reason_code="decision_correct"))
    assert upheld.outcome == "uphold" and world.enforcer.calls == []
    assert world.service.list_appeals(SENIOR, "open", 10).items == []


def test_a_failed_restore_reopens_the_appeal(world):
    scored_item(world, "m1", action="remove")
    receipt = world.service.open_appeal(UPLOADER, "m1", AppealRequest(statement="Wrong match."))
    world.enforcer.fail = True
    with pytest.raises(RuntimeError):
        world.service.decide_appeal(SENIOR, receipt.appeal_id,
                                    AppealDecisionRequest(outcome="overturn", reason_code="automation_error"))
    assert world.service.appeals.get(receipt.appeal_id).state == "open"
    assert "appeal_decided" not in events(world, "m1")


# --- item view --------------------------------------------------------------------------------------------------


def test_the_item_view_links_only_the_sanitized_copy_and_audits_the_look(world):
    scored_item(world, "m1")
    scored_item(world, "m0", uploader="user-0001")
    decided_by(world, "m0", BOB)  # an earlier removal of the same uploader's item
    view = world.service.item_view(ALICE, "m1")
    assert view.uploader_history["strikes"] == 1 and "user-0001" not in view.model_dump_json()
    assert "media/m1/sanitized.jpg" in view.media.url and "uploads/" not in view.media.url
    assert view.media.expires_in == 300 and "X-Amz-Expires=300" in view.media.url
    assert view.task.state == "queued" and view.audit.verified
    assert view.audit.events[-1].event == "media_opened" and view.audit.events[-1].actor == "reviewer:alice"
    with pytest.raises(ForbiddenError):
        world.service.item_view(UPLOADER, "m1")
    with pytest.raises(NotFoundError):
        world.service.item_view(ALICE, "nope")


def test_the_item_view_shows_the_similar_banked_items_with_signal_and_similarity(world):
    # GIVEN an item the pipeline matched to two banked items: one by PDQ, one by CLIP embedding only
    scored_item(world, "m2")
    world.deps.items.update("m2", {"matches": [
        {"bank": "ncii", "kind": "block", "ref": "case-7", "signal": "clip", "distance": 0.0812, "action": None},
        {"bank": "deepfakes", "kind": "flag", "ref": "df-3", "signal": "pdq", "distance": 12, "action": None},
    ]})
    # WHEN a reviewer opens it
    view = world.service.item_view(ALICE, "m2")
    # THEN both banked items are listed with bank, ref, signal and a 0..1 similarity
    shown = [(m.bank, m.ref, m.signal, m.similarity) for m in view.matches]
    assert shown == [("ncii", "case-7", "clip", pytest.approx(0.9188)), ("deepfakes", "df-3", "pdq", 0.9531)]



def test_a_match_on_a_banked_video_shows_its_entry_its_kind_and_its_poster(world):
    # GIVEN a video the platform holds, banked by an admin as frame entries v1#0 and v1#1,
    # and a copy of it whose match names the group v1 (as the matcher reports a video)
    world.deps.items.update("v1", {"status": "done", "action": "allow", "media_type": "video",
                                   "sanitized_key": "media/v1/sanitized.mp4", "poster_key": "media/v1/poster.jpg"})
    facts = {"status": "active", "source": "item:v1", "added_by": "admin:root", "added_at": T0,
             "confirmed_by": None, "confirmed_at": None}
    entries = {("held-videos", f"v1#{n}"): SimpleNamespace(**facts) for n in range(2)}
    asked = []
    world.service.bank_entries = lambda keys: asked.append(keys) or {k: entries[k] for k in keys if k in entries}
    scored_item(world, "v2")
    world.deps.items.update("v2", {"media_type": "video", "matches": [
        {"bank": "held-videos", "kind": "flag", "ref": "v1", "signal": "vpdq", "distance": 8, "action": None}]})
    # WHEN a reviewer opens the copy
    (match,) = world.service.item_view(ALICE, "v2").matches
    # THEN the match carries the entry's facts (one lookup for the group and its first part)
    assert asked == [[("held-videos", "v1"), ("held-videos", "v1#0")]]
    assert (match.entry.status, match.entry.added_by, match.entry.source_media_id) == ("active", "admin:root", "v1")
    # AND the banked copy is linked as a video, with its poster frame
    assert match.entry.source_media_type == "video"
    assert "sanitized.mp4" in match.entry.source_media.url and "poster.jpg" in match.entry.source_poster.url

# --- quality sampling (issue 13 #3) ----------------------------------------------------------------


def sampling(w: World, rate: float) -> TaskQueue:
    """The pipeline's queue over the same tables, with quality sampling at ``rate``."""
    return TaskQueue(w.queue.tasks, w.deps.items, ReviewSettings(review_table="review", appeals_table="appeals",
                                                                 queue_shards=4, qa_sample_rate=rate),
                     clock=w.clock)


def test_at_rate_one_an_allow_goes_to_the_qa_lane_once_and_review_is_never_sampled(world):
    # GIVEN sampling at 1.0 and two automated decisions: an allow and a review
    queue = sampling(world, 1.0)
    scored_item(world, "a1", risk=0.1, action="allow")
    world.deps.items.update("a1", {"proposed_action": "allow", "signals": [
        {"name": "classifier.nsfw", "value": 0.1, "contribution": 0.1}]})
    scored_item(world, "r1", risk=0.9, action="review")
    # WHEN enforcement offers both to quality sampling, the allow twice (a retried stage)
    first = queue.sample_for_qa("a1", "allow")
    again = queue.sample_for_qa("a1", "allow")
    # THEN the allow waits in the qa lane with its automated action kept, sampled once
    assert (first.lane, first.action, again.enqueued_at) == ("qa", "allow", first.enqueued_at)
    assert events(world, "a1").count("qa_sampled") == 1
    # AND the item queued for review is not sampled (people see it anyway)
    assert queue.sample_for_qa("r1", "review") is None and world.service.tasks.get("r1").lane != "qa"
    # AND at rate 0 nothing is
    assert sampling(world, 0.0).sample_for_qa("a2", "allow") is None


def test_a_redriven_run_whose_allow_is_sampled_replaces_the_withdrawn_failure_task(world):
    # GIVEN a failed run's task in the queue, withdrawn when an admin re-drives the item
    queue = sampling(world, 1.0)
    scored_item(world, "f1", risk=0.1, action="allow")
    queue.enqueue("f1", risk=0.1, reach=None, reason="failed:internal_error")
    assert queue.withdraw_failure("f1", "admin:root-admin", "f1-r1")
    # WHEN the new run allows it and quality sampling picks that allow
    sample = queue.sample_for_qa("f1", "allow")
    # THEN the item's one task is now the blind sample of the new decision (a decided task
    # gives way to a new one, as a rescan's does); the withdrawal stays in the audit chain
    assert sample is not None and world.service.tasks.get("f1").lane == "qa"
    assert world.service.tasks.get("f1").state == "queued"
    assert [e for e in events(world, "f1") if e in ("review_withdrawn", "qa_sampled")] == [
        "review_withdrawn", "qa_sampled"]


def test_a_qa_reviewer_sees_the_item_blind_and_agreement_is_recorded_without_enforcing(world):
    # GIVEN a sampled allow with scores, a policy and a bank match on the item
    scored_item(world, "a1", risk=0.42, action="allow")
    world.deps.items.update("a1", {"proposed_action": "allow", "policy_version": "p1", "matches": [
        {"bank": "ncii", "kind": "flag", "ref": "case-1", "signal": "pdq", "distance": 40}],
        "signals": [{"name": "classifier.nsfw", "value": 0.42, "contribution": 0.42}]})
    sampling(world, 1.0).sample_for_qa("a1", "allow")
    # WHEN a reviewer lists the qa lane and opens the item
    listed = world.service.queue(ALICE, "qa", 10).items
    view = world.service.item_view(ALICE, "a1")
    # THEN nothing tells the automated action: no action, score, contributions, policy or matches
    assert [(t.media_id, t.action) for t in listed] == [("a1", None)]
    assert (view.action, view.proposed_action, view.risk, view.policy_version) == (None, None, None, None)
    assert (view.signals, view.matches, view.uploader_history, view.task.action) == ([], [], None, None)
    assert view.media.source == "sample"
    # WHEN the reviewer approves it
    decided_by(world, "a1", ALICE, action="approve", reason="no_violation")
    # THEN agreement is stored, and nothing was enforced
    task = world.service.tasks.get("a1")
    assert (task.decision_action, task.agree, world.enforcer.calls) == ("approve", True, [])
    record = world.deps.items.audit_chain("a1")[-1]
    assert (record.event, record.detail["automated_action"], record.detail["reviewer_action"],
            record.detail["agree"]) == ("qa_decided", "allow", "allow", True)



def test_a_sampled_video_is_seen_blind_as_a_video_with_its_frames_and_track(world):
    # GIVEN a sampled allow of a video with an audio track and a poster frame
    scored_item(world, "v1", risk=0.2, action="allow")
    world.deps.items.update("v1", {"media_type": "video", "sanitized_key": "media/v1/sanitized.mp4",
                                   "poster_key": "media/v1/poster.jpg", "signal_frames": {"nsfw": 3},
                                   "frames": {"count": 8, "method": "scene", "truncated": False},
                                   "audio": {"present": True, "codec": "aac", "duration_s": 4.0}})
    sampling(world, 1.0).sample_for_qa("v1", "allow")
    # WHEN a reviewer opens it
    view = world.service.item_view(ALICE, "v1")
    # THEN the console can play it as a video (it showed a broken image before) with its track
    assert (view.media_type, view.frames["count"], view.audio["codec"]) == ("video", 8, "aac")
    # AND neither the poster (linked only while live) nor the frame behind a score is shown
    assert (view.poster, view.signal_frames, view.risk) == (None, None, None)

def test_a_qa_removal_of_an_allowed_item_enforces_it_and_counts_as_a_miss(world):
    from mediaguard.decisions.review.quality import qa_outcomes

    # GIVEN two sampled decisions: an allow and a label
    queue = sampling(world, 1.0)
    for media_id, action in (("a1", "allow"), ("l1", "label")):
        scored_item(world, media_id, risk=0.3, action=action)
        queue.sample_for_qa(media_id, action)
    # WHEN the reviewer removes the allowed one and labels the labelled one
    decided_by(world, "a1", ALICE, action="remove", reason="ncii")
    world.clock.tick(5)
    decided_by(world, "l1", ALICE, action="label", reason="graphic_violence")
    # THEN only the removal was enforced (a person found what automation let through)
    assert [(c[0], c[1], c[2]) for c in world.enforcer.calls] == [("apply", "a1", "remove")]
    # AND the report reads both outcomes: a disagreement (a miss) and an agreement
    outcomes = qa_outcomes(world.service.tasks, T0, T0 + timedelta(hours=1))
    assert [(o.media_id, o.automated_action, o.reviewer_action, o.agree) for o in outcomes] == [
        ("a1", "allow", "remove", False), ("l1", "label", "label", True)]
    assert qa_outcomes(world.service.tasks, T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == []


def test_an_open_quality_sample_blocks_neither_an_appeal_nor_a_real_review(world):
    # GIVEN an automated removal sampled for quality review (the sample still open)
    queue = sampling(world, 1.0)
    scored_item(world, "q1", risk=0.3, action="remove")
    queue.sample_for_qa("q1", "remove")
    # WHEN the uploader appeals
    receipt = world.service.open_appeal(UPLOADER, "q1", AppealRequest(statement="Wrong match."))
    # THEN the appeal opens (the sample is not a review of their case)
    assert receipt.state == "open"
    # GIVEN another sampled item that a rescan sends to review
    scored_item(world, "q2", risk=0.3, action="allow")
    queue.sample_for_qa("q2", "allow")
    # WHEN the pipeline enqueues the real review, twice (a retried stage)
    task = queue.enqueue("q2", 0.95, 0, "policy:review")
    again = queue.enqueue("q2", 0.95, 0, "policy:review")
    # THEN the real review replaces the sample, once, and the chain says the sample was superseded
    stored = world.service.tasks.get("q2")
    assert (stored.lane, stored.reason, task.lane, again.enqueued_at) == ("fast", "policy:review", "fast",
                                                                         stored.enqueued_at)
    assert events(world, "q2")[-2:] == ["qa_superseded", "review_enqueued"]
    # AND a later sample never overwrites the open real review
    queue.sample_for_qa("q2", "allow")
    assert world.service.tasks.get("q2").reason == "policy:review"


def test_search_and_the_decided_list_show_an_open_quality_sample_blind(world):
    # GIVEN an allowed item with a risk, sampled for quality review
    scored_item(world, "a1", risk=0.42, action="allow")
    sampling(world, 1.0).sample_for_qa("a1", "allow")
    # WHEN a reviewer searches for it by id and by its action
    by_id = world.service.search(ALICE, media_id="a1").items
    by_action = world.service.search(ALICE, action="allow").items
    # THEN neither the action nor the risk shows, and the action filter does not find it
    assert [(h.media_id, h.action, h.risk, h.decision_action) for h in by_id] == [("a1", None, None, None)]
    assert by_action == []


def test_the_days_decisions_are_sharded_over_chains_and_listed_newest_first(world):
    from mediaguard.decisions.review.service import DECISION_SHARDS, decisions_chain

    # GIVEN three items decided one minute apart, whose ids fall in different shards
    ids = ["d1", "d2", "d3"]
    assert len({shard_of(m, DECISION_SHARDS) for m in ids}) > 1
    for media_id in ids:
        scored_item(world, media_id)
        decided_by(world, media_id, ALICE)
        world.clock.tick(60)
    # WHEN the day's decisions are listed
    day = T0.date().isoformat()
    listed = world.service.decided(ALICE, day).items
    # THEN all three come back newest first, from more than one chain (no single hot key)
    assert [h.media_id for h in listed] == ["d3", "d2", "d1"]
    chains = {s for s in range(DECISION_SHARDS) if world.deps.items.audit_chain(decisions_chain(day, s))}
    assert len(chains) > 1
