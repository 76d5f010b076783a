"""Generation records: who asked for what, and the output that came of it.

Minimal version written for marking (genmark); the screening work (genscreen) owns this
module and its DynamoDB adapter. The interface is the agreed one: ``create(record)``,
``get(generation_id)``, ``record_output(generation_id, output_sha256, pdq)``.
Prompts are kept only as their sha256.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from mediaguard.errors import MediaguardError


class GenerationNotFoundError(MediaguardError):
    """No generation has that id."""

    def __init__(self, message: str = "no such generation") -> None:
        super().__init__(message, reason="generation_not_found")


class OutputAlreadyRecordedError(MediaguardError):
    """The generation already has its output: one generation, one output."""

    def __init__(self, message: str = "the generation already has an output") -> None:
        super().__init__(message, reason="output_exists")


@dataclass(frozen=True)
class GenerationRecord:
    generation_id: str
    user: str
    tenant: str | None
    prompt_sha256: str
    reference_media_ids: tuple[str, ...] = ()
    model: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    output_sha256: str | None = None
    pdq: str | None = None


class GenerationStore(Protocol):
    def create(self, record: GenerationRecord) -> None: ...

    def get(self, generation_id: str) -> GenerationRecord | None: ...

    def record_output(self, generation_id: str, output_sha256: str, pdq: str | None) -> GenerationRecord:
        """Set the output once; :class:`OutputAlreadyRecordedError` if it is set already."""
        ...


class InMemoryGenerationStore:
    """For tests and the local CLI."""

    def __init__(self) -> None:
        self._records: dict[str, GenerationRecord] = {}
        self._lock = threading.Lock()

    def create(self, record: GenerationRecord) -> None:
        with self._lock:
            if record.generation_id in self._records:
                raise MediaguardError("a generation with that id exists", reason="generation_exists")
            self._records[record.generation_id] = record

    def get(self, generation_id: str) -> GenerationRecord | None:
        return self._records.get(generation_id)

    def record_output(self, generation_id: str, output_sha256: str, pdq: str | None) -> GenerationRecord:
        with self._lock:
            record = self._records.get(generation_id)
            if record is None:
                raise GenerationNotFoundError()
            if record.output_sha256 is not None:
                raise OutputAlreadyRecordedError()
            record = replace(record, output_sha256=output_sha256, pdq=pdq)
            self._records[generation_id] = record
            return record
