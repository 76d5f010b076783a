"""S3, DynamoDB and Step Functions behind the ports the stages use."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pynamodb.exceptions import UpdateError

from mediaguard.adapters import tables
from mediaguard.adapters.audit import DynamoAuditStore, names_from_settings
from mediaguard.audit.chain import AuditRecord
from mediaguard.errors import MediaguardError, ObjectMissingError, SupersededRunError
from mediaguard.models import Upload, run_name
from mediaguard.settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


# Partitions of the sparse start_pending index: a burst of uploads writes four, not one.
START_SHARDS = 4


def start_shard(run: str) -> int:
    return int.from_bytes(sha256(run.encode()).digest()[:4], "big") % START_SHARDS


class S3BlobStore:
    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, bucket: str, key: str, version_id: str | None = None) -> tuple[bytes, str | None]:
        version = {"VersionId": version_id} if version_id else {}
        try:
            response = self.client.get_object(Bucket=bucket, Key=key, **version)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404"):
                raise ObjectMissingError(f"{key} ({version_id or 'latest'}) does not exist") from exc
            raise
        return response["Body"].read(), response.get("ContentType")

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def sha256(self, bucket: str, key: str, version_id: str | None = None) -> tuple[str, int]:
        version = {"VersionId": version_id} if version_id else {}
        try:
            response = self.client.get_object(Bucket=bucket, Key=key, **version)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404"):
                raise ObjectMissingError(f"{key} ({version_id or 'latest'}) does not exist") from exc
            raise
        digest, size = sha256(), 0  # hashlib's, not this method
        for chunk in response["Body"].iter_chunks(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def tag(self, bucket: str, key: str, tags: dict[str, str], version_id: str | None = None) -> None:
        tagset = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        version = {"VersionId": version_id} if version_id else {}
        try:
            self.client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tagset}, **version)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404"):
                raise ObjectMissingError(f"{key} ({version_id or 'latest'}) does not exist") from exc
            raise

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

    def create_once(self, upload: Upload, uploader_key: str | None = None) -> str | None:
        m = tables.MediaItem
        version = upload.version_id
        # The claim token tells this call's own write from another delivery's: when the
        # update reaches DynamoDB but its answer is lost (a timeout), the SDK's retry meets
        # ConditionalCheckFailed against our own item, and must not drop the upload as a
        # duplicate (found by local mode's fault injection: the execution never started).
        token = secrets.token_hex(16)
        # First delivery: the item is new and its run takes the media id's name. A later one
        # (S3's retry after a failed start) gets a new name: the failed attempt's execution
        # may exist after all (an ambiguous StartExecution error), and must lose the claim.
        # A retry must carry the pinned version: another version of the key is a
        # replacement (``record_replacement``), never a restart.
        same_version = m.upload_version_id.does_not_exist() | (m.upload_version_id == version) if version else None
        retry = (m.status == "start_failed") & same_version if version else m.status == "start_failed"
        for condition, run in ((m.media_id.does_not_exist(), run_name(upload.media_id, first=True)),
                               (retry, run_name(upload.media_id))):
            now = _now()
            pinned = [m.upload_version_id.set(version)] if version else []
            # In the same write: the uploader's key costs no write of its own.
            pinned += [m.uploader.set(uploader_key)] if uploader_key else []
            try:
                m(upload.media_id).update(actions=[
                    m.status.set("received"), m.upload_bucket.set(upload.bucket), m.upload_key.set(upload.key),
                    *pinned, m.received_at.set(m.received_at | now), m.updated_at.set(now),
                    m.start_claim.set(token), *self._pending_run(run, now)],
                    condition=condition)
                return run
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                if self._holds_claim(upload.media_id, token):
                    return run
        return None

    @staticmethod
    def _holds_claim(media_id: str, token: str) -> bool:
        """Whether this call's own write created the run: a conditional no-op rather than a
        read, because the start function's role may update the item but not read it."""
        m = tables.MediaItem
        try:
            m(media_id).update(actions=[m.updated_at.set(_now())], condition=m.start_claim == token)
            return True
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise

    @staticmethod
    def _pending_run(run: str, now: datetime) -> list:
        m = tables.MediaItem
        return [m.run.set(run), m.runs.add(1), m.start_pending.set(start_shard(run)), m.start_requested_at.set(now)]

    def record_replacement(self, media_id: str, version_id: str) -> bool:
        # One conditional write answers "is this another version?" atomically: the start
        # function's role may update the item but not read it.
        item = tables.MediaItem
        try:
            item(media_id).update(
                actions=[item.replaced_versions.add({version_id}), item.updated_at.set(_now())],
                condition=item.upload_version_id.exists() & (item.upload_version_id != version_id),
            )
            return True
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise

    def mark_start_failed(self, media_id: str, run: str | None = None) -> None:
        m = tables.MediaItem
        condition = None if run is None else (m.run == run) & m.start_pending.exists()
        try:
            m(media_id).update(actions=[m.status.set("start_failed"), m.updated_at.set(_now())], condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            # The run's execution claimed the item meanwhile: it started after all.

    def claim_run(self, media_id: str, run: str, execution: str) -> bool:
        m = tables.MediaItem
        try:
            m(media_id).update(
                actions=[m.start_pending.remove(), m.claimed_by.set(execution), m.claimed_at.set(_now()),
                         m.status.set("processing")],
                condition=(m.run == run) & (m.start_pending.exists() | (m.claimed_by == execution)))
            return True
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise

    def restart(self, media_id: str, status: str, run: str | None, new_run: str) -> dict[str, Any] | None:
        m = tables.MediaItem
        condition = (m.status == status) & (m.run.does_not_exist() if run is None else m.run == run)
        item = m(media_id)
        try:
            item.update(
                actions=[m.status.set("received"), m.updated_at.set(_now()), m.claimed_by.remove(),
                         m.error_type.remove(), m.error_reason.remove(), m.error_message.remove(),
                         *self._pending_run(new_run, _now())],
                condition=condition & m.media_id.exists())
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return None
            raise
        return item.attribute_values

    def stuck(self, requested_before: datetime, limit: int) -> list[str]:
        m = tables.MediaItem
        found: list[str] = []
        for shard in range(START_SHARDS):
            if len(found) >= limit:
                break
            found.extend(row.media_id for row in m.start_pending_index.query(
                shard, m.start_requested_at < requested_before, limit=limit - len(found)))
        return found

    def update(self, media_id: str, fields: dict[str, Any], *, if_run: str | None = None) -> None:
        actions = [tables.MediaItem.updated_at.set(_now())]
        for name, value in fields.items():
            attr = getattr(tables.MediaItem, name)
            actions.append(attr.remove() if value is None else attr.set(value))
        if if_run is None:
            tables.MediaItem(media_id).update(actions=actions)
            return
        try:
            tables.MediaItem(media_id).update(actions=actions, condition=tables.MediaItem.run == if_run)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise SupersededRunError("this execution is not the item's current run") from None
            raise

    def get(self, media_id: str) -> dict[str, Any] | None:
        try:
            item = tables.MediaItem.get(media_id, consistent_read=True)
        except tables.MediaItem.DoesNotExist:
            return None
        return item.attribute_values

    def scan_page(self, page_size: int, start: Any | None = None) -> tuple[list[dict[str, Any]], Any | None]:
        rows = tables.MediaItem.scan(limit=page_size, last_evaluated_key=start, page_size=page_size)
        items = [row.attribute_values for row in rows]
        return items, rows.last_evaluated_key

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
            # Every attempt has a name of its own (models.run_name), so an existing execution
            # of this name says nothing about whether it runs, finished or failed: it is not
            # "started". The caller marks the start failed; a later attempt takes a new name.
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                raise ExecutionExistsError(f"an execution named {name} exists") from exc
            raise
        return response["executionArn"]


class ExecutionExistsError(MediaguardError):
    """StartExecution found an execution of the same name."""

    reason = "execution_exists"


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
