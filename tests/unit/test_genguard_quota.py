"""Token buckets: burst, refill, all-or-nothing, Retry-After and the limits configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediaguard.genguard.config import get_genguard_settings
from mediaguard.genguard.quota import InMemoryQuotaStore, Limits, buckets_for
from tests.fakes import Clock

T0 = 1_795_424_400.0
TIGHT = Limits.model_validate({"user": {"minute": {"limit": 6, "burst": 3}, "day": {"limit": 10}},
                               "tenant": {"minute": {"limit": 100}, "day": {"limit": 1000}}})


def take(store, clock, user="u1", tenant="acme", limits=TIGHT):
    return store.take(buckets_for(tenant, user, limits), clock())


def test_a_burst_is_allowed_then_refused_with_the_time_until_one_token_refills():
    # GIVEN a user allowed 6 a minute with bursts of 3
    store, clock = InMemoryQuotaStore(), Clock(T0)
    # WHEN four requests arrive at once
    decisions = [take(store, clock) for _ in range(4)]
    # THEN three pass and the fourth waits 10 s (one token at 6/min)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[3].retry_after == 10 and decisions[3].exhausted == ("user.minute",)
    assert decisions[2].quota["user"]["minute"]["remaining"] == 0


def test_tokens_refill_with_time_up_to_the_burst():
    store, clock = InMemoryQuotaStore(), Clock(T0)
    for _ in range(3):
        take(store, clock)
    # WHEN 10 s pass  THEN exactly one more request fits
    clock.tick(10)
    assert take(store, clock).allowed and not take(store, clock).allowed
    # WHEN an hour passes  THEN the bucket holds the burst again, not 360 tokens
    clock.tick(3600)
    assert sum(take(store, clock).allowed for _ in range(5)) == 3


def test_the_day_window_holds_when_the_minute_window_refills():
    store, clock = InMemoryQuotaStore(), Clock(T0)
    allowed = 0
    for _ in range(40):  # one request every 30 s for 20 minutes
        allowed += take(store, clock).allowed
        clock.tick(30)
    # THEN no more than the day's 10
    assert allowed == 10
    refused = take(store, clock)
    assert refused.exhausted == ("user.day",) and refused.retry_after > 60


def test_a_refusal_spends_no_token_of_any_bucket():
    # GIVEN a tenant whose minute bucket is empty, and a fresh user of it
    store, clock = InMemoryQuotaStore(), Clock(T0)
    limits = Limits.model_validate({"tenant": {"minute": {"limit": 2}}})
    assert take(store, clock, "a", limits=limits).allowed and take(store, clock, "b", limits=limits).allowed
    before = dict(store.states)
    # WHEN the fresh user asks
    refused = take(store, clock, "c", limits=limits)
    # THEN the tenant refuses and the user's own buckets were not touched
    assert not refused.allowed and refused.exhausted == ("tenant.minute",)
    assert store.states == before and not any(k.startswith("user:acme/c") for k in store.states)


def test_a_clock_running_backwards_refills_nothing():
    store, clock = InMemoryQuotaStore(), Clock(T0)
    for _ in range(3):
        take(store, clock)
    clock.tick(-30)
    assert not take(store, clock).allowed


def test_limits_come_from_the_environment_as_json_and_keep_unnamed_defaults(monkeypatch):
    monkeypatch.setenv("MEDIAGUARD_GENGUARD_LIMITS", '{"user": {"minute": {"limit": 2}}}')
    get_genguard_settings.cache_clear()
    try:
        limits = get_genguard_settings().limits
        assert limits.user.minute.limit == 2 and limits.user.minute.capacity == 2
        assert limits.user.day.limit == 200 and limits.tenant.minute.limit == 600
    finally:
        get_genguard_settings.cache_clear()


@pytest.mark.parametrize("bad", ['{"user": {"minute": {"limit": 0}}}', '{"user": {"hour": {"limit": 3}}}'])
def test_a_bad_limits_document_fails_when_read(bad, monkeypatch):
    monkeypatch.setenv("MEDIAGUARD_GENGUARD_LIMITS", bad)
    get_genguard_settings.cache_clear()
    try:
        with pytest.raises(ValidationError):
            get_genguard_settings()
    finally:
        get_genguard_settings.cache_clear()
