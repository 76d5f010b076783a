"""What one upload costs on AWS, counted from the real API calls the local stack makes.

Images run through the local stack (the real template, state machine and handlers on
moto). Every botocore call a handler makes is counted by operation and attributed to the
function that was running; DynamoDB calls are turned into read/write request units from
the item sizes (read from moto before and after each write); Lambda is billed from each
handler's measured duration (exclusive of nested invocations, rounded up to 1 ms) times
the MemorySize and architecture the template gives that function; Step Functions Express
from the execution's duration in 64 MB x 100 ms steps. The client's own upload PUT is
counted, as its own stage ("Upload"): the bucket owner pays for it; so is the grant that
precedes it (``POST /v1/uploads``: one HTTP API request and the uploads function).

Prices come from ``bench/prices.json`` (region, date and source per price). Steady state:
the stack is warmed with a few uploads of each kind before the measured ones.

    .venv/bin/python -m bench.cost [--stills 20] [--animations 5] [--videos 2] [--json]

Not counted (said so in the output): S3 storage (per GB-month, depends on retention),
data transfer, scheduled functions (digest, SLA, sweep, index build: per hour, not per
image). Handler durations
are measured on this machine (in-process moto, so S3/DynamoDB latency is not included and
the CPU is this machine's, not the share a MemorySize buys): a figure, not a quote.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import resource as rusage
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
EXPRESS_MEMORY_MB = 64  # Express bills memory in 64 MB steps; a pipeline's payloads stay under the first
EXPRESS_STEP_MS = 100
# Lambda writes START, END and REPORT lines for every invocation into the function's log
# group (about 110 + 60 + 190 bytes with ids and figures, read from a deployed function's logs).
LAMBDA_PLATFORM_LOG_BYTES = 360
S3_TIER1 = ("Put", "Copy", "Post", "List", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
            "RestoreObject")
STAGE_UPLOAD, STAGE_ORCHESTRATION = "Upload (client POST)", "Orchestration (Express)"
STAGE_GRANT = "Uploads"  # POST /v1/uploads: API Gateway + the uploads function
EVENT_UPLOADS = Path(__file__).resolve().parents[1] / "events" / "uploads.json"


# --- DynamoDB item sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)
def _value_size(value: dict[str, Any]) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = str(v).lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1  # 1 byte per two significant digits, plus 1
    if kind == "B":
        return len(v if isinstance(v, bytes | bytearray) else base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(_value_size({"N": n}) for n in v)
    if kind == "BS":
        return sum(_value_size({"B": b}) for b in v)
    if kind == "L":
        return 3 + sum(1 + _value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(e) for k, e in v.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, dict[str, Any]] | None) -> int:
    """Bytes DynamoDB bills for an item: attribute names plus values."""
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def _cpu_seconds() -> float:
    """CPU time of this thread plus of the child processes waited for meanwhile (ffmpeg):
    what a handler would take on a core of its own. This machine is shared, so wall time
    would bill other people's load; it misses the persistent exiftool process (~25 ms a
    still, FIELD-NOTES) and any thread a handler starts."""
    children = rusage.getrusage(rusage.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def _units(size: int, step: int) -> int:
    return max(1, math.ceil(size / step))


@dataclass
class Table:
    keys: list[str]
    indexes: list[tuple[list[str], str, list[str]]]  # (index keys, projection type, non-key attributes)


# --- the meter ------------------------------------------------------------------------------------
@dataclass
class Meter:
    """API calls, units and durations, per stage (the function that was running)."""

    calls: Counter = field(default_factory=Counter)  # (stage, service, operation) -> calls
    units: Counter = field(default_factory=Counter)  # (stage, unit) -> amount
    # (logical id, exclusive ms, billed as a request: False for a coalesced stream batch)
    lambda_ms: list[tuple[str, float, bool]] = field(default_factory=list)
    express_ms: list[float] = field(default_factory=list)
    outside: Counter = field(default_factory=Counter)  # calls made by nobody we bill (orchestrator, bench)

    def reset(self) -> None:
        self.calls.clear()
        self.units.clear()
        self.lambda_ms.clear()
        self.express_ms.clear()
        self.outside.clear()


class Recorder:
    """Hooks botocore (every client: boto3's and pynamodb's), the local runtime's handler
    invocation and Python logging; undone by :meth:`uninstall`."""

    def __init__(self, cloud: Any, clock: str = "cpu") -> None:
        self.cloud = cloud
        self.clock = _cpu_seconds if clock == "cpu" else time.perf_counter
        self.meter = Meter()
        self.local = threading.local()
        self.active = False
        self._undo: list[Callable[[], None]] = []
        self.tables = self._tables()
        self.windowed = self._windowed()
        self.tasks = self._tasks()
        self.task_ms = 0.0  # this image's time in the state machine's tasks
        self.image = 0  # the measured upload in flight
        self.seen: set[tuple[int, str]] = set()

    def _tables(self) -> dict[str, Table]:
        stack = self.cloud.stack
        tables = {}
        for logical, resource in stack.of_type("AWS::DynamoDB::Table").items():
            props = stack.resolve(resource["Properties"])
            keys = [k["AttributeName"] for k in props["KeySchema"]]
            indexes = [([k["AttributeName"] for k in gsi["KeySchema"]], gsi["Projection"]["ProjectionType"],
                        gsi["Projection"].get("NonKeyAttributes", []))
                       for gsi in props.get("GlobalSecondaryIndexes", [])]
            tables[stack.physical_name(logical)] = Table(keys, indexes)
        return tables

    def _windowed(self) -> set[str]:
        """Functions fed by a DynamoDB stream with a batching window."""
        stack = self.cloud.stack
        return {logical for logical, resource in stack.of_type("AWS::Serverless::Function").items()
                for event in resource.get("Properties", {}).get("Events", {}).values()
                if event.get("Type") == "DynamoDB"
                and int(event["Properties"].get("MaximumBatchingWindowInSeconds", 0)) > 0}

    def _tasks(self) -> set[str]:
        """Functions the state machine invokes (its DefinitionSubstitutions)."""
        stack = self.cloud.stack
        return {value["Fn::GetAtt"][0] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".")[0]
                for resource in stack.of_type("AWS::Serverless::StateMachine").values()
                for value in resource["Properties"].get("DefinitionSubstitutions", {}).values()
                if isinstance(value, dict) and "Fn::GetAtt" in value}

    # -- where we are ------------------------------------------------------------------------
    @property
    def _stack(self) -> list[list]:
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        return self.local.stack

    def stage(self) -> str | None:
        if getattr(self.local, "stage", None):
            return self.local.stage
        return self._stack[-1][0].removesuffix("Function") if self._stack else None

    @contextmanager
    def as_stage(self, name: str | None) -> Iterator[None]:
        """Calls made here are billed to ``name`` (None: not billed, e.g. the bench polling)."""
        previous = getattr(self.local, "stage", None)
        self.local.stage = name or "-"
        try:
            yield
        finally:
            self.local.stage = previous

    # -- installation ------------------------------------------------------------------------
    def install(self) -> Recorder:
        from botocore.client import BaseClient

        recorder = self
        original_call = BaseClient._make_api_call

        def make_api_call(client: Any, operation: str, params: dict) -> Any:
            if not recorder.active:
                return original_call(client, operation, params)
            service = client.meta.service_model.service_name
            stage = recorder.stage()
            if stage is None or stage == "-":
                recorder.meter.outside[(service, operation)] += 1
                return original_call(client, operation, params)
            before = recorder._before(service, operation, params)
            try:
                response = original_call(client, operation, params)
            except Exception:
                recorder._account(stage, service, operation, params, None, before)
                raise
            recorder._account(stage, service, operation, params, response, before)
            return response

        BaseClient._make_api_call = make_api_call
        self._undo.append(lambda: setattr(BaseClient, "_make_api_call", original_call))

        original_invoke = self.cloud._invoke

        def invoke(function_name: str, event: Any) -> Any:
            spec = recorder.cloud.functions.get(function_name)
            if spec is None or not recorder.active:
                return original_invoke(function_name, event)
            # A stream batch AWS would gather within the function's batching window (the
            # local runtime delivers each write at once): billed as one invocation per image.
            batch = (recorder.image, spec.logical_id)
            coalesced = spec.logical_id in recorder.windowed and batch in recorder.seen
            recorder.seen.add(batch)
            frame = [spec.logical_id, 0.0]  # nested invocations add their time here
            previous = getattr(recorder.local, "stage", None)
            recorder.local.stage = "-" if coalesced else None  # a handler's calls are its own
            recorder._stack.append(frame)
            t0 = recorder.clock()
            try:
                return original_invoke(function_name, event)
            finally:
                elapsed = (recorder.clock() - t0) * 1000
                recorder._stack.pop()
                recorder.local.stage = previous
                if recorder._stack:
                    recorder._stack[-1][1] += elapsed
                recorder.meter.lambda_ms.append((spec.logical_id, elapsed - frame[1], not coalesced))
                if spec.logical_id in recorder.tasks:
                    recorder.task_ms += elapsed - frame[1]

        self.cloud._invoke = invoke
        self._undo.append(lambda: delattr(self.cloud, "_invoke"))

        original_emit = logging.StreamHandler.emit

        def emit(handler: logging.StreamHandler, record: logging.LogRecord) -> None:
            stage = recorder.stage() if recorder.active else None
            if stage and stage != "-":
                try:
                    recorder.meter.units[(stage, "log_bytes")] += len(handler.format(record).encode()) + 1
                except Exception:  # noqa: BLE001 - the handler reports its own formatting errors
                    pass
            original_emit(handler, record)

        logging.StreamHandler.emit = emit
        self._undo.append(lambda: setattr(logging.StreamHandler, "emit", original_emit))
        return self

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    # -- DynamoDB sizes ----------------------------------------------------------------------------
    def _stored(self, table: str, key: dict) -> dict | None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][self.cloud.stack.region]
        try:
            item = backend.get_item(table, key)
        except Exception:  # noqa: BLE001 - no such table or key: nothing stored
            return None
        return item.to_json()["Attributes"] if item is not None else None

    def _key(self, table: str, item: dict) -> dict:
        return {k: item[k] for k in self.tables[table].keys if k in item}

    def _writes(self, operation: str, params: dict) -> list[tuple[str, dict, bool]]:
        """(table, key, transactional) of every item a write call touches."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = params["TableName"]
            key = params["Key"] if "Key" in params else self._key(table, params["Item"])
            return [(table, key, False)]
        if operation == "TransactWriteItems":
            out = []
            for entry in params["TransactItems"]:
                (_, body), = entry.items()
                key = body["Key"] if "Key" in body else self._key(body["TableName"], body["Item"])
                out.append((body["TableName"], key, True))
            return out
        if operation == "BatchWriteItem":
            out = []
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    body = request.get("PutRequest") or request.get("DeleteRequest")
                    key = body["Key"] if "Key" in body else self._key(table, body["Item"])
                    out.append((table, key, False))
            return out
        return []

    def _before(self, service: str, operation: str, params: dict) -> list:
        if service != "dynamodb":
            return []
        return [(t, k, tx, self._stored(t, k)) for t, k, tx in self._writes(operation, params)]

    def _index_units(self, table: str, before: dict | None, after: dict | None) -> int:
        """Write units on the table's GSIs: a projection that appears, changes or goes."""
        spec = self.tables[table]
        units = 0
        for keys, projection, extra in spec.indexes:
            def project(item: dict | None, keys: list[str] = keys, projection: str = projection,
                        extra: list[str] = extra) -> dict | None:
                if item is None or not all(k in item for k in keys):
                    return None
                if projection == "ALL":
                    return item
                names = set(keys) | set(spec.keys) | (set(extra) if projection == "INCLUDE" else set())
                return {k: v for k, v in item.items() if k in names}

            old, new = project(before), project(after)
            if old == new:
                continue
            if old is not None and new is not None and all(old[k] == new[k] for k in keys):
                units += _units(item_size(new), 1024)
            else:
                units += sum(_units(item_size(p), 1024) for p in (old, new) if p is not None)
        return units

    # -- accounting ----------------------------------------------------------------------------------
    def _account(self, stage: str, service: str, operation: str, params: dict, response: dict | None,
                 before: list) -> None:
        meter = self.meter
        meter.calls[(stage, service, operation)] += 1
        if service == "dynamodb":
            for table, key, transactional, old in before:
                new = self._stored(table, key)
                size = max(item_size(old), item_size(new))
                meter.units[(stage, "dynamodb_wru")] += _units(size, 1024) * (2 if transactional else 1)
                meter.units[(stage, "dynamodb_wru")] += self._index_units(table, old, new)
            meter.units[(stage, "dynamodb_rru")] += self._read_units(operation, params, response)
        elif service == "events" and operation == "PutEvents":
            for entry in params.get("Entries", []):
                size = sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
                size += sum(len(r.encode()) for r in entry.get("Resources", [])) + 14  # Time
                meter.units[(stage, "eventbridge_events")] += _units(size, 64 * 1024)
        elif service == "sqs":
            body = params.get("MessageBody", "")
            meter.units[(stage, "sqs_requests")] += _units(len(body.encode()), 64 * 1024) if body else 1

    def _read_units(self, operation: str, params: dict, response: dict | None) -> float:
        def per(size: int, consistent: bool, transactional: bool = False) -> float:
            return _units(size, 4096) * (2.0 if transactional else 1.0 if consistent else 0.5)

        consistent = bool(params.get("ConsistentRead"))
        if operation == "GetItem":
            return per(item_size(self._stored(params["TableName"], params["Key"])), consistent)
        if operation in ("Query", "Scan"):
            items = (response or {}).get("Items", [])
            return per(sum(item_size(i) for i in items), consistent)
        if operation == "BatchGetItem":
            return sum(per(item_size(self._stored(table, key)), bool(spec.get("ConsistentRead")))
                       for table, spec in params["RequestItems"].items() for key in spec["Keys"])
        if operation == "TransactGetItems":
            return sum(per(item_size(self._stored(e["Get"]["TableName"], e["Get"]["Key"])), True, True)
                       for e in params["TransactItems"])
        return 0.0


