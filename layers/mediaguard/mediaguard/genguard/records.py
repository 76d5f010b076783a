"""Generation records: who asked for what, and (once marked) what came out.

A record holds the user, the tenant, the sha256 of the prompt (the prompt itself only when
the platform configured ``store_prompts``), the reference media ids, the model and the
time; ``output_sha256`` and ``pdq`` are filled when the output is marked. The record is
kept twice on purpose: in a store (:class:`GenerationStore`, for look-ups by id) and as an
audit chain, which is what can be trusted later:

* ``generation:<id>``: one chain per allowed generation: ``created``, then ``output``;
* ``generation-refused:<tenant>/<user>``: one chain per user of a tenant, a ``refused``
  record for every request screening or a quota turned down (403 and 429). Per user and
  not per tenant: appends to one chain serialise, and a tenant-wide chain would be the
  hot partition every refusal of every user waits on.

:class:`GenerationLedger` writes both; callers use it, not the store directly.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mediaguard.errors import ApiError
from mediaguard.ports import AuditAppender

if TYPE_CHECKING:
    from mediaguard.audit.chain import AuditRecord

GENERATION_CHAIN_PREFIX = "generation:"
REFUSAL_CHAIN_PREFIX = "generation-refused:"
CREATED, OUTPUT, REFUSED = "created", "output", "refused"


def generation_chain(generation_id: str) -> str:
    return f"{GENERATION_CHAIN_PREFIX}{generation_id}"


def refusal_chain(tenant: str, user: str) -> str:
    return f"{REFUSAL_CHAIN_PREFIX}{tenant}/{user}"


def prompt_sha256(prompt: str) -> str:
    """The prompt's fingerprint as recorded: sha256 of its UTF-8 bytes, exactly as sent.

    >>> prompt_sha256("a cat")[:12]
    '51e467415607'
    """
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class GenerationRecord(BaseModel):
    """One allowed generation. ``created`` is ISO 8601 (UTC)."""

    model_config = ConfigDict(extra="forbid")

    generation_id: str
    user: str
    tenant: str
    prompt_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reference_media_ids: list[str] = []
    model: str | None = None
    created: str
    prompt: str | None = None  # only with GenGuardSettings.store_prompts
    output_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    pdq: str | None = None


class GenerationNotFoundError(ApiError):
    status = 404
    reason = "unknown_generation"


class GenerationExistsError(ApiError):
    status = 409
    reason = "generation_exists"


class OutputExistsError(ApiError):
    """The generation has its output already: one generation, one marked output."""

    status = 409
    reason = "output_exists"


class GenerationStore(Protocol):
    def create(self, record: GenerationRecord) -> None:
        """Store a new record; ``GenerationExistsError`` if the id is taken."""

    def get(self, generation_id: str) -> GenerationRecord | None: ...

    def record_output(self, generation_id: str, output_sha256: str, pdq: str | None) -> GenerationRecord:
        """Set the output's sha256 and PDQ, once: ``OutputExistsError`` when the record has an
        output already (checked in the same write, so of two concurrent outputs one fails),
        ``GenerationNotFoundError`` for an unknown id."""


class InMemoryGenerationStore:
    """Records in a dict: the CLI's store and the unit tests'."""

    def __init__(self) -> None:
        self.records: dict[str, GenerationRecord] = {}
        self._lock = threading.Lock()

    def create(self, record: GenerationRecord) -> None:
        with self._lock:
            if record.generation_id in self.records:
                raise GenerationExistsError("a generation with this id exists")
            self.records[record.generation_id] = record.model_copy(deep=True)

    def get(self, generation_id: str) -> GenerationRecord | None:
        found = self.records.get(generation_id)
        return found.model_copy(deep=True) if found else None

    def record_output(self, generation_id: str, output_sha256: str, pdq: str | None) -> GenerationRecord:
        with self._lock:
            found = self.records.get(generation_id)
            if found is None:
                raise GenerationNotFoundError("no such generation")
            if found.output_sha256 is not None:
                raise OutputExistsError("the generation already has an output")
            updated = found.model_copy(update={"output_sha256": output_sha256, "pdq": pdq})
            GenerationRecord.model_validate(updated.model_dump())
            self.records[generation_id] = updated
            return updated.model_copy(deep=True)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class GenerationLedger:
    """The store and the audit trail together: every creation, output and refusal is a record.

    Example::

        ledger = GenerationLedger(InMemoryGenerationStore(), items)
        ledger.create(record, actor="platform:acme")
        ledger.record_output(record.generation_id, sha, pdq, actor="platform:acme")
    """

    store: GenerationStore
    audit: AuditAppender
    clock: Callable[[], str] = _now

    def create(self, record: GenerationRecord, actor: str) -> GenerationRecord:
        self.store.create(record)
        # The chain holds what the record holds, the prompt only if the record does.
        self.audit.append_audit(generation_chain(record.generation_id), actor, CREATED,
                                record.model_dump(exclude_none=True))
        return record

    def get(self, generation_id: str) -> GenerationRecord | None:
        return self.store.get(generation_id)

    def record_output(self, generation_id: str, output_sha256: str, pdq: str | None, actor: str,
                      detail: dict[str, Any] | None = None,
                      then: Callable[[], object] | None = None) -> GenerationRecord:
        """Fill the output fields (once: :class:`OutputExistsError` otherwise) and append
        ``output`` to the generation's chain (``detail``: whatever else the marking side wants
        on the record, e.g. the watermark payload). ``then`` runs between the two: work that
        only the one output that won the record may do (marking banks its PDQ there, so a
        concurrent second output cannot overwrite the bank entry of the first)."""
        record = self.store.record_output(generation_id, output_sha256, pdq)
        if then is not None:
            then()
        self.audit.append_audit(generation_chain(generation_id), actor, OUTPUT,
                                {"output_sha256": output_sha256, "pdq": pdq, **(detail or {})})
        return record

    def refused(self, tenant: str, user: str, actor: str, *, status: int, reasons: Sequence[str],
                matched: Sequence[dict[str, Any]], prompt_sha: str, reference_media_ids: Sequence[str],
                model: str | None, extra: dict[str, Any] | None = None) -> AuditRecord:
        """Append a refusal (403 screening or 429 quota) to the user's refusal chain."""
        detail = {"status": status, "reasons": list(reasons), "matched": list(matched), "user": user,
                  "tenant": tenant, "prompt_sha256": prompt_sha, "reference_media_ids": list(reference_media_ids),
                  "model": model, "at": self.clock(), **(extra or {})}
        return self.audit.append_audit(refusal_chain(tenant, user), actor, REFUSED, detail)
