"""Progressive enforcement over in-memory stores: what each action serves, how removal
keeps evidence before it deletes, how restore brings the copy back, and that every
transition survives a retry."""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from mediaguard.audit import chain as audit
from mediaguard.decisions.enforcement import (
    EnforcementError,
    EvidenceMismatchError,
    apply,
    reason_from_score,
    restore,
)
from mediaguard.decisions.events import DecisionEvent, EventDeliveryError
from mediaguard.models import ScoreResult, Signal
from mediaguard.ports import Deps, EnforcementPorts, StoredObject
from mediaguard.settings import Settings
from tests.fakes import Items

MEDIA_ID = "m1"
UPLOADS, MEDIA, EVIDENCE = "uploads-bucket", "media-bucket", "evidence-bucket"
SANITIZED = f"media/{MEDIA_ID}/sanitized.jpg"


# --- in-memory stores ---------------------------------------------------------------


class Buckets:
    """BlobStore + BlobCustody over dicts. Versioned buckets keep every version, like S3,
    each with its own id. Every delete is written to the shared journal so tests can order
    it against audits."""

    def __init__(self, journal: list, versioned: set[str]) -> None:
        self.objects: dict[tuple[str, str], list[tuple[bytes, str, str]]] = defaultdict(list)
        self.journal, self.versioned = journal, versioned
        self.copies = 0
        self.tags: dict[tuple[str, str], dict[str, str]] = {}
        self.crash_after_deletes: int | None = None  # crash once, after this many keys
        self._next_version = 0

    def _version(self, bucket, key, version_id=None):
        versions = self.objects.get((bucket, key)) or []
        if version_id is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v[2] == version_id), None)

    # BlobStore
    def get(self, bucket, key, version_id=None):
        data, content_type, _ = self._version(bucket, key, version_id)
        return data, content_type

    def put(self, bucket, key, data, content_type):
        versions = self.objects[(bucket, key)]
        if bucket not in self.versioned:
            versions.clear()
        self._next_version += 1
        versions.append((data, content_type, f"v{self._next_version}"))
        return versions[-1][2]

    def tag(self, bucket, key, tags, version_id=None):
        self.tags[(bucket, key)] = dict(tags)

    # BlobCustody
    def head(self, bucket, key, version_id=None):
        found = self._version(bucket, key, version_id)
        if found is None:
            return None
        data, content_type, vid = found
        return StoredObject(bucket, key, len(data), hashlib.sha256(data).hexdigest(), content_type, vid)

    def list(self, bucket, prefix):
        return sorted(k for (b, k), v in self.objects.items() if b == bucket and k.startswith(prefix) and v)

    def digest(self, bucket, key, version_id=None):
        head = self.head(bucket, key, version_id)
        return head.sha256 if head else None

    def copy(self, src_bucket, src_key, dst_bucket, dst_key, src_version_id=None):
        self.copies += 1
        data, content_type = self.get(src_bucket, src_key, src_version_id)
        vid = self.put(dst_bucket, dst_key, data, content_type)
        return self.head(dst_bucket, dst_key, vid)

    def _crash_point(self):
        if self.crash_after_deletes == 0:
            self.crash_after_deletes = None
            raise ConnectionError("simulated crash mid-delete")
        if self.crash_after_deletes is not None:
            self.crash_after_deletes -= 1

    def delete(self, bucket, keys):
        removed = 0
        for key in keys:
            self._crash_point()
            removed += len(self.objects.pop((bucket, key), []))
            self.journal.append(("delete", bucket, key))
        return removed

    def delete_version(self, bucket, key, version_id):
        self._crash_point()
        versions = self.objects.get((bucket, key), [])
        kept = [v for v in versions if v[2] != version_id]
        self.objects[(bucket, key)] = kept
        self.journal.append(("delete", bucket, key))
        return len(versions) - len(kept)

    def versions(self, bucket, key):
        return len(self.objects.get((bucket, key), []))




