"""Geofence rules on AWS: DynamoGeofence on moto with the table exactly as template.yaml
declares it, the contract with the edge viewer-request function, and the CLI aimed at a
stack through CloudFormation."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from mediaguard.adapters.geofence import DynamoGeofence
from mediaguard.decisions.geofence import new_rule
from mediaguard.decisions.history import Pseudonymiser
from mediaguard.local.template import load_template
from mediaguard.settings import Settings
from tests.conftest import REPO, load_event
from tests.functional.conftest import MOTO_REGION
from tests.geofence_contract import NOW, SECRET, UPLOADER, GeofenceStoreContract, geofence_cli

REGION = MOTO_REGION
GEOFENCE_TABLE = load_template(REPO / "template.yaml")["Resources"]["GeofenceTable"]


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


@pytest.fixture
def store(aws):
    """DynamoGeofence over the stack's table, created as the template declares it."""
    create_table("test-geofence")
    return DynamoGeofence(Settings(geofence_table="test-geofence", region=REGION))


@pytest.fixture
def cli(request, monkeypatch, tmp_path):
    return geofence_cli(request, monkeypatch, tmp_path)


# --- the store --------------------------------------------------------------------------------


class TestDynamoGeofence(GeofenceStoreContract):
    """The store contract over the geofence table."""


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


# --- CLI against a stack -------------------------------------------------------------------------


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
