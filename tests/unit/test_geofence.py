"""Geofence rules: validation, the two stores, the CLI, and the contract with the edge viewer function."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mediaguard.adapters.geofence import DynamoGeofence, JsonGeofence
from mediaguard.cli.geofence import add_geofence_parser, run_geofence
from mediaguard.decisions.geofence import COUNTRY_CODES, GeofenceRuleError, GeoRule, new_rule, parse_scope, rule_key
from mediaguard.decisions.history import Pseudonymiser
from mediaguard.local.template import load_template
from mediaguard.settings import Settings, get_settings
from tests.conftest import REPO, load_event

REGION = "eu-west-1"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "unit-test-uploader-key-0123456789"
UPLOADER = "auth0|5f2b9c1d7e8a"  # a platform id: must never be stored, printed or logged
GEOFENCE_TABLE = load_template(REPO / "template.yaml")["Resources"]["GeofenceTable"]


@pytest.fixture(scope="module")
def moto_account():
    """One moto account for the module (starting one costs up to seconds on a busy machine)."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": REGION}
    saved = {var: os.environ.get(var) for var in [*env, "AWS_PROFILE"]}
    os.environ.update(env)
    os.environ.pop("AWS_PROFILE", None)
    with mock_aws():
        yield
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


@pytest.fixture
def aws(moto_account):
    """An empty account: tables of the previous test are gone."""
    client = boto3.client("dynamodb", region_name=REGION)
    for name in client.list_tables()["TableNames"]:
        client.delete_table(TableName=name)


def create_table(name: str) -> None:
    """The geofence table exactly as template.yaml declares it (keys, attributes, billing)."""
    props = GEOFENCE_TABLE["Properties"]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name, KeySchema=props["KeySchema"], AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props["BillingMode"])


@pytest.fixture(params=["dynamo", "json"])
def store(request, tmp_path):
    """Each store test runs against the stack's table (in moto) and the local JSON file."""
    if request.param == "json":
        yield JsonGeofence(tmp_path / "geofence.json")
        return
    request.getfixturevalue("aws")
    create_table("test-geofence")
    yield DynamoGeofence(Settings(geofence_table="test-geofence", region=REGION))


def rule(country: str = "DE", scope: str = "global", reference: str = "LG Berlin 27 O 123/26",
         expires: datetime | None = None) -> GeoRule:
    return new_rule(country, scope, reference, expires, now=NOW, pseudonymiser=Pseudonymiser(SECRET))


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


def test_a_rule_is_added_once_listed_and_removed(store):
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


def test_rules_list_sorted_with_expired_ones_included(store):
    for r in (rule("FR", "media:b"), rule("AT", "media:a"), rule("AT"), rule("BR", expires=NOW + timedelta(hours=1))):
        store.add(r)
    listed = store.list()
    assert [(r.country, r.shown_scope) for r in listed] == [("AT", "global"), ("AT", "media:a"), ("BR", "global"),
                                                             ("FR", "media:b")]
    # A rule that has lapsed but not yet been deleted by TTL is still listed, marked expired.
    later = NOW + timedelta(hours=2)
    assert [r.expired(later) for r in listed] == [False, False, True, False]


def test_a_row_written_by_hand_is_listed_and_removable(aws):
    # GIVEN a row someone put into the table outside this tool (lower-case country, odd scope)
    create_table("test-geofence")
    boto3.client("dynamodb", region_name=REGION).put_item(TableName="test-geofence", Item={
        "country": {"S": "de"}, "scope": {"S": "everything"}, "legal_reference": {"S": "?"}})
    store = DynamoGeofence(Settings(geofence_table="test-geofence", region=REGION))
    # THEN the operator sees it, as stored, and can delete it
    (listed,) = store.list()
    assert (listed.country, listed.shown_scope, listed.enforced_at_edge) == ("DE", "everything", False)
    assert store.remove("de", "everything") is True


# --- the contract with the edge viewer-request function ------------------------------------------


