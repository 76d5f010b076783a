"""DynamoDB and S3 behind the governance features: the report's reads, legal orders, item
lookups by hash or uploader, evidence export and erasure (``mediaguard.decisions.{report,
legal, evidence, erasure}``).

The report and the lookups Scan: they run on demand (an admin's report, an order, an erasure
request), not per upload, and a Scan per table is cheaper than an index every upload would
pay to write. Rows are read as plain values (``boto3`` resource deserialisation) rather than
through the pynamodb models, so fields another part of the stack adds (the QA lane's
``automated_action``/``reviewer_action``) are read without a model change here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import yaml
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import BotoCoreError, ClientError

from mediaguard.adapters import tables
from mediaguard.adapters.audit import DynamoAuditStore, names_from_settings
from mediaguard.adapters.aws import DynamoItemStore, s3_blob_store
from mediaguard.adapters.enforcement import S3BlobCustody, enforcement_ports
from mediaguard.adapters.geofence import DynamoGeofence
from mediaguard.adapters.history import DynamoHistory
from mediaguard.adapters.review import make_task_queue
from mediaguard.adapters.secrets import uploader_pseudonymiser
from mediaguard.decisions import evidence
from mediaguard.decisions.erasure import ErasurePorts
from mediaguard.decisions.legal import LegalOrder, LegalPorts
from mediaguard.decisions.report import Period, build_report
from mediaguard.decisions.review.models import QA_REASON
from mediaguard.decisions.review.settings import get_review_settings
from mediaguard.ingress import grant
from mediaguard.ports import Deps
from mediaguard.settings import Settings, get_settings

_TIMES = ("received_at", "enqueued_at", "decided_at", "created_at", "handled_at", "due_at")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def _row(item: dict[str, Any]) -> dict[str, Any]:
    row = _plain(item)
    for name in _TIMES:
        if isinstance(row.get(name), str):
            row[name] = datetime.fromisoformat(row[name])
    for name in ("provenance", "enforcement"):  # pynamodb JSONAttribute: stored as a JSON string
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


@dataclass
class StackTables:
    """Table names of one stack (local or deployed) and a DynamoDB resource for them."""

    settings: Settings
    review_table: str | None
    appeals_table: str | None

    def __post_init__(self) -> None:
        self.ddb = boto3.resource("dynamodb", region_name=self.settings.region)

    def scan(self, table: str | None, filter_expression: Any = None) -> Iterator[dict[str, Any]]:
        if not table:
            return
        kwargs: dict[str, Any] = {"FilterExpression": filter_expression} if filter_expression is not None else {}
        resource = self.ddb.Table(table)
        while True:
            page = resource.scan(**kwargs)
            for item in page.get("Items", []):
                yield _row(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoReportSource:
    """``decisions.report.ReportSource`` and ``QaOutcomes`` over one stack's tables."""

    def __init__(self, stack: StackTables, geofence: Any, orders: DynamoLegalOrders | None) -> None:
        self.stack, self.geofence, self.orders = stack, geofence, orders

    def items(self) -> Iterable[dict[str, Any]]:
        return self.stack.scan(self.stack.settings.media_table)

    def tasks(self) -> Iterable[dict[str, Any]]:
        return self.stack.scan(self.stack.review_table)

    def appeals(self) -> Iterable[dict[str, Any]]:
        return self.stack.scan(self.stack.appeals_table)

    def audit_events(self, events: frozenset[str]) -> Iterable[dict[str, Any]]:
        for row in self.stack.scan(self.stack.settings.audit_table, Attr("event").is_in(sorted(events))):
            yield {"chain": row["chain"], "at": row["at"], "event": row["event"], "detail": json.loads(row["detail"])}

    def legal_orders(self) -> Iterable[dict[str, Any]]:
        return [o.model_dump() for o in self.orders.list()] if self.orders is not None else []

    def geofence_rules(self) -> Iterable[dict[str, Any]]:
        now = datetime.now(UTC)
        return [rule.view(now) for rule in self.geofence.list()] if self.geofence is not None else []

    def qa_outcomes(self, start: datetime, end: datetime) -> list[tuple[str, str]]:
        """Decided quality samples in the period as (automated, reviewer) actions, read as
        ``decisions.review.quality`` stores them: the task's ``action`` is the automated one,
        ``decision_action`` the reviewer's; escalated and withdrawn samples are not outcomes."""
        out = []
        for task in self.stack.scan(self.stack.review_table, Attr("reason").eq(QA_REASON) & Attr("state").eq("decided")):
            decided, automated, reviewer = task.get("decided_at"), task.get("action"), task.get("decision_action")
            if decided is None or not automated or reviewer in (None, "escalate", "withdrawn"):
                continue
            if start <= decided < end:
                out.append((str(automated), str(reviewer)))
        return out


