"""The narrow interfaces stages use to reach storage and the workflow engine.

The AWS implementations live in ``mediaguard.adapters``; tests may pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .audit import AuditRecord
from .models import BankKind, Upload
from .settings import Settings


class BlobStore(Protocol):
    def get(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        """Object bytes and the content type declared at upload."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...

    def tag(self, bucket: str, key: str, tags: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class BankEntry:
    bank: str
    kind: BankKind
    ref: str
    signal: str
    value: str
    quality: int | None = None
    threshold: int | None = None
    action: str | None = None


class ItemStore(Protocol):
    def claim(self, upload: Upload) -> bool:
        """Create the item if it does not exist yet (or its last start failed); False if another run owns it."""

    def release_claim(self, media_id: str) -> None: ...

    def update(self, media_id: str, fields: dict[str, Any]) -> None: ...

    def get(self, media_id: str) -> dict[str, Any] | None: ...

    def bank_entries(self) -> list[BankEntry]: ...

    def append_audit(self, chain: str, actor: str, event: str, detail: dict) -> AuditRecord: ...


class Workflow(Protocol):
    def start(self, name: str, payload: dict) -> str:
        """Start one execution named ``name``; returns its id."""


@dataclass
class Deps:
    settings: Settings
    blobs: BlobStore
    items: ItemStore
    workflow: Workflow | None = None
    extras: dict[str, Any] = field(default_factory=dict)
