"""Issue 13 #1-#2 contracts: every function traced and timed, the alarms and the dashboard in
the SAM-translated templates, and every custom metric an alarm or the dashboard names is one
the package really emits (a renamed metric would leave an alarm that never fires)."""

from __future__ import annotations

import ast
import json
import re

import pytest

from mediaguard.local.template import Stack, load_template
from tests.conftest import REPO
from tests.contract.test_template import _translated

TEMPLATE = load_template(REPO / "template.yaml")
EDGE = load_template(REPO / "edge" / "template.yaml")
PACKAGE = REPO / "layers" / "mediaguard" / "mediaguard"
NAMESPACE = "mediaguard"


def emitted_metrics() -> set[str]:
    """Metric names the package emits: ``observability.count/gauge("Name", ...)`` calls and
    the sweep's Powertools ``metrics.add_metric(name="Name")``."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute | ast.Name):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if func in ("count", "gauge") and node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
            if func == "add_metric":
                names.update(k.value.value for k in node.keywords if k.arg == "name")
    return names


@pytest.fixture(scope="module")
def translated() -> dict:
    with pytest.MonkeyPatch.context() as patch:  # samtranslator wants a region; no AWS call is made
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return _translated(TEMPLATE)["Resources"]


@pytest.fixture(scope="module")
def edge() -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return _translated(EDGE)["Resources"]


def of_type(resources: dict, rtype: str) -> dict[str, dict]:
    return {k: v for k, v in resources.items() if v["Type"] == rtype}


def test_every_handler_is_observed_under_its_own_stage_name():
    # GIVEN every function's handler module
    for app in sorted((REPO / "functions").glob("*/app.py")):
        # THEN its handler wears observed("<function>") (trace + StageDuration)
        assert f'@observed("{app.parent.name}")' in app.read_text(), app


def test_every_function_and_the_state_machine_are_traced(translated):
    functions = of_type(translated, "AWS::Lambda::Function")
    assert functions and all(f["Properties"].get("TracingConfig") == {"Mode": "Active"} for f in functions.values())
    machine = translated["PipelineStateMachine"]["Properties"]
    assert machine["TracingConfiguration"] == {"Enabled": True}
    # SAM grants the X-Ray writes with Tracing (no hand-written policy to drift)
    roles = of_type(translated, "AWS::IAM::Role")
    role = roles[translated["PipelineStateMachine"]["Properties"]["RoleArn"]["Fn::GetAtt"][0]]
    assert any("AWSXrayWriteOnlyAccess" in json.dumps(arn) for arn in role["Properties"].get("ManagedPolicyArns", []))


def test_every_alarm_notifies_the_one_alarm_topic(translated):
    alarms = of_type(translated, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 10
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = translated["AlarmTopicEmail"]
    assert subscription["Condition"] == "HasAlarmEmail" and subscription["Properties"]["Endpoint"] == {
        "Ref": "AlarmEmail"}


@pytest.mark.parametrize(("namespace", "metric"), [
    ("AWS/States", "ExecutionsFailed"),  # failed executions
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),  # the start function's on-failure queue
    (NAMESPACE, "SlaBreaches"),
    (NAMESPACE, "IndexAge"),  # the index similarity uses is older than two build periods
    (NAMESPACE, "IndexBuilds"),  # or no build succeeded for two periods
])
def test_the_issue_s_alarms_are_in_the_template(translated, namespace, metric):
    found = [a["Properties"] for a in of_type(translated, "AWS::CloudWatch::Alarm").values()
             if (a["Properties"].get("Namespace"), a["Properties"].get("MetricName")) == (namespace, metric)]
    assert found


def test_the_index_age_alarm_fires_past_two_build_periods(translated):
    schedule = TEMPLATE["Resources"]["IndexBuildFunction"]["Properties"]["Events"]["Schedule"]["Properties"]
    minutes = int(re.fullmatch(r"rate\((\d+) minutes\)", schedule["ScheduleExpression"]).group(1))
    assert translated["IndexAgeAlarm"]["Properties"]["Threshold"] == 2 * minutes * 60
    missing = translated["IndexBuildsMissingAlarm"]["Properties"]
    assert missing["Period"] * missing["EvaluationPeriods"] == 2 * minutes * 60
    assert missing["TreatMissingData"] == "breaching"


def test_each_http_api_has_a_5xx_alarm(translated):
    apis = set(of_type(translated, "AWS::ApiGatewayV2::Api"))
    alarmed = {d["Value"]["Ref"] for a in of_type(translated, "AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("MetricName") == "5xx" for d in a["Properties"]["Dimensions"]
               if d["Name"] == "ApiId"}
    assert apis and alarmed == apis


def test_the_start_function_fails_over_to_an_alarmed_queue(translated):
    config = next(r["Properties"] for r in of_type(translated, "AWS::Lambda::EventInvokeConfig").values()
                  if r["Properties"]["FunctionName"] == {"Ref": "StartFunction"})
    queue = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    alarm = translated["StartFailedEventsAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue, "QueueName"]}


def test_alarms_and_the_dashboard_name_only_metrics_the_package_emits(translated):
    emitted = emitted_metrics()
    alarmed = {a["Properties"]["MetricName"] for a in of_type(translated, "AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("Namespace") == NAMESPACE}
    assert alarmed and alarmed <= emitted
    # The dashboard body as the stack renders it: valid JSON, and every custom metric real
    stack = Stack.from_file(REPO / "template.yaml")
    body = json.loads(stack.resolve(TEMPLATE["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]))
    shown = set()
    for widget in body["widgets"]:
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                shown.update(re.findall(r'MetricName=\\?"(\w+)\\?"', row[0]["expression"]))
            elif row[0] == NAMESPACE:
                shown.add(row[1])
    assert {"Decisions", "Rejections", "BankMatches", "StageDuration", "ReviewQueueDepth", "ReviewQueueOldestAge",
            "SlaBreaches", "AppealsOpened", "AppealsDecided", "IndexAge", "WebhookFailures"} <= shown <= emitted


def test_the_edge_stack_alarms_on_lambda_at_edge_errors_into_its_own_topic(edge):
    alarm = edge["EdgeFunctionErrorsAlarm"]["Properties"]
    metrics = {m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]
               for m in alarm["Metrics"] if "MetricStat" in m}
    assert set(metrics) == {"LambdaExecutionError", "LambdaValidationError"}
    for metric in metrics.values():
        assert metric["Namespace"] == "AWS/CloudFront"
        assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
            "DistributionId": {"Ref": "MediaDistribution"}, "Region": "Global"}
    assert alarm["AlarmActions"] == [{"Ref": "EdgeAlarmTopic"}]
    assert edge["EdgeAlarmTopicEmail"]["Condition"] == "HasAlarmEmail"
