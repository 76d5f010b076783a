"""S3, DynamoDB and Step Functions behind the ports the stages use."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError

from mediaguard.adapters import tables
from mediaguard.adapters.audit import DynamoAuditStore, names_from_settings
from mediaguard.audit.chain import AuditRecord
from mediaguard.models import Upload
from mediaguard.settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


class S3BlobStore:
    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        response = self.client.get_object(Bucket=bucket, Key=key)
        return response["Body"].read(), response.get("ContentType")

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def tag(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        tagset = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        self.client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tagset})

    def get_json(self, bucket: str, key: str) -> Any | None:
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(response["Body"].read())

    def download(self, bucket: str, key: str, path: Path) -> None:
        # boto3's managed transfer: ranged GETs in parallel, which is what makes a 1 GB
        # index arrive in a few seconds on a cold start.
        tmp = path.with_name(path.name + ".part")
        self.client.download_file(bucket, key, str(tmp))
        tmp.replace(path)


class DynamoItemStore:
    def __init__(self, settings: Settings) -> None:
        tables.bind(settings)
        self.settings = settings
        self._audit_store = None

    def create_once(self, upload: Upload) -> bool:
        # The claim token tells this call's own write from another delivery's: when the
        # put reaches DynamoDB but its answer is lost (a timeout), the SDK's retry meets
        # ConditionalCheckFailed against our own item, and must not drop the upload as a
        # duplicate (found by local mode's fault injection: the execution never started).
        token = secrets.token_hex(16)
        item = tables.MediaItem(
            upload.media_id, status="received", upload_bucket=upload.bucket, upload_key=upload.key,
            received_at=_now(), updated_at=_now(), start_claim=token,
        )
        try:
            item.save(
                condition=tables.MediaItem.media_id.does_not_exist() | (tables.MediaItem.status == "start_failed")
            )
            return True
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                current = self.get(upload.media_id)
                return current is not None and current.get("start_claim") == token
            raise

    def mark_start_failed(self, media_id: str) -> None:
        tables.MediaItem(media_id).update(actions=[tables.MediaItem.status.set("start_failed")])

    def update(self, media_id: str, fields: dict[str, Any]) -> None:
        actions = [tables.MediaItem.updated_at.set(_now())]
        for name, value in fields.items():
            attr = getattr(tables.MediaItem, name)
            actions.append(attr.remove() if value is None else attr.set(value))
        tables.MediaItem(media_id).update(actions=actions)

    def get(self, media_id: str) -> dict[str, Any] | None:
        try:
            item = tables.MediaItem.get(media_id, consistent_read=True)
        except tables.MediaItem.DoesNotExist:
            return None
        return item.attribute_values

    def append_audit(self, chain: str, actor: str, event: str, detail: dict) -> AuditRecord:
        """Append to a chain: the record and the chain's head pointer in one transaction."""
        return self._audit().append(chain, actor, event, detail)

    def audit_chain(self, chain: str) -> list[AuditRecord]:
        return self._audit().records(chain)

    def _audit(self):
        # Created on first use: stages that never audit need no audit table names.
        if self._audit_store is None:
            self._audit_store = DynamoAuditStore(names_from_settings(self.settings))
        return self._audit_store


class S3PostPresigner:
    """Presigned POST forms for the upload bucket, signed with the function's own role
    (which therefore needs s3:PutObject on the keys it hands out)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def presign_post(self, bucket: str, key: str, fields: dict[str, str], conditions: list,
                     expires_in: int) -> dict:
        return self.client.generate_presigned_post(Bucket=bucket, Key=key, Fields=fields, Conditions=conditions,
                                                   ExpiresIn=expires_in)


class StepFunctionsWorkflow:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.arn = state_machine_arn

    def start(self, name: str, payload: dict) -> str:
        try:
            response = self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))
        except ClientError as exc:
            # A Standard workflow refuses a second execution of the same name: already running.
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return name
            raise
        return response["executionArn"]


def s3_blob_store(settings: Settings) -> S3BlobStore:
    return S3BlobStore(boto3.client("s3", region_name=settings.region))


def workflow(settings: Settings) -> StepFunctionsWorkflow | None:
    if not settings.state_machine_arn:
        return None
    return StepFunctionsWorkflow(boto3.client("stepfunctions", region_name=settings.region), settings.state_machine_arn)


def s3_post_presigner(settings: Settings) -> S3PostPresigner:
    """SigV4 explicitly: botocore may still sign POST policies with SigV2, which newer
    regions refuse and which S3 has deprecated."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
    return S3PostPresigner(boto3.client("s3", region_name=settings.region, config=config))
