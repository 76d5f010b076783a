"""Hash banks on DynamoDB (pynamodb), and finding a deployed stack's bank tables.

    service = dynamo_bank_service(get_settings())   # what a Lambda uses
    settings = stack_settings("mediaguard-prod", "eu-west-1")   # what `mediaguard bank --stack` uses
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, PutError, PynamoDBException

from mediaguard.adapters import tables
from mediaguard.analysis.banks.errors import BankError, BankExistsError
from mediaguard.analysis.banks.model import Bank, Entry, EntryStatus
from mediaguard.analysis.banks.service import AuditHook, BankService
from mediaguard.settings import Settings

# Partitions of the "updated" GSI (see tables.UpdatedIndex). Changing it re-shards
# nothing already written, so it is fixed.
SHARDS = 8
# Logical ids in template.yaml.
# What talking to AWS can raise (credentials, throttling, a missing table).
AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, PynamoDBException)
STACK_TABLES = {"BanksTable": "banks_table", "BankEntriesTable": "bank_entries_table", "AuditTable": "audit_table",
                "AuditHeadTable": "audit_head_table"}


def shard_of(bank: str, ref: str) -> str:
    """The GSI partition of an entry: stable, and even across entries."""
    digest = hashlib.blake2b(f"{bank}\x00{ref}".encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big") % SHARDS)


class DynamoBankStore:
    """A :class:`~mediaguard.analysis.banks.store.BankStore` over the banks and bank-entries tables."""

    batch_size = 1000

    def __init__(self, settings: Settings) -> None:
        tables.bind(settings)

    # --- banks ---------------------------------------------------------------------

    def create_bank(self, bank: Bank) -> None:
        item = tables.BankRow(bank.name, kind=bank.kind, action=bank.action, pdq_threshold=bank.pdq_threshold,
                           embedding_threshold=bank.embedding_threshold, created_at=bank.created_at,
                           created_by=bank.created_by)
        try:
            item.save(condition=tables.BankRow.name.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise BankExistsError(f"bank {bank.name} exists") from None
            raise

    def get_bank(self, name: str) -> Bank | None:
        try:
            return _bank(tables.BankRow.get(name, consistent_read=True))
        except tables.BankRow.DoesNotExist:
            return None

    def list_banks(self) -> list[Bank]:
        return sorted((_bank(b) for b in tables.BankRow.scan()), key=lambda b: b.name)

    def delete_bank(self, name: str) -> bool:
        try:
            tables.BankRow(name).delete(condition=tables.BankRow.name.exists())
        except DeleteError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- entries -------------------------------------------------------------------

    def get_entries(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        # BatchGetItem refuses duplicate keys; pynamodb splits into 100-key requests.
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        return {(row.bank, row.ref): _entry(row)
                for row in tables.BankEntryItem.batch_get(unique, consistent_read=True)}

    def put_entries(self, entries: Sequence[Entry]) -> None:
        with tables.BankEntryItem.batch_write() as batch:
            for e in entries:
                batch.save(_item(e))

    def replace_entry(self, entry: Entry, expected_updated_at: datetime | None) -> bool:
        item = tables.BankEntryItem
        stamp = item.updated_at.does_not_exist() if expected_updated_at is None \
            else item.updated_at == expected_updated_at
        try:
            _item(entry).save(condition=item.ref.exists() & stamp)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def bank_entries(self, bank: str, ref_prefix: str = "") -> Iterator[Entry]:
        condition = tables.BankEntryItem.ref.startswith(ref_prefix) if ref_prefix else None
        return (_entry(row) for row in tables.BankEntryItem.query(bank, condition, consistent_read=True))

    def scan_entries(self, status: EntryStatus | None = "active") -> Iterator[Entry]:
        condition = tables.BankEntryItem.status == status if status else None
        return (_entry(row) for row in tables.BankEntryItem.scan(condition))

    def entries_updated_since(self, since: datetime) -> Iterator[Entry]:
        for shard in range(SHARDS):
            for row in tables.BankEntryItem.updated.query(str(shard), tables.BankEntryItem.updated_at >= since):
                yield _entry(row)


def _bank(row: tables.BankRow) -> Bank:
    return Bank(name=row.name, kind=row.kind, action=row.action, pdq_threshold=int(row.pdq_threshold),
                embedding_threshold=None if row.embedding_threshold is None else float(row.embedding_threshold),
                created_at=row.created_at, created_by=row.created_by)


def _item(e: Entry) -> tables.BankEntryItem:
    signals = list(e.signals) or None
    return tables.BankEntryItem(
        e.bank, e.ref,
        # signal/value as the table has always had them (see tables.BankEntryItem)
        signal=e.signals[0] if e.signals and "pdq" not in e.signals else "pdq",
        value=e.pdq, quality=e.quality, embedding=e.embedding, audio=e.audio, clip=e.clip, signals=signals,
        group=e.group,
        status=e.status, source=e.source, added_at=e.added_at, added_by=e.added_by, updated_at=e.updated_at,
        confirmed_at=e.confirmed_at, confirmed_by=e.confirmed_by, withdrawn_at=e.withdrawn_at,
        withdrawn_by=e.withdrawn_by,
        # An item without updated_at (none written here) stays out of the GSI.
        shard=shard_of(e.bank, e.ref) if e.updated_at is not None else None,
        expires_at=int(e.expires_at.timestamp()) if e.expires_at is not None else None,
    )


def _entry(row: tables.BankEntryItem) -> Entry:
    if row.signals:
        signals = tuple(row.signals)
    else:  # written before entries named their signals
        signals = tuple(s for s, v in (("pdq", row.value), ("embedding", row.embedding)) if v) or (row.signal,)
    return Entry(
        bank=row.bank, ref=row.ref, status=row.status, pdq=row.value,
        quality=None if row.quality is None else int(row.quality), embedding=row.embedding, audio=row.audio,
        clip=row.clip,
        signals=signals,
        group=row.group, source=row.source, added_at=row.added_at, added_by=row.added_by, updated_at=row.updated_at,
        confirmed_at=row.confirmed_at, confirmed_by=row.confirmed_by, withdrawn_at=row.withdrawn_at,
        withdrawn_by=row.withdrawn_by,
        expires_at=datetime.fromtimestamp(int(row.expires_at), UTC) if row.expires_at is not None else None,
    )


def dynamo_bank_service(settings: Settings, audit: AuditHook | None = None) -> BankService:
    """The bank service over the deployed tables; also the matcher's ``BankReader``."""
    return BankService(DynamoBankStore(settings), audit=audit)


def stack_settings(stack: str, region: str | None = None, client: Any = None) -> Settings:
    """Settings naming a deployed stack's bank tables (and its audit table), read from
    the stack's resources with the caller's AWS credentials."""
    region = region or boto3.session.Session().region_name
    if not region:
        raise BankError("no AWS region: pass --region or set AWS_REGION", reason="no_region")
    cloudformation = client or boto3.client("cloudformation", region_name=region)
    found: dict[str, str] = {}
    try:
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
            for resource in page["StackResourceSummaries"]:
                field = STACK_TABLES.get(resource["LogicalResourceId"])
                if field and resource.get("PhysicalResourceId"):
                    found[field] = resource["PhysicalResourceId"]
    except ClientError as exc:
        raise BankError(f"cannot read stack {stack} in {region}: {exc.response['Error']['Code']}",
                        reason="stack_not_found") from None
    except BotoCoreError as exc:
        raise BankError(f"cannot read stack {stack} in {region}: {type(exc).__name__}", reason="stack_not_found") \
            from None
    if "banks_table" not in found or "bank_entries_table" not in found:
        raise BankError(f"stack {stack} has no BanksTable and BankEntriesTable", reason="stack_not_found")
    return Settings(region=region, **found)
