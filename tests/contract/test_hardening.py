"""Issue 14 infrastructure contracts: secrets at run time (#4), failed S3 events (#6),
retention, access logs and TLS (#7), who may write which audit chain (#8), the edge
distribution, all read from template.yaml / edge/template.yaml and their SAM translation."""

from __future__ import annotations

import ast
import fnmatch

import pytest

from mediaguard.adapters.redrive import STACK_OUTPUTS
from mediaguard.local.template import Stack, load_template
from tests.conftest import REPO
from tests.contract.test_template import _translated, find_cycle

TEMPLATE = load_template(REPO / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
EDGE = load_template(REPO / "edge" / "template.yaml")
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f3c8a1e-6b2d-4c59-a7e1-f0b2c3d4e5f6"


@pytest.fixture(autouse=True)
def _region(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _statements(logical: str) -> list[dict]:
    return [s for p in FUNCTIONS[logical]["Properties"]["Policies"] for s in p.get("Statement", [])]


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _environment(logical: str) -> dict:
    return FUNCTIONS[logical]["Properties"].get("Environment", {}).get("Variables", {})


# --- #4: the uploader key is read at run time, never resolved into an environment ---------


def test_no_function_environment_holds_a_resolved_secret():
    # GIVEN every environment a function gets (Globals and its own)
    environments = [TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]]
    environments += [_environment(logical) for logical in FUNCTIONS]
    # THEN none carries a dynamic reference: its value would sit in the function configuration
    for variables in environments:
        assert "{{resolve:" not in repr(variables)
        assert "MEDIAGUARD_UPLOADER_KEY" not in variables


def test_only_the_functions_that_key_uploader_ids_may_read_the_uploader_key():
    # GIVEN the functions that build an uploader history or a geofence admin (mediaguard.wiring)
    # (UploadsFunction: GET /v1/uploads queries the caller's history rows by that key.)
    users = {"StartFunction", "ScoreFunction", "EnforceFunction", "ApiFunction", "UploadsFunction"}
    secret = {"Ref": "UploaderKeySecret"}
    named = {k for k in FUNCTIONS if _environment(k).get("MEDIAGUARD_UPLOADER_KEY_SECRET_ARN") == secret}
    readers = {k for k in FUNCTIONS for s in _statements(k)
               if s["Effect"] == "Allow" and "secretsmanager:GetSecretValue" in _listed(s["Action"])
               and s["Resource"] == secret}
    # THEN exactly they get its ARN and the one action on it
    assert named == users
    assert readers == users


# --- #6: the start function's failed events are kept, alarmed and redrivable -------------------


def test_start_function_failures_go_to_an_encrypted_queue_that_alarms():
    config = FUNCTIONS["StartFunction"]["Properties"]["EventInvokeConfig"]
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["StartFailedEventsQueue", "Arn"]}}
    queue = RESOURCES["StartFailedEventsQueue"]
    assert queue["Type"] == "AWS::SQS::Queue" and queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert any(s["Action"] == "sqs:SendMessage" and s["Resource"] == on_failure["Destination"]
               for s in _statements("StartFunction"))
    # AND a visible message raises the alarm on the shared topic
    alarm = RESOURCES["StartFailedEventsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StartFailedEventsQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert RESOURCES["AlarmTopicEmail"]["Condition"] == "HasAlarmEmail"
    assert "AlarmEmail" in TEMPLATE["Parameters"] and "AlarmTopicArn" in TEMPLATE["Outputs"]


def test_stuck_uploads_and_failed_redrives_alarm_on_the_metrics_the_sweep_writes():
    # GIVEN the sweep's metrics as Powertools writes them (namespace, service dimension)
    from mediaguard.stages import sweep

    written = {"Namespace": sweep.metrics.namespace, "Dimensions": [{"Name": "service", "Value": sweep.metrics.service}]}
    # THEN each alarm watches exactly that metric and notifies the shared topic
    for name, metric in (("StuckUploadsAlarm", "StuckUploads"), ("RedriveFailuresAlarm", "RedriveFailures")):
        alarm = RESOURCES[name]["Properties"]
        assert alarm["MetricName"] == metric
        assert {"Namespace": alarm["Namespace"], "Dimensions": alarm["Dimensions"]} == written
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    # AND a stuck item alarms only if three sweeps in a row found some (each re-drives them)
    stuck = RESOURCES["StuckUploadsAlarm"]["Properties"]
    assert (stuck["EvaluationPeriods"], stuck["DatapointsToAlarm"], stuck["Period"]) == (3, 3, 300)


def test_sam_translates_the_failure_destination_for_the_start_function():
    translated = _translated(TEMPLATE)["Resources"]
    configs = [r["Properties"] for r in translated.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"
               and r["Properties"]["FunctionName"] == {"Ref": "StartFunction"}]
    assert len(configs) == 1
    assert configs[0]["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StartFailedEventsQueue", "Arn"]}