class Sink:
    def __init__(self, failures: int = 0) -> None:
        self.events: list[DecisionEvent] = []
        self.failures = failures

    def publish(self, event):
        if self.failures:
            self.failures -= 1
            raise EventDeliveryError("bus unavailable")
        self.events.append(event)


class Queue:
    def __init__(self) -> None:
        self.calls = []

    def enqueue(self, media_id, risk, reach, reason):
        self.calls.append((media_id, risk, reach, reason))


# --- the world an item is in after the pipeline --------------------------------------


def encode(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **{"quality": 90, **options})
    return buf.getvalue()


def detail_energy(data: bytes) -> float:
    """Mean absolute difference of neighbouring pixels: what a blur takes away."""
    gray = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)
    return float(np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean())


@pytest.fixture
def world(astronaut, media_bytes):
    journal: list = []
    buckets = Buckets(journal, versioned={UPLOADS, EVIDENCE})
    items = Items(journal)
    sink, queue = Sink(), Queue()
    original = encode(astronaut, exif=media_bytes.exif_with_gps())
    sanitized = encode(astronaut)
    buckets.put(UPLOADS, f"uploads/{MEDIA_ID}", original, "image/jpeg")
    buckets.put(MEDIA, SANITIZED, sanitized, "image/jpeg")
    buckets.put(MEDIA, f"media/{MEDIA_ID}/frames/00000.jpg", sanitized, "image/jpeg")
    items.update(MEDIA_ID, {
        "status": "sanitized", "upload_bucket": UPLOADS, "upload_key": f"uploads/{MEDIA_ID}",
        "sha256": hashlib.sha256(original).hexdigest(), "sanitized_key": SANITIZED,
        "sanitized_sha256": hashlib.sha256(sanitized).hexdigest(), "risk": 0.6, "policy_version": "2026-11-23.2",
    })
    settings = Settings(media_bucket=MEDIA, evidence_bucket=EVIDENCE)
    deps = Deps(settings=settings, blobs=buckets, items=items,
                enforcement=EnforcementPorts(custody=buckets, sinks=[sink], review=queue))

    class World:
        pass

    w = World()
    w.__dict__.update(journal=journal, buckets=buckets, items=items, sink=sink, queue=queue, deps=deps,
                      original=original, sanitized=sanitized)
    return w


def system(world, action, reason="classifier.nsfw", **context):
    return apply(MEDIA_ID, action, actor="system:enforce", reason=reason, context=context, deps=world.deps)


# --- each action ------------------------------------------------------------------------


def test_blur_serves_a_blurred_labelled_derivative(world):
    # GIVEN an item whose sanitized copy is a detailed photo
    # WHEN the pipeline blurs it
    decision = system(world, "blur")

    # THEN a derivative is served instead, with far less detail than the sanitized copy
    assert decision.served_key == decision.derivative_key == f"media/{MEDIA_ID}/blurred.jpg"
    blurred, content_type = world.buckets.get(MEDIA, decision.served_key)
    assert content_type == "image/jpeg"
    assert detail_energy(blurred) < 0.25 * detail_energy(world.sanitized)
    # AND it carries the sensitive-content label, on the item and in the event
    item = world.items.get(MEDIA_ID)
    assert item["served_key"] == decision.served_key and item["action"] == "blur"
    assert item["enforcement"]["decision"]["label"] == {"category": "sensitive", "text": "Sensitive content"}
    assert [e.label for e in world.sink.events] == ["sensitive"]


def test_only_what_the_current_decision_serves_is_tagged_for_the_edge(world):
    def served(key):
        return world.buckets.tags.get((MEDIA, key), {}).get("mediaguard-served")

    # GIVEN an item the pipeline allowed: its sanitized copy is served, and tagged so
    system(world, "allow", reason="policy.no_signal")
    assert served(SANITIZED) == "true"
    # WHEN a reviewer blurs it
    decision = system(world, "blur")
    # THEN the edge may read only the blurred derivative, no longer the sanitized copy
    assert (served(decision.derivative_key), served(SANITIZED)) == ("true", "false")
    # AND a hold for review leaves nothing the edge may read
    system(world, "review", reason="classifier.nsfw")
    assert served(decision.derivative_key) == "false"