# --- pricing --------------------------------------------------------------------------------------------
def load_prices() -> dict:
    return json.loads(PRICES_FILE.read_text())


def _usd(prices: dict, service: str, name: str) -> float:
    return float(prices[service][name]["usd"])


def price(meter: Meter, images: int, cloud: Any, prices: dict) -> dict[str, Any]:
    """$ per 1,000 images by service and by stage, plus calls per image by operation."""
    by_service: defaultdict[str, float] = defaultdict(float)
    by_stage: defaultdict[str, float] = defaultdict(float)

    def add(stage: str, service: str, usd: float) -> None:
        by_service[service] += usd
        by_stage[stage] += usd

    for (stage, service, operation), n in meter.calls.items():
        if service == "s3":
            if operation.startswith("Delete"):
                continue
            tier = "put_copy_post_list_per_1000" if operation.startswith(S3_TIER1) else "get_select_other_per_1000"
            add(stage, "S3", n * _usd(prices, "s3", tier) / 1000)
        elif service == "secretsmanager":
            add(stage, "Secrets Manager", n * _usd(prices, "secretsmanager", "api_calls_per_10000") / 10_000)
        elif service == "monitoring" and operation == "PutMetricData":
            add(stage, "CloudWatch", n * _usd(prices, "cloudwatch", "put_metric_data_per_1000") / 1000)
    for (stage, unit), amount in meter.units.items():
        if unit == "dynamodb_wru":
            add(stage, "DynamoDB", amount * _usd(prices, "dynamodb", "write_request_unit_per_million") / 1e6)
        elif unit == "dynamodb_rru":
            add(stage, "DynamoDB", amount * _usd(prices, "dynamodb", "read_request_unit_per_million") / 1e6)
        elif unit == "eventbridge_events":
            add(stage, "EventBridge", amount * _usd(prices, "eventbridge", "custom_events_per_million") / 1e6)
        elif unit == "sqs_requests":
            add(stage, "SQS", amount * _usd(prices, "sqs", "standard_requests_per_million") / 1e6)
        elif unit == "apigateway_requests":
            add(stage, "API Gateway", amount * _usd(prices, "apigateway", "http_api_requests_per_million") / 1e6)
        elif unit == "log_bytes":
            add(stage, "CloudWatch Logs", amount * _usd(prices, "cloudwatch", "logs_ingested_per_gb") / 2**30)
    gb_seconds: Counter = Counter()
    for logical, ms, request in meter.lambda_ms:
        spec = next(s for s in cloud.functions.values() if s.logical_id == logical)
        arch = (cloud.stack.function_properties(logical).get("Architectures") or ["x86_64"])[-1]
        gbs = math.ceil(ms) / 1000 * spec.memory / 1024
        stage = logical.removesuffix("Function")
        gb_seconds[stage] += gbs
        add(stage, "Lambda", gbs * _usd(prices, "lambda", f"gb_second_{arch}")
            + request * _usd(prices, "lambda", "requests_per_million") / 1e6)
        add(stage, "CloudWatch Logs",
            request * LAMBDA_PLATFORM_LOG_BYTES * _usd(prices, "cloudwatch", "logs_ingested_per_gb") / 2**30)
    for ms in meter.express_ms:
        steps = math.ceil(ms / EXPRESS_STEP_MS) * EXPRESS_STEP_MS / 1000
        add(STAGE_ORCHESTRATION, "Step Functions",
            _usd(prices, "stepfunctions_express", "requests_per_million") / 1e6
            + steps * EXPRESS_MEMORY_MB / 1024 * _usd(prices, "stepfunctions_express", "gb_second"))

    def per_1000(values: dict[str, float]) -> dict[str, float]:
        return {k: round(v / images * 1000, 6) for k, v in sorted(values.items(), key=lambda kv: -kv[1])}

    calls = Counter()
    for (_, service, operation), n in meter.calls.items():
        calls[f"{service}.{operation}"] += n
    units = Counter()
    for (_, unit), amount in meter.units.items():
        units[unit] += amount
    invocations = Counter(logical.removesuffix("Function") for logical, _, request in meter.lambda_ms if request)
    return {
        "usd_per_1000": round(sum(by_service.values()) / images * 1000, 6),
        "by_service": per_1000(by_service),
        "by_stage": per_1000(by_stage),
        "_detail": {
            "images": images,
            "calls_per_image": {k: round(v / images, 2) for k, v in sorted(calls.items())},
            "calls_per_image_by_stage": {
                stage: {f"{s}.{o}": round(n / images, 2) for (st, s, o), n in sorted(meter.calls.items())
                        if st == stage}
                for stage in sorted({st for st, _, _ in meter.calls})},
            "units_per_image": {k: round(v / images, 2) for k, v in sorted(units.items())},
            "dynamodb_units_per_image_by_stage": {
                stage: {u: round(meter.units[(stage, u)] / images, 2) for u in ("dynamodb_wru", "dynamodb_rru")}
                for stage in sorted({st for st, u in meter.units if u.startswith("dynamodb")})},
            "invocations_per_image": {k: round(v / images, 2) for k, v in sorted(invocations.items())},
            "lambda_gb_s_per_image": {k: round(v / images, 3) for k, v in sorted(gb_seconds.items())},
            "lambda_ms_median": {
                stage: round(statistics.median(ms for lg, ms, _ in meter.lambda_ms
                                               if lg.removesuffix("Function") == stage), 1)
                for stage in sorted(invocations)},
            "express_ms_median": round(statistics.median(meter.express_ms), 1) if meter.express_ms else None,
            "not_billed_calls": {f"{s}.{o}": n for (s, o), n in sorted(meter.outside.items())},
        },
    }


