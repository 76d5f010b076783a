"""Tamper evidence of the per-item audit hash chains, their head pointers and the digests."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from mediaguard.audit.chain import (
    DIGEST_CHAIN,
    GENESIS,
    STALE_AFTER,
    Anchor,
    ArchivedDigest,
    AuditRecord,
    ChainState,
    Change,
    Head,
    TrailSnapshot,
    changes_from_stream,
    changes_key,
    decode_changes,
    decode_digest,
    digest_key,
    encode_changes,
    encode_digest,
    heads_root,
    next_digest,
    next_record,
    record_hash,
    verify,
    verify_digests,
    verify_trail,
)

CHAIN = "media-7f3a"
EVENTS = [
    ("system:start", "received", {"key": "uploads/media-7f3a"}),
    ("system:sanitize", "sanitized", {"removed": ["exif", "xmp"], "pdq": "2d6b1af3"}),
    ("system:classify", "classified", {"nsfw": 0.12, "model": "opennsfw2"}),
    ("system:score", "scored", {"risk": 0.096, "action": "allow", "policy": "2026-11-23.1"}),
    ("moderator:42", "appeal-upheld", {"note": "verified original", "action": "allow"}),
]


def build(chain: str = CHAIN, events=EVENTS) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for second, (actor, event, detail) in enumerate(events):
        last = records[-1] if records else None
        records.append(next_record(chain, last, f"2026-11-23T10:00:0{second}Z", actor, event, detail))
    return records


@pytest.fixture
def chain() -> list[AuditRecord]:
    """Five records built the way the audit store builds them."""
    return build()


def head_of(records: list[AuditRecord]) -> Head:
    return Head(records[-1].seq, records[-1].hash)


def kinds_at(findings, seq) -> set[str]:
    return {f.kind for f in findings if f.seq == seq}


def rehashed(rec: AuditRecord, **changes) -> AuditRecord:
    """A forger's edit: change fields and recompute the record's own hash."""
    r = dataclasses.replace(rec, **changes)
    return dataclasses.replace(r, hash=record_hash(r.chain, r.seq, r.at, r.actor, r.event, r.detail, r.prev_hash))


# --- one chain -----------------------------------------------------------------------------


def test_a_chain_built_with_next_record_verifies(chain):
    assert [r.seq for r in chain] == [0, 1, 2, 3, 4]
    assert chain[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:], strict=False))
    assert verify(chain, head=head_of(chain), anchors=[Anchor(0, 4, chain[4].hash)]) == []


def test_an_empty_chain_has_nothing_to_report():
    assert verify([]) == []


def test_next_record_continues_from_a_head_pointer_as_from_the_record(chain):
    from_record = next_record(CHAIN, chain[-1], "t", "a", "e", {})
    from_head = next_record(CHAIN, head_of(chain), "t", "a", "e", {})
    assert from_record == from_head and from_head.seq == 5 and from_head.prev_hash == chain[-1].hash


def test_editing_a_record_is_reported_at_that_record(chain):
    # GIVEN a chain whose third record's detail was changed after the fact
    chain[2] = dataclasses.replace(chain[2], detail={**chain[2].detail, "nsfw": 0.99})
    # WHEN it is verified
    problems = verify(chain, head=head_of(chain))
    # THEN exactly that record is reported, as edited
    assert [(p.chain, p.seq, p.kind) for p in problems] == [(CHAIN, 2, "edited")]
    assert str(problems[0]).startswith(f"{CHAIN}#2: edited:")


def test_editing_a_record_and_rehashing_it_is_caught_by_the_next(chain):
    # GIVEN a forger who edits record 2 and recomputes its hash so it looks self-consistent
    chain[2] = rehashed(chain[2], detail={**chain[2].detail, "nsfw": 0.99})
    # WHEN verified THEN the break is reported where it shows: record 3 no longer follows 2
    problems = verify(chain)
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]
    assert "does not follow #2" in problems[0].message


@pytest.mark.parametrize("field", ["at", "actor", "event", "prev_hash"])
def test_editing_any_field_is_detected(chain, field):
    chain[1] = dataclasses.replace(chain[1], **{field: "tampered"})
    assert kinds_at(verify(chain), 1) == {"edited"}


def test_deleting_a_middle_record_is_reported_as_deleted_and_nothing_else(chain):
    # GIVEN a chain with its middle record (seq 2) deleted
    del chain[2]
    # WHEN verified
    problems = verify(chain, head=head_of(chain))
    # THEN the gap at seq 2 is the one finding (record 3 cannot be checked against a record that is gone)
    assert [(p.seq, p.kind) for p in problems] == [(2, "deleted")]


def test_deleting_the_newest_record_is_caught_by_the_head_pointer(chain):
    # GIVEN a chain whose last record (the appeal decision) was deleted, head pointer untouched
    head = head_of(chain)
    # WHEN verified against the head pointer
    problems = verify(chain[:-1], head=head)
    # THEN the deleted record is named
    assert [(p.seq, p.kind) for p in problems] == [(4, "deleted")]
    assert "head pointer says #4" in problems[0].message


def test_without_a_head_or_digest_a_truncated_chain_cannot_be_told_from_a_short_one(chain):
    # The reason head pointers and digests exist: the chain alone verifies after truncation.
    assert verify(chain[:-2]) == []


def test_deleting_the_newest_records_and_the_head_is_caught_by_a_digest(chain):
    # GIVEN records 3 and 4 deleted and the head pointer rewritten to match what is left
    truncated = chain[:3]
    # WHEN verified against a digest that anchored the chain at #4
    problems = verify(truncated, head=head_of(truncated), anchors=[Anchor(7, 4, chain[4].hash)])
    # THEN both deletions are named, with the digest that proves them
    assert [(p.seq, p.kind) for p in problems] == [(3, "deleted"), (4, "deleted")]
    assert all("digest 7" in p.message for p in problems)


def test_deleting_the_first_record_is_reported(chain):
    assert kinds_at(verify(chain[1:]), 0) == {"deleted"}


def test_swapping_two_records_in_a_list_is_reported_as_reordered(chain):
    # GIVEN a chain whose records 1 and 3 changed places in the list
    chain[1], chain[3] = chain[3], chain[1]
    # WHEN verified
    problems = verify(chain)
    # THEN both displaced records are reported as reordered
    assert [(p.seq, p.kind) for p in problems] == [(1, "reordered"), (3, "reordered")]


def test_swapping_the_contents_of_two_seqs_is_reported_as_reordered(chain):
    # GIVEN what a swap looks like in a table keyed by seq: the bodies of #1 and #3 traded places
    swapped = list(chain)
    swapped[1] = dataclasses.replace(chain[3], seq=1)
    swapped[3] = dataclasses.replace(chain[1], seq=3)
    # WHEN verified
    problems = verify(swapped, head=head_of(chain))
    # THEN each position is named with the record it really holds, and nothing else
    assert [(p.seq, p.kind, p.message) for p in problems] == [
        (1, "reordered", "holds the record written as #3"),
        (3, "reordered", "holds the record written as #1"),
    ]


def test_a_record_from_another_chain_does_not_fit(chain):
    other = next_record("media-other", None, "2026-11-23T10:00:00Z", *EVENTS[0])
    chain[0] = other
    problems = verify(chain, chain=CHAIN)
    assert [(p.seq, p.kind) for p in problems] == [(0, "edited")]
    assert "media-other" in problems[0].message


def test_a_record_beyond_the_head_pointer_is_reported_as_inserted(chain):
    # GIVEN a well-formed record appended behind the store's back (the head was not moved)
    head = head_of(chain)
    chain.append(next_record(CHAIN, chain[-1], "2026-11-23T10:00:09Z", "moderator:7", "appeal-denied", {}))
    # WHEN verified THEN it is named as inserted
    assert [(p.seq, p.kind) for p in verify(chain, head=head)] == [(5, "inserted")]


def test_a_chain_rewritten_consistently_is_caught_by_its_digest(chain):
    # GIVEN a forger who rewrote record 1 and rehashed every record after it, head pointer included
    rewritten = chain[:1]
    for rec in chain[1:]:
        detail = {**rec.detail, "action": "allow"} if rec.seq == 1 else rec.detail
        rewritten.append(rehashed(rec, detail=detail, prev_hash=rewritten[-1].hash))
    assert verify(rewritten, head=head_of(rewritten)) == []  # self-consistent
    # WHEN verified against the digests that anchored the original at #1 and at #4
    anchors = [Anchor(2, 1, chain[1].hash), Anchor(5, 4, chain[4].hash)]
    problems = verify(rewritten, head=head_of(rewritten), anchors=anchors)
    # THEN the first anchored record that differs is named, with its digest
    assert (1, "edited") in [(p.seq, p.kind) for p in problems]
    assert all(p.kind == "edited" for p in problems)
    assert "digest 2" in next(p for p in problems if p.seq == 1).message


def test_deleting_a_whole_chain_is_reported_once(chain):
    problems = verify([], anchors=[Anchor(3, 4, chain[4].hash)], chain=CHAIN)
    assert [(p.chain, p.seq, p.kind) for p in problems] == [(CHAIN, None, "deleted")]
    assert "whole chain" in problems[0].message and "digest 3" in problems[0].message


def test_records_newer_than_the_last_digest_are_noted_not_failed(chain):
    # GIVEN a digest that anchored the chain at #2, and two records appended since
    problems = verify(chain, head=head_of(chain), anchors=[Anchor(1, 2, chain[2].hash)])
    # THEN they are reported as unanchored, which is informational
    assert [(p.seq, p.kind, p.failing) for p in problems] == [(3, "unanchored", False)]
    assert "#3..#4" in problems[0].message


def test_record_hash_is_stable_for_dict_key_order():
    # GIVEN the same detail built in two different key orders, nested dicts included
    one = {"risk": 0.5, "action": "blur", "signals": {"b": 1, "a": 2}, "removed": ["exif", "xmp"]}
    two = {"removed": ["exif", "xmp"], "signals": {"a": 2, "b": 1}, "action": "blur", "risk": 0.5}
    args = (CHAIN, 3, "2026-11-23T10:00:03Z", "system:score", "scored")
    # THEN they hash the same, so a store that reorders JSON keys cannot break the chain
    assert record_hash(*args, one, GENESIS) == record_hash(*args, two, GENESIS)


def test_record_hash_commits_to_every_field():
    base = dict(chain=CHAIN, seq=1, at="t", actor="a", event="e", detail={"k": 1}, prev_hash=GENESIS)
    reference = record_hash(**base)
    variants = {
        "chain": "media-other",
        "seq": 2,
        "at": "t2",
        "actor": "a2",
        "event": "e2",
        "detail": {"k": 2},
        "prev_hash": "f" * 64,
    }
    for name, value in variants.items():
        assert record_hash(**{**base, name: value}) != reference, name
    assert len(reference) == 64 and set(reference) <= set("0123456789abcdef")


# --- digests -------------------------------------------------------------------------------


def digests_for(*head_sets: dict[str, Head]):
    """A digest chain over the given head sets, as the digest job writes it."""
    out, last = [], None
    for i, heads in enumerate(head_sets):
        digest = next_digest(last, f"2026-11-23T10:0{i}:00Z", heads)
        out.append(digest)
        last = digest.record
    return out


def archived(digests, lock="COMPLIANCE") -> list[ArchivedDigest]:
    return [ArchivedDigest(d.key, encode_digest(d), lock) for d in digests]


def table_copy(digests) -> ChainState:
    records = [d.record for d in digests]
    return ChainState(records, head_of(records) if records else None)


def test_heads_root_ignores_order_and_commits_to_every_head():
    a = {"m1": Head(3, "a" * 64), "m2": Head(0, "b" * 64)}
    assert heads_root(a) == heads_root(dict(reversed(list(a.items()))))
    assert heads_root(a) != heads_root({**a, "m2": Head(1, "b" * 64)})
    assert heads_root(a) != heads_root({"m1": a["m1"]})


def test_a_digest_round_trips_through_its_archived_form():
    (digest,) = digests_for({"m1": Head(4, "c" * 64)})
    assert decode_digest(encode_digest(digest)) == digest
    assert digest.key == digest_key(0) == "digests/000000000000.json"
    assert digest.record.chain == DIGEST_CHAIN and digest.record.detail["chains"] == 1


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"format": "mediaguard.audit.digest/1", "record": {}}'])
def test_decode_refuses_what_is_not_a_digest(body):
    with pytest.raises(ValueError):
        decode_digest(body)


def test_sound_digests_verify_and_yield_anchors_per_chain():
    digests = digests_for({"m1": Head(1, "a" * 64)}, {"m1": Head(4, "b" * 64), "m2": Head(0, "c" * 64)})
    findings, anchors, sound = verify_digests(archived(digests), table_copy(digests))
    assert findings == []
    assert anchors == {"m1": [Anchor(0, 1, "a" * 64), Anchor(1, 4, "b" * 64)], "m2": [Anchor(1, 0, "c" * 64)]}
    assert [d.seq for d in sound] == [0, 1]


def test_an_archived_digest_with_altered_heads_is_edited_and_anchors_nothing():
    # GIVEN an unlocked archive in which digest 1's heads were changed after the fact
    digests = digests_for({"m1": Head(1, "a" * 64)}, {"m1": Head(4, "b" * 64)})
    objects = archived(digests, lock=None)
    body = json.loads(objects[1].body)
    body["heads"]["m1"] = [2, "d" * 64]
    objects[1] = dataclasses.replace(objects[1], body=json.dumps(body).encode())
    # WHEN verified
    findings, anchors, _ = verify_digests(objects, table_copy(digests))
    # THEN the digest is edited (and both objects unlocked), and its heads anchor nothing
    assert {(f.seq, f.kind) for f in findings} == {(0, "unlocked"), (1, "unlocked"), (1, "edited")}
    assert anchors == {"m1": [Anchor(0, 1, "a" * 64)]}


def test_a_version_written_over_an_archived_digest_is_reported():
    digests = digests_for({"m1": Head(1, "a" * 64)})
    objects = [dataclasses.replace(archived(digests)[0], later_versions=2)]
    findings, anchors, _ = verify_digests(objects, table_copy(digests))
    assert [(f.seq, f.kind) for f in findings] == [(0, "overwritten")]
    assert anchors["m1"] == [Anchor(0, 1, "a" * 64)]  # the original still anchors


def test_the_table_copy_of_the_digest_chain_is_checked_against_the_archive():
    digests = digests_for({"m1": Head(1, "a" * 64)}, {"m1": Head(2, "b" * 64)}, {"m2": Head(0, "c" * 64)})
    # GIVEN a table copy whose digest 1 was rewritten (and rehashed) and whose newest digest was deleted
    records = [d.record for d in digests]
    forged = rehashed(records[1], detail={"root": "0" * 64, "chains": 1})
    table = ChainState([records[0], forged], Head(2, records[2].hash))
    # WHEN verified
    findings, _, _ = verify_digests(archived(digests), table)
    found = {(f.seq, f.kind) for f in findings}
    # THEN the rewrite and the deletion are both named, against the table copy
    assert (1, "edited") in found and (2, "deleted") in found
    assert all(f.chain == DIGEST_CHAIN and f.message.startswith("table copy") for f in findings)


def test_a_digest_in_the_table_but_not_in_the_archive_is_inserted():
    digests = digests_for({"m1": Head(1, "a" * 64)}, {"m1": Head(2, "b" * 64)})
    findings, _, _ = verify_digests(archived(digests[:1]), table_copy(digests))
    assert [(f.seq, f.kind) for f in findings] == [(1, "inserted")]


# --- the whole trail ----------------------------------------------------------------------


def snapshot_of(chains: dict[str, list[AuditRecord]], digests, only=None) -> TrailSnapshot:
    states = {name: ChainState(records, head_of(records)) for name, records in chains.items()}
    return TrailSnapshot(states, table_copy(digests), archived(digests), only=only)


def test_a_clean_trail_verifies_and_notes_what_is_not_anchored_yet():
    one, two = build("media-1"), build("media-2", EVENTS[:2])
    digests = digests_for({"media-1": head_of(one)})
    report = verify_trail(snapshot_of({"media-1": one, "media-2": two}, digests))
    assert report.ok and report.problems == []
    assert (report.chains, report.records, report.digests) == (2, 7, 1)
    assert [(f.chain, f.kind) for f in report.findings] == [("media-2", "unanchored")]
    assert report.latest_digest == {"seq": 0, "at": "2026-11-23T10:00:00Z"}
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_a_chain_deleted_with_its_head_after_a_digest_is_named():
    one, two = build("media-1"), build("media-2")
    digests = digests_for({"media-1": head_of(one), "media-2": head_of(two)})
    # GIVEN media-2's records and head pointer deleted from the table
    report = verify_trail(snapshot_of({"media-1": one}, digests))
    # THEN the trail fails, naming the whole chain
    assert not report.ok
    assert [(f.chain, f.seq, f.kind) for f in report.problems] == [("media-2", None, "deleted")]


def test_a_missing_head_pointer_is_a_problem():
    one = build("media-1")
    snapshot = TrailSnapshot({"media-1": ChainState(one, None)}, ChainState([], None), [])
    report = verify_trail(snapshot)
    assert [(f.chain, f.seq, f.kind) for f in report.problems] == [("media-1", None, "deleted")]
    assert "head pointer missing" in report.problems[0].message


def test_verifying_one_chain_ignores_the_others_but_not_the_digests():
    one, two = build("media-1"), build("media-2")
    two[1] = dataclasses.replace(two[1], event="tampered")
    digests = digests_for({"media-1": head_of(one), "media-2": head_of(two)})
    report = verify_trail(snapshot_of({"media-1": one, "media-2": two}, digests, only="media-1"))
    assert report.ok and report.checked == ["media-1"]
    assert not verify_trail(snapshot_of({"media-1": one, "media-2": two}, digests, only="media-2")).ok


# --- forged records outside #0..head (issue 14, defect 8) ----------------------------------------


def forged_before_genesis(chain: str, actor: str, event: str, detail: dict) -> AuditRecord:
    """A record someone with PutItem on the table writes at seq -1, hashing correctly."""
    at = "2026-11-23T09:59:59Z"
    return AuditRecord(chain, -1, at, actor, event, detail, GENESIS,
                       record_hash(chain, -1, at, actor, event, detail, GENESIS))


def test_a_record_before_the_first_one_fails_verification(chain):
    # GIVEN a genuine chain and a well-hashed record forged at seq -1
    forged = forged_before_genesis(CHAIN, "system:start", "received", {"key": "uploads/other"})
    # WHEN it is verified with and without its head pointer
    for head in (None, head_of(chain)):
        findings = verify([forged, *chain], head=head, chain=CHAIN)
        # THEN the forged record is reported as inserted, and nothing else is wrong
        assert kinds_at(findings, -1) == {"inserted"}
        assert [f for f in findings if f.seq != -1] == []


def test_trusted_records_stop_at_the_first_problem_and_ignore_forged_ones(chain):
    from mediaguard.audit.chain import trusted

    forged = forged_before_genesis(CHAIN, "client:mallory", "upload_granted", {"reach": 1})
    # GIVEN a chain with a forged record before #0 and record #3 edited in place
    edited = dataclasses.replace(chain[3], detail={"risk": 0.0, "action": "allow"})
    records = [forged, *chain[:3], edited, chain[4]]
    # WHEN a reader asks which records it may act on
    usable = trusted(records, CHAIN)
    # THEN it gets #0..#2 only: never the forged one, nothing from the edit on
    assert [r.seq for r in usable] == [0, 1, 2]


def test_a_grant_forged_before_the_real_one_does_not_change_the_uploader():
    from mediaguard.ingress.grant import client_actor, facts_from_chain, grant_chain

    chain = grant_chain("m1")
    # GIVEN the real grant to alice at #0 and a forged grant to mallory at #-1
    real = next_record(chain, None, "2026-11-23T10:00:00Z", client_actor("alice"), "upload_granted", {"reach": 10})
    forged = forged_before_genesis(chain, client_actor("mallory"), "upload_granted", {"reach": 1})
    # WHEN the grant's facts are read from the chain as the store returns it (seq order)
    facts = facts_from_chain([forged, real], "m1")
    # THEN alice is the uploader
    assert (facts.uploader, facts.reach) == ("alice", 10)


# --- records written after the last digest (issue 14, defect 9) ---------------------------------

WRITTEN = datetime(2026, 11, 23, 10, 0, 4, tzinfo=UTC)  # the newest record of build()


def change_log(*changes: Change) -> list[ArchivedDigest]:
    return [ArchivedDigest(changes_key(list(changes)), encode_changes(list(changes)), "COMPLIANCE")]


def stream_record(event: str, chain: str, seq: int, old: str | None, new: str | None, at: float) -> dict:
    images = {name: {"chain": {"S": chain}, "seq": {"N": str(seq)}, "hash": {"S": h}}
              for name, h in (("OldImage", old), ("NewImage", new)) if h is not None}
    return {"eventID": f"{event}-{chain}-{seq}", "eventName": event,
            "dynamodb": {"ApproximateCreationDateTime": at, "Keys": {"chain": {"S": chain}, "seq": {"N": str(seq)}},
                         **images}}


def test_unanchored_records_older_than_two_digest_periods_fail():
    one = build("media-1")
    digests = digests_for({"media-1": Head(2, one[2].hash)})
    snapshot = snapshot_of({"media-1": one}, digests)
    # GIVEN #3 and #4 appended after the last digest; WHEN verified one period later
    soon = dataclasses.replace(snapshot, taken_at=(WRITTEN + STALE_AFTER / 2).isoformat())
    # THEN they are a note only
    assert [(f.seq, f.kind, f.failing) for f in verify_trail(soon).findings] == [(3, "unanchored", False)]
    # WHEN still unanchored after two digest periods THEN they are a failure
    late = dataclasses.replace(snapshot, taken_at=(WRITTEN + STALE_AFTER + timedelta(minutes=1)).isoformat())
    report = verify_trail(late)
    assert not report.ok and [(f.chain, f.seq, f.kind) for f in report.problems] == [("media-1", 3, "stale")]


def test_an_unanchored_record_dated_in_the_future_fails_at_once():
    one = build("media-1")
    digests = digests_for({"media-1": Head(2, one[2].hash)})
    # GIVEN #3 and #4 appended after the last digest, the oldest dated an hour ahead
    future = (WRITTEN + timedelta(hours=1)).isoformat()
    forged = [*one[:3], dataclasses.replace(one[3], at=future), one[4]]
    snapshot = snapshot_of({"media-1": forged}, digests)
    # WHEN verified right after they were written
    report = verify_trail(dataclasses.replace(snapshot, taken_at=WRITTEN.isoformat()))
    # THEN the future date is itself a failure, not a reason to wait
    assert "stale" in {f.kind for f in report.problems if f.seq == 3}


def test_a_stream_batch_becomes_changes_and_round_trips_through_the_log():
    records = [stream_record("INSERT", "media-1", 0, None, "a" * 64, 1795428000),
               stream_record("MODIFY", "media-1", 0, "a" * 64, "b" * 64, 1795428001.5)]
    changes = changes_from_stream(records)
    assert [(c.event, c.chain, c.seq, c.old_hash, c.new_hash) for c in changes] == [
        ("INSERT", "media-1", 0, None, "a" * 64), ("MODIFY", "media-1", 0, "a" * 64, "b" * 64)]
    assert changes[0].at == "2026-11-23T10:00:00+00:00"
    assert decode_changes(encode_changes(changes)) == changes
    # The same batch delivered again lands on the same key
    assert changes_key(changes_from_stream(records)) == changes_key(changes)


def test_a_record_rewritten_after_the_last_digest_is_named_by_the_change_log():
    # GIVEN a chain whose #4 was rewritten (record and head, consistently) before any digest
    one = build("media-1")
    forged = next_record("media-1", one[3], one[4].at, "moderator:42", "appeal-upheld", {"action": "remove"})
    rewritten = [*one[:4], forged]
    log = change_log(*changes_from_stream([
        stream_record("INSERT", "media-1", 4, None, one[4].hash, 1795428004),
        stream_record("MODIFY", "media-1", 4, one[4].hash, forged.hash, 1795428100)]))
    # WHEN verified without and with the change log
    bare = verify_trail(snapshot_of({"media-1": rewritten}, []))
    report = verify_trail(dataclasses.replace(snapshot_of({"media-1": rewritten}, []), changes=log))
    # THEN only the change log tells: the overwrite is named
    assert bare.ok
    assert [(f.chain, f.seq, f.kind) for f in report.problems] == [("media-1", 4, "overwritten")]


def test_a_chain_created_and_deleted_between_two_digests_is_named():
    # GIVEN a chain that was written and deleted (records and head) before any digest saw it
    gone = build("media-9", EVENTS[:2])
    log = change_log(*changes_from_stream(
        [stream_record("INSERT", "media-9", r.seq, None, r.hash, 1795428000 + r.seq) for r in gone]
        + [stream_record("REMOVE", "media-9", r.seq, r.hash, None, 1795428050 + r.seq) for r in gone]))
    snapshot = dataclasses.replace(snapshot_of({"media-1": build("media-1")}, []), changes=log)
    # THEN verify names both deleted records of the chain no table holds any more
    report = verify_trail(snapshot)
    assert [(f.chain, f.seq, f.kind) for f in report.problems] == [("media-9", 0, "deleted"), ("media-9", 1, "deleted")]
    assert verify_trail(dataclasses.replace(snapshot, only="media-9")).checked == ["media-9"]


def test_an_unlocked_or_unreadable_change_log_is_a_problem():
    log = [ArchivedDigest("changes/20261123T100000Z-0123456789abcdef.json", b"{}", None)]
    report = verify_trail(TrailSnapshot({}, ChainState([], None), [], changes=log))
    assert sorted(f.kind for f in report.problems) == ["edited", "unlocked"]
