"""Uploader history on DynamoDB (moto): windowed counters, idempotent atomic updates, strikes,
through DynamoHistory and its pynamodb table."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from mediaguard.adapters.history import DynamoHistory, HistoryItem
from mediaguard.decisions.history import HistorySnapshot, Pseudonymiser
from tests.functional.conftest import MOTO_REGION

REGION = MOTO_REGION
SECRET = "unit-test-uploader-key-0123456789"
ALICE, BOB = "auth0|alice-5f2b9c1d", "auth0|bob-7e8a0b3c"
# A quarter past two: a quarter of the current hour has elapsed.
NOW = datetime(2026, 11, 23, 14, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws(moto_account):
    """The shared moto account (tests/functional/conftest.py)."""


_tables = itertools.count()


@pytest.fixture
def history(aws):
    """A store on a fresh, empty table for each test."""
    store = DynamoHistory(f"test-history-{next(_tables)}", REGION, Pseudonymiser(SECRET), clock=lambda: NOW)
    HistoryItem.create_table(wait=True)
    return store


def all_items() -> list[dict]:
    return boto3.client("dynamodb", region_name=REGION).scan(TableName=HistoryItem.Meta.table_name)["Items"]


# --- the uploader's identity ------------------------------------------------------------------


def test_raw_uploader_ids_are_never_stored(history):
    # GIVEN every kind of write for one uploader
    history.record_upload(ALICE, "m1")
    history.record_outcome(ALICE, "m1", "remove", ["block"])
    history.add_strike(ALICE, "m1", "ncii")
    # THEN no attribute of any item holds the platform's id
    text = repr(all_items())
    assert "alice" not in text
    assert Pseudonymiser(SECRET).key(ALICE) in text


# --- windows ---------------------------------------------------------------------------------


def test_snapshot_counts_uploads_per_window(history):
    # GIVEN uploads now, 30 minutes ago (last hour), 5 hours ago and 2 days ago
    for i, ago in enumerate([timedelta(0), timedelta(minutes=1), timedelta(minutes=30), timedelta(hours=5),
                             timedelta(days=2)]):
        history.record_upload(ALICE, f"m{i}", at=NOW - ago)
    # WHEN the snapshot is taken
    snap = history.snapshot(ALICE, now=NOW)
    # THEN the hour has the three recent ones (the one at 13:45 sits in the previous bucket, weighted 3/4),
    # the day has four, and the total all five
    assert snap.uploads_last_hour == pytest.approx(2 + 0.75)
    assert snap.uploads_last_day == 4.0
    assert snap.uploads_total == 5
    # AND another uploader's history is untouched
    assert history.snapshot(BOB, now=NOW) == HistorySnapshot(bank_matches={"block": 0, "flag": 0})


def test_a_retried_upload_counts_once(history):
    # GIVEN the same item recorded three times (a Lambda retry, a redriven execution)
    results = [history.record_upload(ALICE, "m1") for _ in range(3)]
    # THEN only the first counts
    assert results == [True, False, False]
    snap = history.snapshot(ALICE, now=NOW)
    assert (snap.uploads_last_hour, snap.uploads_total) == (1.0, 1)


def test_counting_never_reads_before_it_writes(history, monkeypatch):
    # Concurrent uploads from one uploader must not lose counts. moto is not thread-safe, so
    # instead of racing threads this pins the property that makes races harmless: each
    # write is one TransactWriteItems of ADDs, with no read whose result a write depends on.
    import botocore.client

    calls: list[str] = []
    real = botocore.client.BaseClient._make_api_call

    def spy(self, operation, params):
        calls.append(operation)
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    history.record_upload(ALICE, "m1")
    history.record_outcome(ALICE, "m1", "remove", ["block"])
    history.add_strike(ALICE, "m1", "block_bank")
    history.remove_strike(ALICE, "m1")
    assert calls == ["TransactWriteItems", "TransactWriteItems", "TransactWriteItems", "PutItem", "DeleteItem"]


# --- outcomes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action,kinds,flagged,matches",
    [
        ("allow", [], 0, {"block": 0, "flag": 0}),
        ("label", [], 0, {"block": 0, "flag": 0}),       # informational, not an offence
        ("review", [], 0, {"block": 0, "flag": 0}),      # undecided
        ("blur", ["flag"], 1, {"block": 0, "flag": 1}),
        ("remove", ["block", "flag", "block"], 1, {"block": 1, "flag": 1}),
        ("allow", ["allow"], 0, {"block": 0, "flag": 0}),  # a verified original
    ],
)
def test_outcomes_count_restrictive_actions_and_offending_banks(history, action, kinds, flagged, matches):
    history.record_upload(ALICE, "m1")
    history.record_outcome(ALICE, "m1", action, kinds)
    snap = history.snapshot(ALICE, now=NOW)
    assert (snap.flagged_total, snap.flagged_last_day, snap.bank_matches) == (flagged, float(flagged), matches)


def test_each_fact_of_an_item_counts_once_however_often_it_is_decided(history):
    # GIVEN an item removed for a flag-bank match, decided twice (a retry)
    assert history.record_outcome(ALICE, "m1", "remove", ["flag"]) is True
    assert history.record_outcome(ALICE, "m1", "remove", ["flag"]) is False
    # WHEN a rescan after a bank update also finds it in a block bank
    assert history.record_outcome(ALICE, "m1", "remove", ["flag", "block"]) is True
    # THEN the item is flagged once and counted once per bank kind
    snap = history.snapshot(ALICE, now=NOW)
    assert (snap.flagged_total, snap.bank_matches) == (1, {"block": 1, "flag": 1})


# --- strikes ----------------------------------------------------------------------------------


def test_a_strike_is_added_once_and_removed_by_an_overturned_appeal(history):
    # GIVEN two items that each earned a strike, one of them recorded twice
    assert history.add_strike(ALICE, "m1", "ncii") is True
    assert history.add_strike(ALICE, "m1", "ncii") is False
    assert history.add_strike(ALICE, "m2", "block_bank") is True
    assert history.snapshot(ALICE, now=NOW).strikes == 2
    # WHEN the appeal on m1 is overturned (and the overturn is processed twice)
    assert history.remove_strike(ALICE, "m1") is True
    assert history.remove_strike(ALICE, "m1") is False
    # THEN one strike remains
    assert history.snapshot(ALICE, now=NOW).strikes == 1


def test_a_lapsed_strike_stops_counting_before_ttl_deletes_it(history):
    history.add_strike(ALICE, "m1", "spam", expires_at=NOW + timedelta(days=90))
    assert history.snapshot(ALICE, now=NOW).strikes == 1
    assert history.snapshot(ALICE, now=NOW + timedelta(days=91)).strikes == 0


def test_snapshot_feeds_the_history_signals(history):
    # GIVEN an uploader with a burst, a flagged item, a block match and a strike
    for n in range(3):
        history.record_upload(ALICE, f"m{n}")
    history.record_outcome(ALICE, "m0", "remove", ["block", "allow"])
    history.add_strike(ALICE, "m0", "block_bank")
    # THEN the snapshot's signals are the values scoring weighs
    assert history.snapshot(ALICE, now=NOW).signals() == {
        "history.burst": 3.0, "history.flagged": 1.0, "history.bank_matches": 1.0, "history.strikes": 1.0}


def test_recent_uploads_are_the_callers_own_newest_first_from_one_query(history):
    # GIVEN three uploads of Alice's (one also flagged, which adds marker fields to its row) and one of Bob's
    for i, ago in enumerate([timedelta(hours=3), timedelta(minutes=5), timedelta(days=1)]):
        history.record_upload(ALICE, f"a{i}", at=NOW - ago)
    history.record_outcome(ALICE, "a0", "remove", ["block"], at=NOW)
    history.record_upload(BOB, "b0", at=NOW)
    # WHEN Alice's recent uploads are listed
    recent = history.recent_uploads(ALICE, limit=2)
    # THEN they are hers, newest first, with when each was counted, cut at the limit
    assert recent == [("a1", NOW - timedelta(minutes=5)), ("a0", NOW - timedelta(hours=3))]
    assert [m for m, _ in history.recent_uploads(BOB)] == ["b0"]