# --- the run --------------------------------------------------------------------------------------------
def stills(count: int) -> Iterator[tuple[bytes, str]]:
    from bench._media import photo_12mp_jpeg

    for seed in range(count):
        yield photo_12mp_jpeg(seed=100 + seed), "image/jpeg"  # distinct photos: no duplicate shortcut


def animations(count: int) -> Iterator[tuple[bytes, str]]:
    from bench.clips import animated_gif, photos

    for i in range(count):
        yield animated_gif(photos(3, offset=i), frames_each=8), "image/gif"


def videos_60s(count: int) -> Iterator[tuple[bytes, str]]:
    from bench.clips import photos, slideshow

    for i in range(count):
        # 12 scenes of 5 s, 720p H.264 with an AAC track: a phone clip's shape.
        yield slideshow(photos(12, offset=i), seconds_each=5.0, size=(1280, 720), audio=True), "video/mp4"


def measure(cloud: Any, recorder: Recorder, make: Callable[[int], Iterator[tuple[bytes, str]]],
            warm: int, count: int, label: str) -> Meter:
    inputs = list(make(warm + count))
    for data, content_type in inputs[:warm]:
        media_id, form = grant(cloud, data, content_type)
        cloud.post_upload(form, data, content_type)
        run = cloud.wait(media_id)
        if run.status != "SUCCEEDED":
            raise RuntimeError(f"{label}: warm-up upload ended {run.status}: {run.states}")
    recorder.meter.reset()
    recorder.active = True
    try:
        for i, (data, content_type) in enumerate(inputs[warm:], start=1):
            sys.stderr.write(f"\r{label}: {i}/{count}")
            recorder.image += 1
            recorder.task_ms = 0.0
            with recorder.as_stage(None):
                media_id, form = grant(cloud, data, content_type)
            recorder.meter.units[(STAGE_GRANT, "apigateway_requests")] += 1
            # The browser's POST goes to S3 directly (requests, not botocore): counted here.
            recorder.meter.calls[(STAGE_UPLOAD, "s3", "PostObject")] += 1
            if not cloud.post_upload(form, data, content_type).stored:
                raise RuntimeError(f"{label}: the upload POST was refused")
            with recorder.as_stage(None):
                run = cloud.wait(media_id)
                if run.status != "SUCCEEDED" or "Done" not in run.states:
                    raise RuntimeError(f"{label}: {media_id} ended {run.status}: {run.states}")
                # An execution lasts as long as its tasks plus Step Functions' own transitions;
                # with --clock cpu the tasks' time (a Map's parallel batches summed: an upper
                # bound), since this shared machine's wall time is not what AWS would take.
                recorder.meter.express_ms.append(
                    recorder.task_ms if recorder.clock is _cpu_seconds else _execution_ms(cloud, media_id))
        sys.stderr.write("\n")
    finally:
        recorder.active = False
    meter, recorder.meter = recorder.meter, Meter()
    return meter


