"""Geofence rules shared by the unit tests (local JSON store, CLI) and the functional
ones (DynamoDB on moto, the edge function, the CLI against a stack): the rule builder,
the store contract both stores keep, and the ``mediaguard geofence`` runner."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from mediaguard.cli.geofence import add_geofence_parser, run_geofence
from mediaguard.decisions.geofence import GeoRule, new_rule
from mediaguard.decisions.history import Pseudonymiser
from mediaguard.settings import get_settings
from tests.fakes import Lines

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "unit-test-uploader-key-0123456789"
UPLOADER = "auth0|5f2b9c1d7e8a"  # a platform id: must never be stored, printed or logged


def rule(country: str = "DE", scope: str = "global", reference: str = "LG Berlin 27 O 123/26",
         expires: datetime | None = None) -> GeoRule:
    return new_rule(country, scope, reference, expires, now=NOW, pseudonymiser=Pseudonymiser(SECRET))


def geofence_cli(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Callable:
    """Run ``mediaguard geofence ...`` against a local store in tmp_path (MEDIAGUARD_HOME).

    The body of each test module's ``cli`` fixture; returns ``run(*argv) -> (exit code, Lines)``.
    """
    monkeypatch.setenv("MEDIAGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDIAGUARD_UPLOADER_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    parser = argparse.ArgumentParser(prog="mediaguard")
    add_geofence_parser(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> tuple[int, Lines]:
        out = Lines()
        return run_geofence(parser.parse_args(["geofence", *argv]), out), out

    return run


class GeofenceStoreContract:
    """What every geofence store keeps. A subclassing module provides the ``store`` fixture."""

    def test_a_rule_is_added_once_listed_and_removed(self, store):
        # GIVEN an empty store
        assert store.list() == []
        # WHEN a rule is added, and the same key again
        first = rule("DE", reference="LG Berlin 27 O 123/26", expires=NOW + timedelta(days=30))
        assert store.add(first) is True
        assert store.add(rule("de", reference="another order")) is False
        # THEN the first is kept, exactly as written
        (listed,) = store.list()
        assert (listed.country, listed.scope, listed.legal_reference, listed.expires_at) == (
            "DE", "global", "LG Berlin 27 O 123/26", first.expires_at)
        # AND replace overwrites it
        assert store.add(rule("DE", reference="another order"), replace=True) is True
        assert [r.legal_reference for r in store.list()] == ["another order"]
        # AND removal is by key, once
        assert store.remove("DE", "global") is True
        assert store.remove("DE", "global") is False
        assert store.list() == []

    def test_rules_list_sorted_with_expired_ones_included(self, store):
        for r in (rule("FR", "media:b"), rule("AT", "media:a"), rule("AT"), rule("BR", expires=NOW + timedelta(hours=1))):
            store.add(r)
        listed = store.list()
        assert [(r.country, r.shown_scope) for r in listed] == [("AT", "global"), ("AT", "media:a"), ("BR", "global"),
                                                                 ("FR", "media:b")]
        # A rule that has lapsed but not yet been deleted by TTL is still listed, marked expired.
        later = NOW + timedelta(hours=2)
        assert [r.expired(later) for r in listed] == [False, False, True, False]
