"""Deploy template.yaml into moto and run the real state machine with in-process handlers.

Usage::

    with LocalCloud.start() as cloud:
        media_id = cloud.upload(data, "image/jpeg")
        run = cloud.wait(media_id)
        run.status, run.states, cloud.item(media_id)
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import secrets
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from mediaguard import wiring
from mediaguard.ingress.grant import upload_key
from mediaguard.local import concurrency, objectlock, postpolicy
from mediaguard.local.asyncinvoke import AsyncInvoker, async_configs, create_queues, install_s3_delivery
from mediaguard.local.check import check_transitions, render
from mediaguard.local.executions import (
    TerminalWatch,
    cache_json_paths,
    honour_include_execution_data,
    reuse_parsed_programs_and_clients,
    share_botocore_loader,
)
from mediaguard.local.faults import FaultInjector, FaultPlan, FaultStats
from mediaguard.local.ivs import IvsRecorder
from mediaguard.local.schedules import Scheduler
from mediaguard.local.template import ACCOUNT_ID, Stack
from mediaguard.ports import Deps

REPO_ROOT = Path(__file__).resolve().parents[4]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
_FAKE_ZIP = io.BytesIO()
with zipfile.ZipFile(_FAKE_ZIP, "w") as _zf:
    _zf.writestr("app.py", "# local mode runs the real handler in-process\n")


class LocalRuntimeError(RuntimeError):
    pass


@dataclass
class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    memory: int
    arn: str
    _module: ModuleType | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def callable(self):
        with self._lock:
            if self._module is None:
                module_name, _, _ = self.handler.rpartition(".")
                path = self.code_dir / f"{module_name.replace('.', '/')}.py"
                spec = importlib.util.spec_from_file_location(f"mediaguard_fn_{self.logical_id}", path)
                if spec is None or spec.loader is None:
                    raise LocalRuntimeError(f"cannot load handler {self.handler} from {self.code_dir}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._module = module
        return getattr(self._module, self.handler.rpartition(".")[2])


@dataclass
class Invocation:
    function: str
    ms: float
    error: str | None
    message: str | None = None


@dataclass
class PostResult:
    """S3's answer to a browser-style POST upload."""

    status: int
    error_code: str | None
    message: str | None

    @property
    def stored(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ExecutionRun:
    name: str
    status: str
    states: list[str]
    output: dict | None
    ms: float
    invocations: list[Invocation]

    @property
    def handler_ms(self) -> float:
        return sum(i.ms for i in self.invocations)


def _c2pa_dev_signer() -> str:
    """The development C2PA signer as the signing secret's JSON (created on first use)."""
    from mediaguard.genguard.provenance import dev_signing_material
    from mediaguard.local.state import home

    material = dev_signing_material(home())
    return json.dumps({"certificate_chain": material.chain_pem.decode(), "private_key": material.key_pem.decode()})


class LocalCloud:
    """moto in-process, with the template's buckets, tables, functions and state machine."""

    def __init__(self, template: Path = DEFAULT_TEMPLATE, stack_name: str = "mediaguard-local",
                 parameters: dict[str, str] | None = None, faults: FaultPlan | None = None,
                 schedules: float | None = None, metrics: bool | None = None) -> None:
        """``faults``: fail a share of the stack's AWS calls (local/faults.py; off by default).
        ``schedules``: run the template's scheduled functions on their rates, this many
        times faster than AWS (1.0 = real time; None = not at all, as tests mostly want).
        ``metrics``: handlers print their EMF metric lines to stdout, as on Lambda; None
        follows the LogLevel parameter (on at DEBUG/INFO), so a quiet CLI run or a bench
        that prints JSON is not interleaved with telemetry (mediaguard/observability.py)."""
        self.stack = Stack.from_file(template, name=stack_name)
        unknown = set(parameters or {}) - set(self.stack.parameters)
        if unknown:
            raise LocalRuntimeError(f"template has no parameters {sorted(unknown)}")
        if parameters:  # conditions depend on parameters: evaluate them with the overrides
            self.stack = Stack.from_file(template, name=stack_name, parameter_overrides=dict(parameters))
        self.functions: dict[str, FunctionSpec] = {}
        self.invocations: list[Invocation] = []
        self._inv_lock = threading.Lock()
        self._mock = None
        self._original_invoke = None
        self._saved_env: dict[str, str | None] = {}
        self._streams: dict[str, str] = {}  # table logical id -> its stream's ARN
        # S3's clock for POST-policy expiry; replace it to replay a request sent late.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.faults = FaultInjector(faults)
        self.ivs = IvsRecorder()  # IVS calls moto lacks (PutMetadata, StopStream, ...), answered and kept
        # Lambda's async retry waits (about 1 and 2 minutes on AWS), compressed: without a
        # plan, a failing S3 -> start delivery must not hold an upload for three minutes.
        self.time_scale = faults.time_scale if faults else 0.002
        self._schedule_speed = schedules
        level = (parameters or {}).get("LogLevel") or self.stack.parameters.get("LogLevel", "INFO")
        self._metrics = metrics if metrics is not None else str(level).upper() in ("DEBUG", "INFO")
        self.scheduler: Scheduler | None = None
        self._async: AsyncInvoker | None = None
        self._executions = TerminalWatch()
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------
    @classmethod
    def start(cls, template: Path = DEFAULT_TEMPLATE, **kwargs: Any) -> LocalCloud:
        cloud = cls(template, **kwargs)
        cloud._start()
        return cloud

    def __enter__(self) -> LocalCloud:
        if self._mock is None:
            self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    _active: LocalCloud | None = None  # moto's state is process-wide: one local stack at a time

    def _start(self) -> None:
        from moto import mock_aws
        from moto.awslambda.models import LambdaFunction

        if LocalCloud._active is not None:
            raise LocalRuntimeError("another LocalCloud is running in this process; stop it first")
        LocalCloud._active = self

        self._set_env(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": self.stack.region,
                "AWS_REGION": self.stack.region,
                "AWS_PROFILE": None,
                # botocore's standard retry mode (3 attempts, throttling-aware backoff) on every
                # client the stack creates; pynamodb uses standard mode on its own.
                "AWS_RETRY_MODE": "standard",
                "POWERTOOLS_METRICS_DISABLED": "false" if self._metrics else "true",
            }
        )
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        self._original_invoke = LambdaFunction._invoke_lambda
        cloud = self

        def _invoke_in_process(fn_self: Any, event: Any = None) -> tuple[str, bool, str]:
            return cloud._invoke(fn_self.function_name, event)

        LambdaFunction._invoke_lambda = _invoke_in_process
        self._unpatch_s3 = _deliver_s3_events_after_write()
        self._unpatch_executions = self._executions.install()
        self._unpatch_interpreter = reuse_parsed_programs_and_clients()
        self._unpatch_loader = share_botocore_loader()  # moto's per-task threads: one loader
        self._unpatch_paths = cache_json_paths()  # moto re-parses every JSONPath it evaluates
        self._unpatch_history = honour_include_execution_data()  # moto ignores the parameter
        self._unpatch_post = postpolicy.install(lambda: cloud.clock())  # moto enforces no POST policy
        self._unpatch_lock = objectlock.install(lambda: cloud.clock())  # nor Object Lock retention rules
        self._unpatch_ddb = concurrency.serialize_dynamodb()  # moto's transactions race under threads
        self._unpatch_tokens = concurrency.idempotent_transactions()  # and ignore ClientRequestToken
        self._unpatch_snapshots = concurrency.item_level_transaction_snapshots()  # and copy whole tables
        self._unpatch_async = install_s3_delivery(lambda arn, event: cloud._deliver_async(arn, event))
        self.faults.install()
        self._unpatch_ivs = self.ivs.install()  # after faults: an IVS call never meets a fault
        try:
            self._deploy()
            if self._schedule_speed is not None:
                self.scheduler = Scheduler(self.stack, self.invoke_async, speed=self._schedule_speed,
                                           clock=lambda: cloud.clock()).start()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self._mock is None:
            return
        from moto.awslambda.models import LambdaFunction

        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        self._unpatch_ivs()
        self.faults.uninstall()
        self._unpatch_async()
        self._unpatch_lock()
        self._unpatch_snapshots()
        self._unpatch_tokens()
        self._unpatch_ddb()
        LambdaFunction._invoke_lambda = self._original_invoke
        self._unpatch_post()
        self._unpatch_interpreter()
        self._unpatch_loader()
        self._unpatch_paths()
        self._unpatch_history()
        self._unpatch_executions()
        self._unpatch_s3()
        self._mock.stop()
        self._mock = None
        self._clients.clear()  # bound to this mock's endpoints and credentials
        LocalCloud._active = None
        self._restore_env()
        _reset_library_caches()

    def _set_env(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    # -- deployment ------------------------------------------------------------
    def client(self, service: str):
        """One boto3 client per service for this stack, shared by every thread: clients are
        thread-safe, but creating them from boto3's default session is not (concurrent
        ``scan --jobs`` uploads), and each creation costs ~10 ms of orchestration."""
        import boto3

        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=self.stack.region)
            return self._clients[service]

    def _deploy(self) -> None:
        stack = self.stack
        s3 = self.client("s3")
        for logical, resource in stack.of_type("AWS::S3::Bucket").items():
            self._create_bucket(s3, logical, resource.get("Properties", {}))
        ddb = self.client("dynamodb")
        for logical, resource in stack.of_type("AWS::DynamoDB::Table").items():
            props = stack.resolve(resource["Properties"])
            kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode") if k in props}
            for index in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if index in props:
                    kwargs[index] = props[index]
            if "StreamSpecification" in props:
                kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            table = ddb.create_table(TableName=stack.physical_name(logical), **kwargs)["TableDescription"]
            if "LatestStreamArn" in table:
                self._streams[logical] = table["LatestStreamArn"]
        role = self.client("iam").create_role(
            RoleName="mediaguard-local",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        events = self.client("events")
        for logical in stack.of_type("AWS::Events::EventBus"):
            events.create_event_bus(Name=stack.physical_name(logical))
        self._create_secrets()
        create_queues(stack, self.client("sqs"))  # on-failure destinations and DLQs
        self._create_functions(role)
        self._create_notifications(s3)
        self._create_stream_mappings()
        self._create_state_machines(role)

    def _create_secrets(self) -> None:
        """Secrets the template generates (GenerateSecretString), with a random value as
        CloudFormation would, so ``{{resolve:secretsmanager:…}}`` references resolve. A secret
        whose value the operator puts after deploying names a local stand-in in its metadata
        (``LocalValue``): the C2PA signer becomes the development signer of
        ``$MEDIAGUARD_HOME/genguard``, the one ``mediaguard genguard mark|verify`` use."""
        sm = self.client("secretsmanager")
        for logical, resource in self.stack.of_type("AWS::SecretsManager::Secret").items():
            local = (resource.get("Metadata") or {}).get("LocalValue")
            if local == "c2pa-dev-signer":
                value = _c2pa_dev_signer()
            elif local is not None:
                raise LocalRuntimeError(f"{logical}: no local value {local!r}")
            else:
                spec = resource.get("Properties", {}).get("GenerateSecretString", {})
                length = int(spec.get("PasswordLength", 32))
                value = secrets.token_urlsafe(length)[:length]
            sm.create_secret(Name=self.stack.physical_name(logical), SecretString=value)

    def _dynamic_references(self, value: str) -> str:
        def resolve(match: re.Match) -> str:
            return self.client("secretsmanager").get_secret_value(SecretId=match.group(1))["SecretString"]

        return re.sub(r"\{\{resolve:secretsmanager:([^}:]+)\}\}", resolve, value)

    def _create_bucket(self, s3: Any, logical: str, props: dict) -> None:
        bucket = self.stack.physical_name(logical)
        # Object Lock is switched on at creation. Its default retention is left out here:
        # moto then refuses CopyObject without Content-MD5, which real S3 does not ask for.
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=bool(props.get("ObjectLockEnabled")))
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def _create_functions(self, role: str) -> None:
        stack = self.stack
        lam = self.client("lambda")
        env: dict[str, str] = {}
        for logical in stack.of_type("AWS::Serverless::Function"):
            props = stack.resolve(stack.function_properties(logical))
            name = stack.physical_name(logical)
            variables = {k: self._dynamic_references(str(v))
                         for k, v in props.get("Environment", {}).get("Variables", {}).items()}
            for key, value in variables.items():
                # Handlers share this process, so they share os.environ: refuse a template
                # in which two functions need different values for one variable.
                if env.get(key, value) != value:
                    raise LocalRuntimeError(f"functions disagree on {key}; local mode needs one value")
                env[key] = value
            lam.create_function(
                FunctionName=name,
                Runtime=props.get("Runtime", "python3.12"),
                Role=role,
                Handler=props["Handler"],
                Code={"ZipFile": _FAKE_ZIP.getvalue()},
                Timeout=int(props.get("Timeout", 3)),
                MemorySize=int(props.get("MemorySize", 128)),
                Environment={"Variables": variables},
            )
            self.functions[name] = FunctionSpec(
                logical_id=logical,
                name=name,
                code_dir=(stack.root / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                memory=int(props.get("MemorySize", 128)),
                arn=stack.get_att(logical, "Arn"),
            )
        # No X-Ray daemon here, whatever the template's TraceAwsCalls says: no Tracer is built.
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
        self._set_env(env)
        _reset_library_caches()

    def _create_notifications(self, s3: Any) -> None:
        by_bucket: dict[str, list[dict]] = {}
        for logical, resource in self.stack.of_type("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") != "S3":
                    continue
                props = self.stack.resolve(event["Properties"])
                events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
                config = {"LambdaFunctionArn": self.stack.get_att(logical, "Arn"), "Events": events}
                if "Filter" in props:
                    config["Filter"] = {"Key": {"FilterRules": props["Filter"]["S3Key"]["Rules"]}}
                by_bucket.setdefault(props["Bucket"], []).append(config)
        for bucket, configs in by_bucket.items():
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": configs}
            )

    def _create_stream_mappings(self) -> None:
        """DynamoDB stream events as event source mappings: moto then calls the function
        from inside the table write that caused the change, with every record since its
        last successful call (one batch per write, in order)."""
        lam = self.client("lambda")
        for logical, resource in self.stack.of_type("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") != "DynamoDB":
                    continue
                source = event["Properties"]["Stream"]
                table = source.get("Fn::GetAtt", [None])[0] if isinstance(source, dict) else None
                if table not in self._streams:
                    raise LocalRuntimeError(f"{logical}: local mode reads streams as !GetAtt TABLE.StreamArn only")
                lam.create_event_source_mapping(
                    EventSourceArn=self._streams[table], FunctionName=self.stack.physical_name(logical),
                    StartingPosition=event["Properties"].get("StartingPosition", "TRIM_HORIZON"),
                    BatchSize=int(event["Properties"].get("BatchSize", 100)))

    def _create_state_machines(self, role: str) -> None:
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        sfn = self.client("stepfunctions")
        for logical, resource in self.stack.of_type("AWS::Serverless::StateMachine").items():
            props = resource["Properties"]
            definition = render(self.stack, logical)
            # The same parser that will run it, plus the transition check it lacks:
            # a malformed ASL file fails here, loudly, not halfway through a run.
            AmazonStateLanguageParser.parse(definition)
            problems = check_transitions(json.loads(definition))
            if problems:
                raise LocalRuntimeError(f"{logical}: {'; '.join(problems)}")
            sfn.create_state_machine(
                name=self.stack.physical_name(logical),
                definition=definition,
                roleArn=role,
                type=props.get("Type", "STANDARD"),
            )

    # -- invocation ------------------------------------------------------------
    def _invoke(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        spec = self.functions.get(function_name)
        if spec is None:
            return json.dumps({"errorType": "ResourceNotFound", "errorMessage": function_name}), True, ""
        if isinstance(event, str | bytes):
            event = json.loads(event or "{}")
        context = LambdaContext(function_name=spec.name, memory_limit_in_mb=spec.memory,
                                invoked_function_arn=spec.arn)
        t0 = time.perf_counter()
        error = message = None
        try:
            with self.faults.handler_scope():  # the handler's AWS calls are the stack's: faults apply
                result = spec.callable()(event, context)
            payload, errored = json.dumps(result), False
        except Exception as exc:  # noqa: BLE001 - mirrors the Lambda runtime's error envelope
            error, message = type(exc).__name__, str(exc)
            payload = json.dumps(
                {"errorType": error, "errorMessage": str(exc),
                 "stackTrace": traceback.format_exception(exc)[-3:]}
            )
            errored = True
        with self._inv_lock:
            self.invocations.append(Invocation(spec.logical_id, (time.perf_counter() - t0) * 1000, error, message))
        return payload, errored, ""

    # -- asynchronous invocation (S3 notifications, schedules) ---------------------------
    def _deliver_async(self, function: str, event: Any) -> bool:
        with self._clients_lock:  # the first uploads of ``scan --jobs`` arrive together
            if self._async is None:
                configs = async_configs(self.stack)
                by_name = {self.stack.physical_name(k): k for k in configs}
                self._async = AsyncInvoker(
                    self._invoke, configs, by_name.get, lambda: self.client("sqs"),
                    roll_fault=lambda: self.faults.roll("lambda", "Invoke"), stats=self.faults.stats,
                    time_scale=self.time_scale)
        name = function.rsplit(":function:", 1)[-1].split(":", 1)[0]  # an ARN or a name
        return self._async.deliver(name, event)

    def invoke_async(self, logical_id: str, event: dict) -> bool:
        """Invoke a template function the way S3 and the schedulers do (InvocationType
        Event): Lambda's async retries, then its on-failure destination; True if it ran."""
        return self._deliver_async(self.stack.physical_name(logical_id), event)

    @property
    def fault_stats(self) -> FaultStats:
        return self.faults.stats

    # -- using it --------------------------------------------------------------
    def invoke(self, logical_id: str, event: dict) -> Any:
        """Invoke a template function through the Lambda API (as a schedule or a person
        would on AWS); returns its result or raises ``LocalRuntimeError`` with its error type."""
        name = self.stack.physical_name(logical_id)
        response = self.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise LocalRuntimeError(f"{logical_id} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
        return payload

    def output(self, logical: str) -> str:
        return self.stack.ref(logical)

    @property
    def upload_bucket(self) -> str:
        return self.stack.ref("UploadBucket")

    @property
    def state_machine_arn(self) -> str:
        return self.stack.ref("PipelineStateMachine")

    def upload(self, data: bytes, content_type: str, media_id: str | None = None) -> str:
        """Put an upload where a presigned POST would, which fires the S3 notification."""

        media_id = media_id or uuid.uuid4().hex
        self.client("s3").put_object(
            Bucket=self.upload_bucket, Key=upload_key(media_id), Body=data, ContentType=content_type
        )
        return media_id

    def post_upload(self, presigned: dict, data: bytes, content_type: str | None = None) -> PostResult:
        """Upload the way a client does with a presigned POST: the form fields as given,
        the file last. ``content_type`` replaces the form's Content-Type field (what the
        client declares to S3); S3 checks every field against the signed policy."""
        import re

        import requests

        fields = dict(presigned["fields"])
        if content_type is not None:
            fields["Content-Type"] = content_type
        files = {"file": ("upload", data, content_type or fields.get("Content-Type", "application/octet-stream"))}
        response = requests.post(presigned["url"], data=fields, files=files, timeout=60)
        code = re.search(r"<Code>([^<]+)</Code>", response.text)
        message = re.search(r"<Message>([^<]+)</Message>", response.text)
        return PostResult(response.status_code, code.group(1) if code else None,
                          message.group(1) if message else None)

    def wait(self, media_id: str, timeout: float = 300.0) -> ExecutionRun:
        """Wait for the execution named after ``media_id`` and read its history."""
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{media_id}"
        t0 = time.perf_counter()
        try:
            described = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist as exc:
            failed = [f"{i.function}: {i.error}: {i.message}" for i in self.invocations if i.error]
            raise LocalRuntimeError(f"no execution was started for {media_id}; {failed}") from exc
        if described["status"] == "RUNNING":
            # moto's interpreter wakes us when the execution ends (local/executions.py).
            if not self._executions.wait(arn, timeout):
                raise LocalRuntimeError(f"execution {media_id} still running after {timeout}s")
            described = sfn.describe_execution(executionArn=arn)
        states = self._executions.entered(arn)
        if states is None:
            history = sfn.get_execution_history(executionArn=arn, maxResults=1000, includeExecutionData=False)
            states = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]
        start, stop = described["startDate"], described.get("stopDate") or described["startDate"]
        output = json.loads(described["output"]) if described.get("output") else None
        with self._inv_lock:
            invocations = list(self.invocations)
        return ExecutionRun(media_id, described["status"], states, output,
                            max((stop - start).total_seconds() * 1000, (time.perf_counter() - t0) * 1000),
                            invocations)

    def item(self, media_id: str) -> dict | None:
        return wiring.operator_deps().items.get(media_id)

    def deps(self) -> Deps:
        """Every adapter, as the CLI and an operator see the stack."""
        return wiring.operator_deps()

    def set_clock(self, clock: Callable[[], float]) -> None:
        """The clock every stage reads (the matcher's delta refresh): a test lets a minute pass."""
        wiring.set_clock(clock)


def _deliver_s3_events_after_write():
    """Deliver S3 notifications once the request that caused them has finished.

    moto sends ObjectCreated from inside put_object, before the response layer has
    stored the object's Content-Type and metadata; real S3 notifies after the write.
    The event body also gets the fields real S3 sends and moto leaves out
    (``_with_version_id``). Returns the function that undoes the patch.
    """
    from moto.s3 import models as s3_models
    from moto.s3.responses import S3Response

    original_send = s3_models.notifications.send_event
    original_methods = {name: getattr(S3Response, name) for name in ("key_response", "bucket_response")}
    local = threading.local()

    def send_event(*args: Any, **kwargs: Any) -> None:
        pending = getattr(local, "pending", None)
        if pending is None:
            original_send(*args, **kwargs)
        else:
            pending.append((args, kwargs))

    def deferring(method):
        def wrapper(self: Any, *args: Any, **kwargs: Any):
            outer = getattr(local, "pending", None)
            local.pending = []
            try:
                response = method(self, *args, **kwargs)
            finally:
                captured, local.pending = local.pending, outer
            for event_args, event_kwargs in captured:
                send_event(*event_args, **event_kwargs)
            return response

        return wrapper

    s3_models.notifications.send_event = send_event
    for name, method in original_methods.items():
        setattr(S3Response, name, deferring(method))
    original_body = s3_models.notifications._get_s3_event
    s3_models.notifications._get_s3_event = _with_version_id(original_body)

    def undo() -> None:
        s3_models.notifications._get_s3_event = original_body
        s3_models.notifications.send_event = original_send
        for name, method in original_methods.items():
            setattr(S3Response, name, method)

    return undo


def _with_version_id(build: Callable[..., dict]) -> Callable[..., dict]:
    """moto's event body plus the ``versionId`` and ``sequencer`` real S3 puts in
    ``s3.object``: the start stage pins the scanned version from ``versionId``, so an event
    without it would make local mode test a pipeline AWS never runs."""

    def body(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict:
        event = build(event_name, bucket, key, notification_id)
        obj = event["Records"][0]["s3"]["object"]
        # Real S3 sends versionId only for a versioning-enabled bucket (moto says "null" otherwise).
        if getattr(bucket, "is_versioned", False) and key.version_id not in (None, "null"):
            obj["versionId"] = key.version_id
        obj.setdefault("sequencer", f"{time.time_ns():020X}")
        return event

    return body


def _reset_library_caches() -> None:
    """Settings and adapters are cached per process (per warm container on AWS); a new
    local stack must not see the previous one's names."""
    wiring.reset()


__all__ = ["ACCOUNT_ID", "ExecutionRun", "LocalCloud", "LocalRuntimeError"]