class DynamoLegalOrders:
    """``decisions.legal.LegalOrderStore`` on the legal orders table."""

    def __init__(self, settings: Settings) -> None:
        if not settings.legal_table:
            raise ValueError("no legal orders table configured (LEGAL_TABLE)")
        tables.bind(settings)

    def put(self, order: LegalOrder) -> None:
        tables.LegalOrderItem(order.order_id, order=order.model_dump(mode="json"),
                              updated_at=datetime.now(UTC)).save()

    def get(self, order_id: str) -> LegalOrder | None:
        try:
            return LegalOrder.model_validate(tables.LegalOrderItem.get(order_id, consistent_read=True).order)
        except tables.LegalOrderItem.DoesNotExist:
            return None

    def list(self) -> list[LegalOrder]:
        orders = [LegalOrder.model_validate(row.order) for row in tables.LegalOrderItem.scan()]
        return sorted(orders, key=lambda o: o.received_at)


class DynamoItemFinder:
    """``decisions.legal.ItemFinder``: filtered Scans. Who uploaded an item is the actor of
    the ``upload_granted`` record on its grant chain (``ingress.grant``), so an uploader's
    items are found by keying each grant's subject and comparing keys: the finder never
    needs (or keeps) the platform id an order or erasure request was made with."""

    def __init__(self, stack: StackTables, pseudonymiser: Any = None) -> None:
        self.stack, self.pseudonymiser = stack, pseudonymiser

    def by_sha256(self, digests: list[str]) -> list[str]:
        return [row["media_id"] for row in self.stack.scan(self.stack.settings.media_table,
                                                           Attr("sha256").is_in(list(digests)))]

    def by_uploader(self, key: str) -> list[str]:
        found = set()
        if self.pseudonymiser is not None:
            for row in self.stack.scan(self.stack.settings.audit_table, Attr("event").eq(grant.GRANTED)):
                actor, chain = row.get("actor", ""), row.get("chain", "")
                if (actor.startswith(grant.CLIENT_ACTOR_PREFIX) and chain.startswith(grant.GRANT_CHAIN_PREFIX)
                        and self.pseudonymiser.key(actor[len(grant.CLIENT_ACTOR_PREFIX):]) == key):
                    found.add(chain[len(grant.GRANT_CHAIN_PREFIX):])
        found |= {row["media_id"] for row in self.stack.scan(self.stack.settings.media_table,
                                                              Attr("uploader").eq(key))}
        return sorted(found)


class DynamoAppealsEraser:
    """Replaces the platform id on an uploader's appeals with ``erased:<key>`` (the appeal and
    its outcome stay: they are part of the item's decision record)."""

    def __init__(self, stack: StackTables) -> None:
        self.stack = stack

    def pseudonymise(self, uploader_id: str, key: str) -> int:
        if not self.stack.appeals_table:
            return 0
        table = self.stack.ddb.Table(self.stack.appeals_table)
        changed = 0
        for row in self.stack.scan(self.stack.appeals_table, Attr("uploader").eq(uploader_id)):
            table.update_item(Key={"appeal_id": row["appeal_id"]}, UpdateExpression="SET uploader = :k",
                              ExpressionAttributeValues={":k": f"erased:{key}"})
            changed += 1
        return changed