@pytest.mark.parametrize(("action", "reason", "label", "distribution"), [
    ("label", "provenance.ai_generated", "ai_generated", "normal"),
    ("label", "classifier.nsfw", "sensitive", "normal"),
    ("limit", "classifier.nsfw", None, "limited"),
    ("allow", "policy.no_signal", None, "normal"),
])
def test_serving_actions_keep_the_sanitized_copy_with_their_label_and_distribution(world, action, reason, label,
                                                                                     distribution):
    # WHEN the pipeline decides a serving action
    decision = system(world, action, reason=reason)

    # THEN the sanitized copy is served, with the label and the distribution flag the action implies
    assert decision.served_key == SANITIZED and decision.derivative_key is None
    assert (decision.label.category if decision.label else None) == label
    assert decision.distribution == distribution
    [event] = world.sink.events
    assert (event.action, event.label, event.distribution) == (action, label, distribution)


def test_a_caller_supplied_label_wins_over_the_default(world):
    decision = system(world, "label", label={"category": "satire", "text": "Satire"})

    assert decision.label.model_dump() == {"category": "satire", "text": "Satire"}
    assert world.sink.events[0].label == "satire"


def test_review_queues_the_item_once_and_serves_nothing(world):
    # WHEN the pipeline sends an item to review, twice (a Step Functions retry)
    first = system(world, "review", reason="policy.threshold", risk=0.9, reach=15000)
    second = system(world, "review", reason="policy.threshold", risk=0.9, reach=15000)

    # THEN nothing is served, the queue got it once with risk, reach and reason
    assert first.served_key is None and first.distribution == "withheld"
    assert world.queue.calls == [(MEDIA_ID, 0.9, 15000, "policy.threshold")]
    assert second.changed is False and second.decision_id == first.decision_id
    # AND the sanitized copy stays where a reviewer can look at it
    assert world.buckets.head(MEDIA, SANITIZED) is not None


def test_video_blur_uses_the_poster_frame(world, astronaut):
    # GIVEN a video item: the sanitized copy is not an image, the first frame is
    world.items.update(MEDIA_ID, {"media_type": "video", "sanitized_key": f"media/{MEDIA_ID}/sanitized.mp4"})
    world.buckets.put(MEDIA, f"media/{MEDIA_ID}/sanitized.mp4", b"\x00\x00\x00\x18ftypmp42 video bytes", "video/mp4")
    poster = f"media/{MEDIA_ID}/frames/00000.jpg"

    # WHEN it is blurred without a poster, THEN enforcement refuses rather than guess
    with pytest.raises(EnforcementError) as refused:
        system(world, "blur")
    assert refused.value.reason == "poster_required"

    # WHEN it is blurred with the poster frame, THEN the derivative is the blurred poster
    decision = system(world, "blur", poster_key=poster)
    blurred, _ = world.buckets.get(MEDIA, decision.derivative_key)
    assert detail_energy(blurred) < 0.25 * detail_energy(world.buckets.get(MEDIA, poster)[0])


# --- removal and restore ---------------------------------------------------------------