def grant(cloud: Any, data: bytes, content_type: str) -> tuple[str, dict]:
    """``POST /v1/uploads`` as API Gateway delivers it (the sample event, a JWT-authorised
    uploader): the media id and the presigned POST form."""
    event = json.loads(EVENT_UPLOADS.read_text())
    event["body"] = json.dumps({"content_type": content_type, "content_length": len(data), "reach": 1200})
    response = cloud.client("lambda").invoke(FunctionName=cloud.stack.physical_name("UploadsFunction"),
                                             Payload=json.dumps(event).encode())
    result = json.loads(response["Payload"].read())
    if result.get("statusCode") != 201:
        raise RuntimeError(f"upload grant refused: {result}")
    body = json.loads(result["body"])
    return body["media_id"], body["upload"]


def _execution_ms(cloud: Any, media_id: str) -> float:
    arn = cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{media_id}"
    described = cloud.client("stepfunctions").describe_execution(executionArn=arn)
    return (described["stopDate"] - described["startDate"]).total_seconds() * 1000


def run(stills_n: int, animations_n: int, videos_n: int, warm: int, clock: str = "cpu") -> dict[str, Any]:
    from mediaguard.local.runtime import LocalCloud

    prices = load_prices()
    results: dict[str, Any] = {}
    with LocalCloud(parameters={"LogLevel": "INFO"}) as cloud:
        recorder = Recorder(cloud, clock).install()
        try:
            plan = [("still", stills, stills_n), ("animation", animations, animations_n),
                    ("video_60s", videos_60s, videos_n)]
            for label, make, count in plan:
                if count > 0:
                    meter = measure(cloud, recorder, make, warm if label == "still" else 1, count, label)
                    results[label] = price(meter, count, cloud, prices)
        finally:
            recorder.uninstall()
    results["prices"] = prices
    return results


