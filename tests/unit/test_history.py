"""Uploader history without AWS: keyed uploader ids and the sliding-window estimate. The
DynamoDB store (counters, idempotence, strikes) is tests/functional/test_history_dynamodb.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from mediaguard.decisions.history import Pseudonymiser, sliding_count

SECRET = "unit-test-uploader-key-0123456789"
ALICE, BOB = "auth0|alice-5f2b9c1d", "auth0|bob-7e8a0b3c"
# A quarter past two: a quarter of the current hour has elapsed.
NOW = datetime(2026, 11, 23, 14, 15, tzinfo=UTC)


# --- the uploader's identity ------------------------------------------------------------------


def test_the_uploader_key_is_a_keyed_hash():
    keys = Pseudonymiser(SECRET)
    # GIVEN the same id twice, another id, and the same id under another secret
    key = keys.key(ALICE)
    # THEN the key is stable, distinct per uploader and per secret, and reveals nothing of the id
    assert key == Pseudonymiser(SecretStr(SECRET)).key(ALICE) and len(key) == 32
    assert key != keys.key(BOB)
    assert key != Pseudonymiser(SECRET + "-rotated").key(ALICE)
    assert "alice" not in key
    # AND a guessable secret, an empty id, and printing the object are refused or harmless
    with pytest.raises(ValueError):
        Pseudonymiser("short")
    with pytest.raises(ValueError):
        keys.key("")
    assert SECRET not in repr(keys)


# --- windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "buckets,hours,expected",
    [
        ({"2026112314": 4}, 1, 4.0),                          # this hour only
        ({"2026112314": 4, "2026112313": 8}, 1, 10.0),        # + three quarters of the previous hour
        ({"2026112312": 100}, 1, 0.0),                        # two hours ago: outside
        ({"2026112314": 1, "2026112215": 4}, 24, 5.0),        # 23 h back: inside the day
        ({"2026112214": 4}, 24, 3.0),                         # 24 h back: three quarters still inside
        ({"2026112213": 50}, 24, 0.0),                        # 25 h back: outside
    ],
)
def test_sliding_window_estimate_from_hourly_buckets(buckets, hours, expected):
    assert sliding_count(buckets, NOW, hours) == expected
