"""Geofence rules without AWS: validation, the local JSON store and the CLI on it. The DynamoDB
store, the edge contract and ``--stack`` are tests/functional/test_geofence_aws.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from mediaguard.adapters.geofence import JsonGeofence
from mediaguard.decisions.geofence import COUNTRY_CODES, GeofenceRuleError, GeoRule, new_rule, parse_scope, rule_key
from mediaguard.decisions.history import Pseudonymiser
from tests.geofence_contract import NOW, SECRET, UPLOADER, GeofenceStoreContract, geofence_cli, rule


@pytest.fixture
def store(tmp_path):
    return JsonGeofence(tmp_path / "geofence.json")


# --- validation --------------------------------------------------------------------------------


def test_every_assigned_country_code_is_accepted_in_either_case():
    assert len(COUNTRY_CODES) == 249
    for code in ("DE", "br", "Us", "gb", "AX"):
        assert rule(code).country == code.upper()


@pytest.mark.parametrize("country", ["UK", "EU", "XK", "D", "DEU", "", "1A", "ZZ"])
def test_anything_but_an_assigned_alpha2_code_is_refused(country):
    with pytest.raises(GeofenceRuleError, match="ISO 3166-1"):
        rule(country)


@pytest.mark.parametrize(
    "written,stored,shown,at_edge",
    [
        ("global", "global", "global", True),
        ("media:3f1c2b9e8d7a", "path:/media/3f1c2b9e8d7a/", "media:3f1c2b9e8d7a", True),
        ("path:/media/3f1c2b9e8d7a/", "path:/media/3f1c2b9e8d7a/", "media:3f1c2b9e8d7a", True),
        ("path:/media/legacy/thumbs/", "path:/media/legacy/thumbs/", "path:/media/legacy/thumbs/", True),
        ("label:ai_generated", "label:ai_generated", "label:ai_generated", False),
    ],
)
def test_scopes_are_stored_in_the_form_the_edge_reads(written, stored, shown, at_edge):
    # GIVEN a scope as an operator writes it
    new = rule(scope=written)
    # THEN the stored key is the edge's form, it reads back as the operator wrote it, and says if the edge enforces it
    assert new.scope == stored
    assert new.shown_scope == shown and parse_scope(new.scope).stored == stored
    assert new.enforced_at_edge is at_edge


def test_an_uploader_scope_stores_only_the_keyed_hash():
    # GIVEN a rule scoped to one uploader, by the platform's id
    new = rule(scope=f"uploader:{UPLOADER}")
    # THEN only the keyed hash is kept, and the rule says the edge cannot enforce it
    assert new.scope == f"uploader-key:{Pseudonymiser(SECRET).key(UPLOADER)}"
    assert UPLOADER not in json.dumps(new.view(NOW)) and not new.enforced_at_edge
    # AND the printed form can be fed back (to remove the rule) without the key
    assert rule_key("de", new.shown_scope) == ("DE", new.scope)
    # AND without the key the raw id is refused, and the error does not repeat it
    with pytest.raises(GeofenceRuleError) as refused:
        new_rule("DE", f"uploader:{UPLOADER}", "x", None, now=NOW)
    assert UPLOADER not in str(refused.value)
    with pytest.raises(ValueError):
        GeoRule(country="DE", scope=f"uploader:{UPLOADER}", legal_reference="x")


@pytest.mark.parametrize(
    "scope",
    ["", "media:", "media:../../etc", "path:/", "path:media/x", "path:/a b", "label:Nudity", "uploader-key:xyz",
     "country:DE", "GLOBAL"],
)
def test_malformed_scopes_are_refused(scope):
    with pytest.raises(GeofenceRuleError, match="scope must be"):
        rule(scope=scope)


@pytest.mark.parametrize(
    "reference,accepted",
    [
        ("§ 130 StGB; LG Berlin 27 O 123/26", True),
        ("Arrêté n° 2025-7", True),
        ("", False),
        ("   ", False),
        ("LG Berlin\r\nSet-Cookie: x=1", False),  # it becomes a response header at the edge
        ("tab\there", False),
        ("x" * 301, False),
    ],
)
def test_a_legal_reference_is_required_and_must_be_safe_in_a_header(reference, accepted):
    if accepted:
        assert rule(reference=reference).legal_reference == reference.strip()
    else:
        with pytest.raises(GeofenceRuleError, match="legal reference"):
            rule(reference=reference)


def test_expiry_must_be_in_the_future_and_unambiguous():
    assert rule(expires=NOW + timedelta(days=30)).expires_at == int((NOW + timedelta(days=30)).timestamp())
    with pytest.raises(GeofenceRuleError, match="past"):
        rule(expires=NOW - timedelta(seconds=1))
    with pytest.raises(GeofenceRuleError, match="time zone"):
        rule(expires=datetime(2027, 1, 1))


# --- the stores ------------------------------------------------------------------------------


class TestJsonGeofence(GeofenceStoreContract):
    """The store contract over the local JSON file (the DynamoDB table: tests/functional)."""


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli(request, monkeypatch, tmp_path):
    return geofence_cli(request, monkeypatch, tmp_path)


def test_cli_adds_lists_and_removes_a_rule(cli, tmp_path):
    # WHEN an operator adds a rule with an expiry date
    code, out = cli("add", "de", "--legal-reference", "LG Berlin 27 O 123/26", "--expires", "2099-01-31", "--json")
    # THEN it is added, in the local store under MEDIAGUARD_HOME, lapsing at the start of that day (UTC)
    assert code == 0
    (added,) = out.json()
    assert added["result"] == "added"
    assert added["rule"] | {"created_at": None} == {
        "country": "DE", "scope": "global", "stored_scope": "global", "legal_reference": "LG Berlin 27 O 123/26",
        "expires_at": "2099-01-31T00:00:00Z", "expired": False, "enforced_at_edge": True, "created_at": None}
    assert (tmp_path / "home" / "geofence.json").is_file()
    # AND list shows it, one JSON object per rule
    code, out = cli("list", "--json")
    assert code == 0 and [r["country"] for r in out.json()] == ["DE"]
    # AND the table form names the columns
    code, out = cli("list")
    assert out.lines[0].split()[:5] == ["country", "scope", "expires", "status", "edge"]
    # WHEN it is removed twice
    assert cli("remove", "DE")[0] == 0
    code, out = cli("remove", "DE", "--json")
    # THEN the second removal fails (exit 1) and says why
    assert code == 1 and out.json()[0]["error"]["reason"] == "no_such_rule"
    assert cli("list", "--json")[1].lines == []


def test_cli_refuses_a_duplicate_unless_replace(cli):
    assert cli("add", "AT", "--scope", "media:abc", "--legal-reference", "OGH 6 Ob 1/26")[0] == 0
    code, out = cli("add", "AT", "--scope", "media:abc", "--legal-reference", "other", "--json")
    assert code == 1 and out.json()[0]["error"]["reason"] == "rule_exists"
    code, out = cli("add", "AT", "--scope", "media:abc", "--legal-reference", "other", "--replace", "--json")
    assert code == 0 and out.json()[0]["result"] == "replaced"
    assert [r["legal_reference"] for r in cli("list", "--json")[1].json()] == ["other"]


@pytest.mark.parametrize(
    "argv",
    [
        ("add", "UK", "--legal-reference", "x"),
        ("add", "DE", "--legal-reference", " "),
        ("add", "DE", "--legal-reference", "x", "--scope", "media:../x"),
        ("add", "DE", "--legal-reference", "x", "--expires", "2001-01-01"),
        ("add", "DE", "--legal-reference", "x", "--expires", "next tuesday"),
        ("add", "DE", "--legal-reference", "x", "--region", "eu-west-1"),
        ("list", "--stack", "prod", "--home", "."),
    ],
)
def test_cli_exits_2_on_invalid_input_and_writes_nothing(cli, tmp_path, argv):
    code, out = cli(*argv, "--json")
    assert code == 2
    assert out.json()[0]["error"]["reason"] in {"invalid_rule", "usage"}
    assert not (tmp_path / "home" / "geofence.json").exists()


def test_cli_uploader_scope_never_prints_or_stores_the_raw_id(cli, tmp_path, capsys):
    # WHEN a rule is scoped to an uploader by the platform's id
    code, out = cli("add", "FR", "--scope", f"uploader:{UPLOADER}", "--legal-reference", "Arrêté 2026-1", "--json")
    # THEN it is stored under the keyed hash, with a warning that the edge cannot enforce it
    assert code == 0 and out.json()[0]["rule"]["enforced_at_edge"] is False
    assert "not enforced" in capsys.readouterr().err
    # AND it can be removed by the raw id (hashed again) ...
    assert cli("remove", "FR", "--scope", f"uploader:{UPLOADER}")[0] == 0
    # ... and the raw id appears nowhere: not in output, errors, or the store
    code, _ = cli("remove", "FR", "--scope", f"uploader:{UPLOADER}")
    assert code == 1
    captured = capsys.readouterr()
    store_text = (tmp_path / "home" / "geofence.json").read_text()
    assert UPLOADER not in "\n".join(out.lines) + captured.out + captured.err + store_text