def test_remove_and_restore_act_on_the_pinned_upload_version_not_a_later_one(world):
    # GIVEN an item whose scan pinned the upload's first version, and a later version of the
    # key (a reused upload form) that the start stage refused
    key = f"uploads/{MEDIA_ID}"
    pinned = world.buckets.head(UPLOADS, key).version_id
    swapped = world.buckets.put(UPLOADS, key, b"unscanned bytes", "image/jpeg")
    world.items.update(MEDIA_ID, {"upload_version_id": pinned, "replaced_versions": {swapped}})

    # WHEN the item is removed
    apply(MEDIA_ID, "remove", actor="reviewer:rev-7", reason="ncii", deps=world.deps)

    # THEN the evidence original is the scanned version, verified against the recorded sha256
    item = world.items.get(MEDIA_ID)
    evidence = {e["role"]: e for e in item["enforcement"]["evidence"]}
    assert world.buckets.get(EVIDENCE, evidence["original"]["evidence_key"])[0] == world.original
    assert evidence["original"]["source_version_id"] == pinned
    # AND only that version left the upload bucket; the refused one is kept, and the chain says so
    assert world.buckets.head(UPLOADS, key, pinned) is None
    assert world.buckets.get(UPLOADS, key, swapped)[0] == b"unscanned bytes"
    preserved = next(r for r in world.items.chains[MEDIA_ID] if r.event == "evidence_preserved")
    assert preserved.detail["refused_versions_kept"] == [swapped]
    assert next(e for e in preserved.detail["evidence"] if e["role"] == "original")["version_id"] == pinned

    # WHEN the evidence key later gets another version, and the removal is overturned
    world.buckets.put(EVIDENCE, evidence["sanitized"]["evidence_key"], b"not what was preserved", "image/jpeg")
    restore(MEDIA_ID, actor="reviewer:rev-9", reason="reviewer_error", deps=world.deps)

    # THEN the sanitized copy comes back from the evidence version that was verified at removal
    assert world.buckets.get(MEDIA, SANITIZED)[0] == world.sanitized


def test_remove_preserves_verified_evidence_before_deleting_anything(world):
    # WHEN a reviewer removes the item
    decision = apply(MEDIA_ID, "remove", actor="reviewer:rev-7", reason="ncii", deps=world.deps)

    # THEN the original and the sanitized copy are in the evidence store, hashing to what ingestion recorded
    item = world.items.get(MEDIA_ID)
    evidence = {e["role"]: e for e in item["enforcement"]["evidence"]}
    assert evidence["original"]["sha256"] == hashlib.sha256(world.original).hexdigest()
    assert world.buckets.get(EVIDENCE, evidence["original"]["evidence_key"])[0] == world.original
    assert world.buckets.get(EVIDENCE, evidence["sanitized"]["evidence_key"])[0] == world.sanitized
    # AND nothing is left to serve or undelete: every version of the upload, everything under media/<id>/
    assert world.buckets.versions(UPLOADS, f"uploads/{MEDIA_ID}") == 0
    assert world.buckets.list(MEDIA, f"media/{MEDIA_ID}/") == []
    assert decision.served_key is None and item.get("served_key") is None and decision.distribution == "removed"
    # AND the audit record naming each object came before the first delete
    first_delete = next(i for i, entry in enumerate(world.journal) if entry[0] == "delete")
    assert world.journal.index(("audit", "evidence_preserved")) < first_delete
    preserved = next(r for r in world.items.chains[MEDIA_ID] if r.event == "evidence_preserved")
    assert set(preserved.detail["to_delete"]) == {f"uploads/{MEDIA_ID}", SANITIZED,
                                                  f"media/{MEDIA_ID}/frames/00000.jpg"}
    assert world.items.events(MEDIA_ID) == ["evidence_preserved", "enforced"]
    assert audit.verify(world.items.chains[MEDIA_ID]) == []


def test_remove_deletes_nothing_when_the_evidence_does_not_match_what_was_ingested(world):
    # GIVEN the upload key was overwritten after ingestion (a second POST to the same key)
    world.buckets.put(UPLOADS, f"uploads/{MEDIA_ID}", b"different bytes", "image/jpeg")

    # WHEN the item is removed
    with pytest.raises(EvidenceMismatchError):
        system(world, "remove", reason="bank.block")

    # THEN nothing was deleted and no decision was audited
    assert not [entry for entry in world.journal if entry[0] == "delete"]
    assert world.buckets.head(MEDIA, SANITIZED) is not None
    assert world.items.events(MEDIA_ID) == []
    assert world.sink.events == []