def load_viewer():
    """edge/viewer_request/app.py is deployed as a bare file: load it by path, as the edge does."""
    spec = importlib.util.spec_from_file_location("edge_viewer_for_geofence", REPO / "edge" / "viewer_request" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def viewer_request(country: str, uri: str) -> dict:
    request = load_event("edge-viewer-request")["Records"][0]["cf"]["request"]
    request["headers"]["cloudfront-viewer-country"][0]["value"] = country
    request["uri"] = uri
    return request


def test_rules_written_here_are_the_rules_the_edge_enforces(aws):
    # GIVEN rules of every scope written through the adapter into the template's table
    create_table("prod-geofence")
    store = DynamoGeofence(Settings(geofence_table="prod-geofence", region=REGION))
    now = datetime.now(UTC)
    for country, scope, reference, expires in [
        ("DE", "global", "§ 130 StGB", None),
        ("AT", "media:abc", "OGH 6 Ob 1/26", now + timedelta(days=1)),
        ("IT", "global", "AGCOM 2025 (lapsed)", now + timedelta(seconds=1)),
        ("FR", f"uploader:{UPLOADER}", "Arrêté 2026-1", None),
        ("BR", "label:ai_generated", "TSE Res. 23.732", None),
    ]:
        store.add(new_rule(country, scope, reference, expires, now=now, pseudonymiser=Pseudonymiser(SECRET)))
    # WHEN the edge function reads the table the way it does in production (a scan per TTL)
    viewer = load_viewer()
    cache = viewer.RuleCache("prod-geofence", REGION, client=boto3.client("dynamodb", region_name=REGION))
    rules = cache.rules()
    later = now.timestamp() + 2  # the IT rule has lapsed

    def status(country: str, uri: str) -> str | None:
        return viewer.decide(viewer_request(country, uri), rules, later).get("status")

    # THEN a global rule blocks the country with its legal reference
    blocked = viewer.decide(viewer_request("DE", "/media/zzz/sanitized.jpg"), rules, later)
    assert blocked["status"] == "451" and json.loads(blocked["body"])["legal_reference"] == "§ 130 StGB"
    # AND a media rule blocks every rendition of that item and no other item, even one whose id extends it
    assert status("AT", "/media/abc/sanitized.jpg") == "451"
    assert status("AT", "/media/abc/blurred.jpg") == "451"
    assert status("AT", "/media/abcd/sanitized.jpg") is None
    # AND an expired rule, and the scopes the edge cannot see, let the request through
    assert status("IT", "/media/abc/sanitized.jpg") is None
    assert status("FR", "/media/abc/sanitized.jpg") is None and status("BR", "/media/abc/sanitized.jpg") is None
    # AND what the store reports as enforced matches what the edge actually enforced
    assert {r.country: r.enforced_at_edge for r in store.list()} == {
        "AT": True, "BR": False, "DE": True, "FR": False, "IT": True}


# --- CLI -------------------------------------------------------------------------------------


class Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def json(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Run ``mediaguard geofence ...`` against a local store in tmp_path (MEDIAGUARD_HOME)."""
    monkeypatch.setenv("MEDIAGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDIAGUARD_UPLOADER_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    parser = argparse.ArgumentParser(prog="mediaguard")
    add_geofence_parser(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> tuple[int, Out]:
        out = Out()
        return run_geofence(parser.parse_args(["geofence", *argv]), out), out

    yield run
    get_settings.cache_clear()


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


def stub_cloudformation(monkeypatch, stacks: dict[str, str]) -> None:
    """CloudFormation answers for ``stacks`` (name -> geofence table) and no others.

    botocore's Stubber checks each request and response against the real API model,
    and costs milliseconds where moto's CloudFormation costs seconds.
    """
    real_client = boto3.client

    def client(service, *args, **kwargs):
        made = real_client(service, *args, **kwargs)
        if service != "cloudformation":
            return made
        stubber = Stubber(made)
        for name, table in stacks.items():
            stubber.add_response("describe_stack_resource", {"StackResourceDetail": {
                "StackName": name, "LogicalResourceId": "GeofenceTable", "PhysicalResourceId": table,
                "ResourceType": "AWS::DynamoDB::Table", "LastUpdatedTimestamp": NOW, "ResourceStatus": "CREATE_COMPLETE",
            }}, {"StackName": name, "LogicalResourceId": "GeofenceTable"})
        stubber.add_client_error("describe_stack_resource", "ValidationError", "Stack with id staging does not exist",
                                 expected_params={"StackName": "staging", "LogicalResourceId": "GeofenceTable"})
        stubber.activate()
        return made

    monkeypatch.setattr(boto3, "client", client)


def test_cli_targets_a_stack_through_cloudformation(aws, cli, monkeypatch):
    # GIVEN a deployed stack whose GeofenceTable CloudFormation named prod-geofence
    create_table("prod-geofence")
    stub_cloudformation(monkeypatch, {"prod": "prod-geofence"})
    # WHEN a rule is added with --stack
    code, _ = cli("add", "DE", "--legal-reference", "§ 130 StGB", "--stack", "prod", "--region", REGION)
    # THEN it lands in that stack's table in the edge's shape
    assert code == 0
    (item,) = boto3.client("dynamodb", region_name=REGION).scan(TableName="prod-geofence")["Items"]
    assert (item["country"], item["scope"], item["legal_reference"]) == ({"S": "DE"}, {"S": "global"},
                                                                         {"S": "§ 130 StGB"})
    assert "expires_at" not in item
    # AND a stack that does not exist is a failure (1), not a usage error
    stub_cloudformation(monkeypatch, {})
    code, out = cli("list", "--stack", "staging", "--region", REGION, "--json")
    assert code == 1 and out.json()[0]["error"]["reason"] == "target_unavailable"