# --- one stack, local or deployed -------------------------------------------------------------------

# Logical id in template.yaml -> the Settings field naming it.
STACK_RESOURCES = {
    "MediaTable": "media_table", "AuditTable": "audit_table", "AuditHeadTable": "audit_head_table",
    "GeofenceTable": "geofence_table", "LegalOrdersTable": "legal_table", "HistoryTable": "history_table",
    "MediaBucket": "media_bucket", "UploadBucket": "upload_bucket", "EvidenceBucket": "evidence_bucket",
    "DigestBucket": "digest_bucket", "UploaderKeySecret": "uploader_key_secret_arn",
}


class TargetError(RuntimeError):
    """The stack (or the local configuration) does not name what a command needs."""


@dataclass
class Target:
    """Where a governance command reads and writes: resource names, and the stack's parameters
    (template defaults overridden by what the stack was deployed with)."""

    settings: Settings
    review_table: str | None
    appeals_table: str | None
    parameters: dict[str, str]
    where: str


def local_target() -> Target:
    """The environment's stack (a function, a running ``mediaguard serve``, a test's LocalCloud)."""
    settings, review = get_settings(), get_review_settings()
    if not settings.media_table:
        raise TargetError("no stack configured: start `mediaguard serve` or give --stack NAME")
    return Target(settings, review.review_table, review.appeals_table, template_defaults(), "local stack")


def stack_target(stack: str, region: str | None = None) -> Target:
    """A deployed stack's physical names and parameters, from CloudFormation."""
    cfn = boto3.client("cloudformation", region_name=region)
    try:
        resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                     for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
                     for r in page["StackResourceSummaries"]}
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as exc:
        raise TargetError(f"stack {stack}: {type(exc).__name__}") from exc
    fields = {field: resources[logical] for logical, field in STACK_RESOURCES.items() if logical in resources}
    settings = Settings(region=cfn.meta.region_name, **fields)
    parameters = {**template_defaults(),
                  **{p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}}
    return Target(settings, resources.get("ReviewTable"), resources.get("AppealsTable"), parameters,
                  f"stack {stack} ({cfn.meta.region_name})")


def template_defaults() -> dict[str, str]:
    """Parameter defaults of the template this package ships with (local mode deploys them)."""
    # The repository's template (mediaguard.local.runtime.DEFAULT_TEMPLATE, not imported: it
    # loads moto's helpers). In a Lambda the file is absent and the stack's values are used.
    template = Path(__file__).resolve().parents[4] / "template.yaml"
    if not template.exists():
        return {}
    # Only the Parameters section, read as plain YAML: the section uses no intrinsic tags.
    text = template.read_text(encoding="utf-8")
    start = text.index("\nParameters:\n")
    end = min(i for i in (text.find("\nConditions:\n", start), text.find("\nRules:\n", start),
                          text.find("\nGlobals:\n", start)) if i > 0)
    params = yaml.safe_load(text[start:end]).get("Parameters", {})
    return {name: str(spec["Default"]) for name, spec in params.items() if "Default" in spec}