def test_stack_outputs_name_what_redrive_reads():
    outputs = TEMPLATE["Outputs"]
    assert outputs[STACK_OUTPUTS["queue_url"]]["Value"] == {"Ref": "StartFailedEventsQueue"}
    assert outputs[STACK_OUTPUTS["function_name"]]["Value"] == {"Ref": "StartFunction"}


# --- #7: retention of stateful resources, evidence access logs, TLS 1.2 ------------------------

STATEFUL = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Cognito::UserPool", "AWS::SecretsManager::Secret")


@pytest.mark.parametrize("logical", [k for k, v in RESOURCES.items() if v["Type"] in STATEFUL])
def test_stateful_resources_survive_stack_deletion_and_replacement(logical):
    resource = RESOURCES[logical]
    assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain")


def test_evidence_access_is_logged_to_a_private_log_bucket():
    logging = RESOURCES["EvidenceBucket"]["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    log_bucket = RESOURCES["AccessLogBucket"]["Properties"]
    assert all(log_bucket["PublicAccessBlockConfiguration"].values())
    delivery = RESOURCES["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"} and delivery["Action"] == "s3:PutObject"
    assert {"Fn::GetAtt": ["EvidenceBucket", "Arn"]} in delivery["Condition"]["ArnLike"]["aws:SourceArn"]


def _viewer_certificate(template: dict, distribution: str, **parameters: str) -> dict:
    stack = Stack(template, REPO, parameter_overrides=parameters)
    return stack.resolve(template["Resources"][distribution]["Properties"]["DistributionConfig"]["ViewerCertificate"])


@pytest.mark.parametrize(("template", "distribution", "certificate", "domain"), [
    (TEMPLATE, "ConsoleDistribution", "ConsoleCertificateArn", "ConsoleDomainName"),
    (EDGE, "MediaDistribution", "CertificateArn", "DomainName"),
], ids=["console", "edge"])
def test_a_distribution_with_its_own_certificate_refuses_tls_below_1_2(template, distribution, certificate, domain):
    # GIVEN the deployer's ACM certificate and domain
    cert = _viewer_certificate(template, distribution, **{certificate: CERT, domain: "media.example.org"})
    # THEN viewers need TLS 1.2 or later, over SNI
    assert cert == {"AcmCertificateArn": CERT, "SslSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"}
    # AND without one the default certificate is used (which CloudFront pins to TLSv1: README)
    assert _viewer_certificate(template, distribution) == {"CloudFrontDefaultCertificate": True}
    rule = next(r for r in template["Rules"].values() if "RuleCondition" in r)
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": domain}, ""]}]}


# --- #8: who may write which audit chain ---------------------------------------------------------

AUDIT_TABLES = ({"Fn::GetAtt": ["AuditTable", "Arn"]}, {"Fn::GetAtt": ["AuditHeadTable", "Arn"]})


def _condition_holds(condition: dict, context: dict[str, list[str]]) -> bool:
    for operator, tests in condition.items():
        qualifier, _, op = operator.rpartition(":")
        match = {"StringEquals": lambda v, p: v == p, "StringLike": fnmatch.fnmatchcase}[op]
        for key, patterns in tests.items():
            values = context[key]
            hits = [any(match(v, p) for p in _listed(patterns)) for v in values]
            if not (all(hits) if qualifier == "ForAllValues" else any(hits)):
                return False
    return True


def may_append(logical: str, chain: str) -> bool:
    """Whether the function's role allows the PutItem of a record on ``chain`` inside a
    TransactWriteItems (how DynamoAuditStore appends): a small IAM evaluation of its statements."""
    context = {"dynamodb:EnclosingOperation": ["TransactWriteItems"], "dynamodb:LeadingKeys": [chain]}

    def applies(statement: dict) -> bool:
        return ("dynamodb:PutItem" in _listed(statement["Action"])
                and any(r in AUDIT_TABLES for r in _listed(statement["Resource"]))
                and _condition_holds(statement.get("Condition", {}), context))

    statements = _statements(logical)
    return (any(s["Effect"] == "Allow" and applies(s) for s in statements)
            and not any(s["Effect"] == "Deny" and applies(s) for s in statements))


PIPELINE = {"StartFunction", "SanitizeFunction", "FramesFunction", "ScoreFunction", "EnforceFunction",
            "FailureFunction", "SlaFunction", "SweepFunction"}


CHAIN_WRITERS = [
    ("0f3c8a1e6b2d4c59a7e1f0b2c3d4e5f6", PIPELINE | {"ApiFunction"}),   # a media item's chain
    ("upload:0f3c8a1e6b2d4c59a7e1f0b2c3d4e5f6", {"UploadsFunction"}),  # the grant naming the uploader
    ("bank:ncii-victims", {"BankAdminFunction"}),                       # the console's bank admin (and the CLI)
    ("bank:own-generations", {"GenerationOutputsFunction", "BankAdminFunction"}),  # marked outputs; bank admin
    ("geofence:DE", {"ApiFunction"}),                                   # admin geofence rules
    ("audit:digest", {"DigestFunction"}),
    ("stream:j8Z9O91ndcVs", {"SegmentFunction", "ApiFunction"}),        # transitions; a moderator clears/blocks
    ("live-j8Z9O91ndcVs-000004", PIPELINE | {"ApiFunction", "SegmentFunction"}),  # a live segment's review item
    ("generation:0f3c8a1e6b2d4c59a7e1f0b2c3d4e5f6",
     {"GenerationsFunction", "GenerationOutputsFunction"}),                      # an allowed generation, its output
    ("generation-refused:acme/user-42", {"GenerationsFunction"}),               # a user's refusals
    ("legal:lo-0f3c8a1e", {"ApiFunction"}),                             # legal orders (admin API, CLI)
    ("erasure:0f3c8a1e6b2d4c59", {"ApiFunction"}),                      # an uploader's erasure
    ("exposure:alice:2030-01-01", {"ApiFunction"}),                     # a reviewer's reveals of a day
    ("decisions:2030-01-01:3", {"ApiFunction"}),                        # reviewer decisions of a day
]


@pytest.mark.parametrize(("chain", "writers"), CHAIN_WRITERS)
def test_each_audit_chain_is_writable_only_by_the_functions_that_append_to_it(chain, writers):
    assert {logical for logical in FUNCTIONS if may_append(logical, chain)} == writers


def _chain_prefixes() -> dict[str, str]:
    """Every named-chain prefix the package writes ("legal:", ...) -> the file: the first literal
    part of a chain passed to ``append_audit``/``audit``, returned by a ``*_chain`` helper, or
    held by a ``*_CHAIN``/``*_CHAIN_PREFIX`` constant."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "layers" / "mediaguard" / "mediaguard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            value = None
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("append_audit", "audit") and node.args:
                value = node.args[0]
            elif isinstance(node, ast.FunctionDef) and node.name.endswith("_chain"):
                value = next((n.value for n in ast.walk(node) if isinstance(n, ast.Return)), None)
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                  and node.targets[0].id.endswith(("_CHAIN", "_CHAIN_PREFIX"))):
                value = node.value
            if isinstance(value, ast.JoinedStr) and value.values:
                value = value.values[0]
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and ":" in value.value:
                found.setdefault(value.value.split(":")[0] + ":", str(path.relative_to(REPO)))
    return found


def test_every_chain_prefix_the_code_writes_has_its_writers_listed():
    # GIVEN every named chain the package appends to (a new one: legal:, erasure:, ...)
    prefixes = _chain_prefixes()
    assert {"upload:", "legal:", "erasure:", "exposure:", "decisions:", "generation:"} <= set(prefixes)
    # THEN each has a row above saying which functions may write it (and so which must be denied)
    listed = {chain.split(":")[0] + ":" for chain, _ in CHAIN_WRITERS if ":" in chain}
    assert {p: f for p, f in prefixes.items() if p not in listed} == {}


BANK_TABLES = ({"Fn::GetAtt": ["BanksTable", "Arn"]}, {"Fn::GetAtt": ["BankEntriesTable", "Arn"]})
BANK_WRITES = {"dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def test_only_bank_admin_and_the_output_marker_write_bank_rows_the_marker_only_its_own_bank():
    # GIVEN every function statement that may write the banks' or the bank entries' table
    writers = {logical: s for logical in FUNCTIONS for s in _statements(logical)
               if s["Effect"] == "Allow" and BANK_WRITES & set(_listed(s["Action"]))
               and any(r in BANK_TABLES for r in _listed(s["Resource"]))}
    # THEN the console's bank admin (admins only) and the output marker are the only writers
    assert set(writers) == {"BankAdminFunction", "GenerationOutputsFunction"}
    # AND each of its bank statements is held to the rows of the own-generations bank
    for statement in _statements("GenerationOutputsFunction"):
        if any(r in BANK_TABLES for r in _listed(statement["Resource"])):
            assert statement["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["own-generations"]}}


def test_the_chain_evaluation_sees_an_unscoped_audit_write():
    # GIVEN a role that may PutItem on the audit tables in any transaction, for any chain (the old policy)
    FUNCTIONS["ClassifyFunction"]["Properties"]["Policies"].append({"Statement": [{
        "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": list(AUDIT_TABLES),
        "Condition": {"ForAnyValue:StringEquals": {"dynamodb:EnclosingOperation": "TransactWriteItems"}}}]})
    try:
        # THEN the evaluation says it can forge an upload grant
        assert may_append("ClassifyFunction", "upload:0f3c8a1e6b2d4c59a7e1f0b2c3d4e5f6")
    finally:
        FUNCTIONS["ClassifyFunction"]["Properties"]["Policies"].pop()


# --- the edge stack ships a distribution that serves --------------------------------------------


@pytest.fixture(scope="module")
def edge() -> dict:
    with pytest.MonkeyPatch.context() as patch:  # samtranslator wants a region; no AWS call is made
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return _translated(EDGE)["Resources"]


def _version_of(resources: dict, ref: dict) -> str:
    version = resources[ref["Ref"]]
    assert version["Type"] == "AWS::Lambda::Version"
    return version["Properties"]["FunctionName"]["Ref"]


def test_edge_distribution_serves_the_media_bucket_through_oac_behind_the_geofence(edge):
    config = edge["MediaDistribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    media = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert "${MediaBucketName}" in media["DomainName"]["Fn::Sub"]
    assert media["OriginAccessControlId"] == {"Fn::GetAtt": ["MediaOriginAccessControl", "Id"]}
    assert edge["MediaOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    default = config["DefaultCacheBehavior"]
    assert default["ViewerProtocolPolicy"] == "redirect-to-https" and default["AllowedMethods"] == ["GET", "HEAD"]
    (association,) = default["LambdaFunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert _version_of(edge, association["LambdaFunctionARN"]) == "ViewerRequestFunction"
    # AND the geofence gets the viewer's country
    assert default["OriginRequestPolicyId"] == {"Ref": "ViewerCountryPolicy"}
    headers = edge["ViewerCountryPolicy"]["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]["Headers"]
    assert headers == ["CloudFront-Viewer-Country"]


def test_edge_small_uploads_pass_the_origin_request_sanitizer_and_are_signed_by_the_client(edge):
    config = edge["MediaDistribution"]["Properties"]["DistributionConfig"]
    (uploads,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "uploads/*"]
    (association,) = uploads["LambdaFunctionAssociations"]
    assert (association["EventType"], association["IncludeBody"]) == ("origin-request", True)
    assert _version_of(edge, association["LambdaFunctionARN"]) == "OriginRequestFunction"
    origin = next(o for o in config["Origins"] if o["Id"] == uploads["TargetOriginId"])
    # CloudFront must not sign uploads: S3 checks the client's own presigned request
    assert "OriginAccessControlId" not in origin and "${UploadBucketName}" in origin["DomainName"]["Fn::Sub"]


def test_main_stack_lets_only_the_edge_distribution_read_only_media(edge):
    statement = RESOURCES["MediaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Fn::If"]
    assert statement[0] == "HasEdgeDistribution"
    allow = statement[1]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "${MediaBucket.Arn}/media/*"}  # never index/ (the bank index)
    assert "${EdgeDistributionId}" in allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    # AND only what the current decision serves: enforcement tags it, a blur or a hold untags it
    assert allow["Condition"]["StringEquals"]["s3:ExistingObjectTag/mediaguard-served"] == "true"


def test_edge_caches_media_for_minutes_not_a_day(edge):
    behaviour = edge["MediaDistribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["CachePolicyId"] == {"Ref": "MediaCachePolicy"}
    assert edge["MediaCachePolicy"]["Properties"]["CachePolicyConfig"]["MaxTTL"] <= 300


def test_edge_web_acl_blocks_listed_countries_with_451_when_configured(edge):
    acl = edge["GeoWebAcl"]
    assert acl["Condition"] == "HasWaf" and acl["Properties"]["Scope"] == "CLOUDFRONT"
    (rule,) = acl["Properties"]["Rules"]
    assert rule["Statement"] == {"GeoMatchStatement": {"CountryCodes": {"Ref": "WafBlockedCountries"}}}
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 451
    config = edge["MediaDistribution"]["Properties"]["DistributionConfig"]
    assert config["WebACLId"] == {"Fn::If": ["HasWaf", {"Fn::GetAtt": ["GeoWebAcl", "Arn"]}, {"Ref": "AWS::NoValue"}]}
    # AND the condition follows the parameter: no countries, no web ACL
    assert Stack(EDGE, REPO).conditions["HasWaf"] is False
    assert Stack(EDGE, REPO, parameter_overrides={"WafBlockedCountries": "RU,BY"}).conditions["HasWaf"] is True


def test_translated_edge_template_has_no_dependency_cycle(edge):
    assert find_cycle({"Resources": edge}) is None
