"""Geofence rule stores: the stack's DynamoDB table (what the edge reads) and a local JSON file.

Both hold the same item shape (``GeoRule.to_item``), and the CLI drives both through the
same ``mediaguard.decisions.geofence.GeofenceStore`` calls.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, PutError

from mediaguard.adapters import tables
from mediaguard.decisions.geofence import GeoRule, parse_scope, sort_rules
from mediaguard.settings import Settings


def _stored_rule(fields: dict[str, Any]) -> GeoRule:
    """A rule as read back: not validated again, so a row written by hand is still listed
    (and removable) rather than hiding from the operator while the edge enforces it."""
    expires = fields.get("expires_at")
    return GeoRule.model_construct(
        country=str(fields["country"]).upper(), scope=str(fields["scope"]),
        legal_reference=str(fields.get("legal_reference") or ""),
        expires_at=int(expires) if expires is not None else None, created_at=fields.get("created_at"))


class DynamoGeofence:
    """The geofence table of a deployed stack, read by the edge viewer-request function."""

    def __init__(self, settings: Settings) -> None:
        if not settings.geofence_table:
            raise ValueError("GEOFENCE_TABLE is not configured")
        tables.GeofenceRule.Meta.table_name = settings.geofence_table
        tables.GeofenceRule.Meta.region = settings.region
        tables.GeofenceRule._connection = None

    def list(self) -> list[GeoRule]:
        return sort_rules([_stored_rule(row.attribute_values) for row in tables.GeofenceRule.scan()])

    def add(self, rule: GeoRule, *, replace: bool = False) -> bool:
        row = tables.GeofenceRule(rule.country, rule.scope, legal_reference=rule.legal_reference,
                                  expires_at=rule.expires_at, created_at=rule.created_at or datetime.now(UTC))
        try:
            row.save(condition=None if replace else tables.GeofenceRule.scope.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove(self, country: str, scope: str) -> bool:
        try:
            tables.GeofenceRule(country, scope).delete(condition=tables.GeofenceRule.scope.exists())
        except DeleteError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # The calls of the class this one replaces (mediaguard.adapters.aws.DynamoGeofence), kept
    # so its callers move by changing an import. Same validation, no future-expiry check:
    # tests write lapsed rules on purpose.
    def put(self, country: str, legal_reference: str, scope: str = "global",
            expires_at: datetime | None = None) -> None:
        self.add(GeoRule(country=country, scope=parse_scope(scope).stored, legal_reference=legal_reference,
                         expires_at=int(expires_at.timestamp()) if expires_at else None,
                         created_at=datetime.now(UTC)), replace=True)

    def delete(self, country: str, scope: str = "global") -> None:
        self.remove(country.upper(), parse_scope(scope).stored)


class JsonGeofence:
    """Rules in a JSON file (``<home>/geofence.json``) for local use: same items, no AWS.

    Writes go to a temporary file that replaces the old one, so a crash never leaves a
    half-written store. One operator at a time: there is no lock between processes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[tuple[str, str], dict[str, Any]]:
        if not self.path.exists():
            return {}
        rows = json.loads(self.path.read_text())["rules"]
        return {(r["country"], r["scope"]): r for r in rows}

    def _write(self, rows: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"rules": [rows[k] for k in sorted(rows)]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".geofence-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(body, handle, indent=2, ensure_ascii=False)
                handle.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def list(self) -> list[GeoRule]:
        rules = []
        for row in self._read().values():
            created = row.get("created_at")
            rules.append(_stored_rule({**row, "created_at": datetime.fromisoformat(created) if created else None}))
        return sort_rules(rules)

    def add(self, rule: GeoRule, *, replace: bool = False) -> bool:
        rows = self._read()
        key = (rule.country, rule.scope)
        if key in rows and not replace:
            return False
        item = rule.to_item()
        item["created_at"] = (rule.created_at or datetime.now(UTC)).astimezone(UTC).isoformat()
        rows[key] = item
        self._write(rows)
        return True

    def remove(self, country: str, scope: str) -> bool:
        rows = self._read()
        if rows.pop((country, scope), None) is None:
            return False
        self._write(rows)
        return True


def default_region() -> str | None:
    """The region the caller's AWS configuration names (AWS_REGION, profile), if any."""
    return boto3.session.Session().region_name


def stack_table(stack: str, region: str) -> str:
    try:
        response = boto3.client("cloudformation", region_name=region).describe_stack_resource(
            StackName=stack, LogicalResourceId="GeofenceTable")
    except ClientError as exc:
        raise _target_error(f"stack {stack} in {region}: {exc.response['Error'].get('Message', 'not found')}") from None
    except BotoCoreError as exc:  # no credentials, no network
        raise _target_error(f"stack {stack} in {region}: {exc}") from None
    return response["StackResourceDetail"]["PhysicalResourceId"]


class TargetError(Exception):
    """The store could not be reached: no such stack, no table in it, no credentials."""


def _target_error(message: str) -> Exception:
    return TargetError(message)