@dataclass
class Governance:
    """Every governance feature over one ``Target``; the CLI and the admin API build one."""

    target: Target

    def __post_init__(self) -> None:
        settings = self.target.settings
        self.tables = StackTables(settings, self.target.review_table, self.target.appeals_table)
        self.items = DynamoItemStore(settings)
        self.blobs = s3_blob_store(settings)
        self._deps: Any = None

    @property
    def deps(self) -> Any:
        if self._deps is None:
            settings = self.target.settings
            ports = (enforcement_ports(settings, review=make_task_queue(settings, self.items))
                     if settings.evidence_bucket else None)
            self._deps = Deps(settings=settings, blobs=self.blobs, items=self.items, enforcement=ports)
        return self._deps

    def pseudonymiser(self) -> Any:
        return uploader_pseudonymiser(self.target.settings)

    def geofence(self) -> Any:
        return DynamoGeofence(self.target.settings) if self.target.settings.geofence_table else None

    def orders(self) -> DynamoLegalOrders | None:
        return DynamoLegalOrders(self.target.settings) if self.target.settings.legal_table else None

    def finder(self) -> DynamoItemFinder:
        return DynamoItemFinder(self.tables, self.pseudonymiser())

    def report_source(self) -> DynamoReportSource:
        return DynamoReportSource(self.tables, self.geofence(), self.orders())

    def report(self, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
        source = self.report_source()
        return build_report(source, source, Period(start, end), now or datetime.now(UTC))

    def legal_ports(self) -> Any:
        orders, rules = self.orders(), self.geofence()
        if orders is None or rules is None:
            raise TargetError("this stack has no legal orders or geofence table (LEGAL_TABLE, GEOFENCE_TABLE)")
        return LegalPorts(orders=orders, geofence=rules, finder=self.finder(), deps=self.deps,
                          pseudonymiser=self.pseudonymiser())

    def erasure_ports(self) -> Any:
        settings, keys = self.target.settings, self.pseudonymiser()
        if keys is None:
            raise TargetError("erasure needs the uploader key (MEDIAGUARD_UPLOADER_KEY or its secret)")
        history = DynamoHistory(settings.history_table, settings.region, keys) if settings.history_table else None
        return ErasurePorts(items=self.items, custody=S3BlobCustody(boto3.client("s3", region_name=settings.region)),
                            finder=self.finder(), orders=self.orders() or _NoOrders(), pseudonymiser=keys,
                            media_bucket=settings.media_bucket or "", history=history,
                            appeals=DynamoAppealsEraser(self.tables))

    def export_evidence(self, media_id: str, who: str) -> bytes:
        """The evidence package of one item (``decisions.evidence``), audited as ``evidence_exported``."""
        settings = self.target.settings
        item = self.items.get(media_id)
        if item is None:
            raise LookupError(f"no item {media_id}")
        files, sources = {}, {}
        preserved = {e["role"]: e for e in (item.get("enforcement") or {}).get("evidence", [])
                     if e.get("state") == "preserved"}
        for role, live in (("original", (item.get("upload_bucket"), item.get("upload_key"),
                                         item.get("upload_version_id"))),
                           ("sanitized", (settings.media_bucket, item.get("sanitized_key"), None))):
            if role in preserved and settings.evidence_bucket:
                entry = preserved[role]
                where = (settings.evidence_bucket, entry["evidence_key"], entry.get("evidence_version_id"))
            else:
                where = live
            bucket, key, version = where
            if not bucket or not key:
                continue
            files[role], _ = self.blobs.get(bucket, key, version)
            sources[role] = f"s3://{bucket}/{key}" + (f"?versionId={version}" if version else "")
        store = DynamoAuditStore(names_from_settings(settings))
        snapshot = store.snapshot(media_id)
        state = snapshot.chains.get(media_id)
        records = list(state.records) if state else []
        anchor = evidence.find_anchor(snapshot.archive, media_id)
        if anchor is not None:
            anchor["bucket"] = settings.digest_bucket
        package = evidence.build_package(evidence.PackageInputs(
            media_id=media_id, exported_at=datetime.now(UTC).isoformat(), files=files, sources=sources,
            records=records, anchor=anchor,
            recorded_original_sha256=evidence.recorded_original_sha256(records, item.get("sha256"))))
        self.items.append_audit(media_id, who, "evidence_exported", {
            "package_sha256": hashlib.sha256(package).hexdigest(), "files": sorted(files),
            "anchored_seq": anchor["digest"]["heads"][media_id][0] if anchor else None})
        return package


class _NoOrders:
    def list(self) -> list[LegalOrder]:
        return []

    def get(self, order_id: str) -> None:
        return None

    def put(self, order: LegalOrder) -> None:
        raise TargetError("this stack has no legal orders table")