def render(results: dict[str, Any]) -> str:
    prices = results["prices"]
    lines = [f"prices: {prices['region']}, list prices read {prices['date']} (bench/prices.json)"]
    lines.append(f"Lambda duration: handler {results.get('clock', 'cpu')} time, exclusive of nested invocations")
    for label in ("still", "animation", "video_60s"):
        if label not in results:
            continue
        r, d = results[label], results[label]["_detail"]
        lines.append(f"\n{label}: ${r['usd_per_1000']:.4f} per 1,000 ({d['images']} measured, steady state)")
        lines.append("  by service ($/1,000):")
        lines += [f"    {k:<26} {v:9.5f}" for k, v in r["by_service"].items()]
        lines.append("  by stage ($/1,000):")
        lines += [f"    {k:<26} {v:9.5f}" for k, v in r["by_stage"].items()]
        lines.append("  calls per image: " + ", ".join(f"{k} {v:g}" for k, v in d["calls_per_image"].items()))
        lines += [f"    {stage}: " + ", ".join(f"{k} {v:g}" for k, v in calls.items())
                  for stage, calls in d["calls_per_image_by_stage"].items()]
        lines.append("  units per image: " + ", ".join(f"{k} {v:g}" for k, v in d["units_per_image"].items()))
        lines += [f"    {stage}: WRU {u['dynamodb_wru']:g}, RRU {u['dynamodb_rru']:g}"
                  for stage, u in d["dynamodb_units_per_image_by_stage"].items()]
        lines.append("  Lambda per image (invocations / GB-s / median ms): " + ", ".join(
            f"{k} {d['invocations_per_image'][k]:g}/{d['lambda_gb_s_per_image'][k]:g}/{d['lambda_ms_median'][k]:g}"
            for k in d["invocations_per_image"]))
        lines.append(f"  Express median duration: {d['express_ms_median']} ms")
        if d["not_billed_calls"]:
            lines.append("  calls not billed (orchestrator, bench, coalesced stream batches): "
                         + ", ".join(f"{k} {v}" for k, v in d["not_billed_calls"].items()))
    lines.append("\nCounted: the client's upload PUT (S3 POST), the upload grant (API Gateway HTTP API + the "
                 "uploads function), every handler API call, Lambda requests and GB-s, Express, log ingestion. "
                 "Not counted: S3 storage, data transfer, scheduled functions.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stills", type=int, default=20)
    parser.add_argument("--animations", type=int, default=5)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--warm", type=int, default=3, help="stills uploaded before measuring (1 of each other kind)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="handler duration: its thread's CPU time (default; this machine is shared) or wall time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from mediaguard.cli.scan import Out

    out = Out()
    with out.quiet_stdout():  # handler logs go to stderr; the figures to stdout
        results = run(args.stills, args.animations, args.videos, args.warm, args.clock)
    results["clock"] = args.clock
    if args.json:
        public = {k: ({key: v[key] for key in ("usd_per_1000", "by_service", "by_stage")} if k != "prices" else v)
                  for k, v in results.items() if k != "clock"}
        out.line(json.dumps(public, default=lambda o: float(o) if isinstance(o, Decimal) else str(o)))
    else:
        out.line(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