def test_remove_resumes_after_a_crash_without_copying_or_auditing_twice(world):
    # GIVEN the first attempt dies after the evidence was preserved and one object deleted
    world.buckets.crash_after_deletes = 1
    with pytest.raises(ConnectionError):
        system(world, "remove", reason="bank.block")
    assert world.buckets.versions(UPLOADS, f"uploads/{MEDIA_ID}") == 0  # the one delete that happened
    assert world.buckets.head(MEDIA, SANITIZED) is not None
    copies_before_retry = world.buckets.copies

    # WHEN Step Functions retries the stage
    decision = system(world, "remove", reason="bank.block")

    # THEN it finishes the deletions without copying again, under the same decision id
    assert world.buckets.copies == copies_before_retry
    assert world.buckets.list(MEDIA, f"media/{MEDIA_ID}/") == []
    assert world.buckets.versions(UPLOADS, f"uploads/{MEDIA_ID}") == 0
    assert world.items.events(MEDIA_ID) == ["evidence_preserved", "enforced"]
    assert [e.decision_id for e in world.sink.events] == [decision.decision_id]
    assert world.items.get(MEDIA_ID)["enforcement"]["decision"]["state"] == "emitted"


def test_restore_brings_back_the_sanitized_copy_byte_for_byte(world):
    # GIVEN a removed item
    removed = system(world, "remove", reason="bank.block")

    # WHEN a senior reviewer overturns it on appeal
    restored = restore(MEDIA_ID, actor="reviewer:senior-2", reason="reviewer_error", deps=world.deps)

    # THEN the sanitized copy is served again, identical to the one removed
    assert restored.action == "allow" and restored.served_key == SANITIZED
    assert world.buckets.get(MEDIA, SANITIZED)[0] == world.sanitized
    # AND the original stays in evidence, not back in the upload bucket
    assert world.buckets.versions(UPLOADS, f"uploads/{MEDIA_ID}") == 0
    assert world.buckets.get(EVIDENCE, f"evidence/{MEDIA_ID}/original")[0] == world.original
    # AND the chain and the platform learn that it was an overturn of the removal
    last = world.items.chains[MEDIA_ID][-1]
    assert last.event == "restored" and last.actor == "reviewer:senior-2" and last.detail["restored"] == [SANITIZED]
    event = world.sink.events[-1]
    assert (event.action, event.previous_action, event.overturned, event.actor_kind) == (
        "allow", "remove", True, "reviewer")
    assert event.decision_id != removed.decision_id
    assert audit.verify(world.items.chains[MEDIA_ID]) == []


def test_blur_after_restore_regenerates_the_derivative_removal_deleted(world):
    system(world, "blur")
    system(world, "remove", reason="bank.block")
    assert world.buckets.head(MEDIA, f"media/{MEDIA_ID}/blurred.jpg") is None

    decision = restore(MEDIA_ID, actor="reviewer:senior-2", reason="new_context", action="blur", deps=world.deps)

    assert decision.served_key == f"media/{MEDIA_ID}/blurred.jpg"
    assert world.buckets.head(MEDIA, decision.served_key) is not None


def test_an_expired_original_is_recorded_missing_and_the_served_copy_still_withdrawn(world):
    # GIVEN the upload bucket's lifecycle already expired the original
    world.buckets.delete(UPLOADS, [f"uploads/{MEDIA_ID}"])

    decision = system(world, "remove", reason="bank.block")

    evidence = {e["role"]: e for e in world.items.get(MEDIA_ID)["enforcement"]["evidence"]}
    assert evidence["original"]["state"] == "missing"
    assert evidence["sanitized"]["state"] == "preserved"
    assert world.buckets.list(MEDIA, f"media/{MEDIA_ID}/") == [] and decision.served_key is None


# --- idempotency and events ------------------------------------------------------------


def test_repeating_a_completed_decision_changes_nothing(world):
    first = system(world, "blur")
    chain_length = len(world.items.chains[MEDIA_ID])

    again = system(world, "blur")

    assert again.changed is False and again.decision_id == first.decision_id
    assert len(world.items.chains[MEDIA_ID]) == chain_length
    assert len(world.sink.events) == 1


def test_a_failed_event_is_sent_again_on_retry_under_the_same_decision_id(world):
    # GIVEN the bus refuses the first event
    world.sink.failures = 1
    with pytest.raises(EventDeliveryError):
        system(world, "limit")

    # WHEN the stage is retried
    decision = system(world, "limit")

    # THEN the event goes out with the original decision id, and the decision was audited once
    assert [e.decision_id for e in world.sink.events] == [decision.decision_id]
    assert world.items.events(MEDIA_ID) == ["enforced"]


def test_previous_action_is_the_one_in_force(world):
    system(world, "label", reason="provenance.ai_generated")
    system(world, "limit")
    decision = apply(MEDIA_ID, "allow", actor="reviewer:rev-1", reason="no_violation", deps=world.deps)

    assert [(e.previous_action, e.action) for e in world.sink.events] == [
        (None, "label"), ("label", "limit"), ("limit", "allow")]
    assert decision.served_key == SANITIZED


def test_events_carry_codes_never_keys_urls_or_reviewer_ids(world):
    apply(MEDIA_ID, "remove", actor="reviewer:alice@example.org", reason="ncii",
          context={"note": "uploader's ex-partner, phone 555-0100"}, deps=world.deps)

    [event] = world.sink.events
    body = event.model_dump_json()
    assert set(event.model_dump()) == {"schema_version", "decision_id", "media_id", "action", "previous_action",
                                       "actor_kind", "policy_version", "risk", "reason", "label", "distribution",
                                       "overturned", "decided_at"}
    for leak in ("alice", "555-0100", "media/", "uploads/", "evidence/", "http", EVIDENCE):
        assert leak not in body
    assert event.actor_kind == "reviewer" and event.reason == "ncii" and event.risk == 0.6
    # AND the reviewer's free-text note is not written to the audit chain by enforcement either
    assert "555-0100" not in json.dumps([r.detail for r in world.items.chains[MEDIA_ID]])


@pytest.mark.parametrize(("actor", "reason"), [
    ("system:enforce", "the uploader is my neighbour"),  # free text, not a code
    ("alice", "ncii"),  # no actor kind
    ("admin:root", "ncii"),  # unknown actor kind
])
def test_bad_actor_or_reason_is_refused_before_any_side_effect(world, actor, reason):
    with pytest.raises(ValueError):
        apply(MEDIA_ID, "remove", actor=actor, reason=reason, deps=world.deps)

    assert world.journal == [] and world.sink.events == []
    assert "enforcement" not in world.items.get(MEDIA_ID)


def test_missing_wiring_and_unknown_items_are_reported_with_reasons(world):
    unwired = Deps(settings=world.deps.settings, blobs=world.buckets, items=world.items)
    with pytest.raises(EnforcementError) as no_ports:
        apply(MEDIA_ID, "allow", actor="system:enforce", reason="policy.no_signal", deps=unwired)
    assert no_ports.value.reason == "misconfigured"

    with pytest.raises(EnforcementError) as unknown:
        apply("nope", "allow", actor="system:enforce", reason="policy.no_signal", deps=world.deps)
    assert unknown.value.reason == "item_not_found"


@pytest.mark.parametrize(("override", "signals", "expected"), [
    ("bank.block match => remove", [("classifier.nsfw", 0.1)], "bank.block"),
    ("bank action => remove", [], "bank.action"),
    (None, [("classifier.nsfw", 0.4), ("provenance.ai_generated", 0.35)], "classifier.nsfw"),
    (None, [("classifier.nsfw", 0.1), ("provenance.ai_generated", 0.35)], "provenance.ai_generated"),
    (None, [("classifier.nsfw", 0.0)], "policy.no_signal"),
])
def test_reason_from_score_names_what_decided(override, signals, expected):
    score = ScoreResult(risk=0.5, action="label", policy_version="2026-11-23.2", override=override,
                        signals=[Signal(name=n, value=c, contribution=c) for n, c in signals])

    assert reason_from_score(score) == expected
