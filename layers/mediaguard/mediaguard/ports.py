"""The narrow interfaces stages use to reach storage and the workflow engine.

The AWS implementations live in ``mediaguard.adapters``; tests may pass their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mediaguard.errors import MediaguardError
from mediaguard.models import Upload
from mediaguard.settings import Settings

if TYPE_CHECKING:  # types only: importing them would pull numpy into every stage's cold start
    from mediaguard.analysis.matching import BankReader, Matcher
    from mediaguard.audit.chain import AuditRecord
    from mediaguard.decisions.events import DecisionEvent
    from mediaguard.decisions.history import HistoryStore
    from mediaguard.decisions.live import Stream
    from mediaguard.models import ClassifyInput, ClassifyResult, DetectInput, DetectResult


class BlobStore(Protocol):
    def get(self, bucket: str, key: str, version_id: str | None = None) -> tuple[bytes, str | None]:
        """Object bytes and the content type declared at upload; ``version_id`` reads that
        version exactly (an upload's pinned version), None the latest; ``ObjectMissingError``
        when it does not exist."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...

    def tag(self, bucket: str, key: str, tags: dict[str, str], version_id: str | None = None) -> None:
        """Replace the object's (version's) tags; ``ObjectMissingError`` when it is gone."""

    def get_json(self, bucket: str, key: str) -> Any | None:
        """A small JSON object, or None when the key does not exist."""

    def download(self, bucket: str, key: str, path: Path) -> None:
        """Stream a (possibly large) object to a local file."""

    def sha256(self, bucket: str, key: str, version_id: str | None = None) -> tuple[str, int]:
        """(sha256 hex, size) of an object (that version), streamed in chunks so memory does
        not grow with the object; ``ObjectMissingError`` when it does not exist."""


class AuditAppender(Protocol):
    """Appends one record to an audit chain: the item store, the bank files, ``audit.memory``."""

    def append_audit(self, chain: str, actor: str, event: str, detail: dict) -> AuditRecord: ...


class ItemStore(AuditAppender, Protocol):
    def create_once(self, upload: Upload, uploader_key: str | None = None) -> str | None:
        """Create the item if it does not exist yet (or its last start failed) and return
        the name of the run to start (``models.run_name``); None if another run owns it.
        ``uploader_key``: the keyed HMAC of the granted uploader, stored as ``uploader``.

        The duplicate-start guard (S3 may deliver an event twice). The item stays
        ``start_pending`` until that run's execution claims it (``claim_run``), so an
        item whose start never got that far is found by ``stuck``. Not to be confused
        with a reviewer claiming a review task."""

    def record_replacement(self, media_id: str, version_id: str) -> bool:
        """Add ``version_id`` to the item's ``replaced_versions`` if the item pinned a
        different version; False when it is the pinned version itself (a redelivered event)
        or the item pinned none. Repeating it for the same version is harmless."""

    def mark_start_failed(self, media_id: str, run: str | None = None) -> None:
        """Let the next delivery of the same S3 event start the item again; with ``run``,
        only while that run is current and unclaimed (its execution may have started
        after all, and won)."""

    def claim_run(self, media_id: str, run: str, execution: str) -> bool:
        """The first stage of ``execution`` takes the item for ``run``: True when ``run`` is
        the item's current run and no other execution claimed it (the same execution
        again, a Lambda retry, is True). Clears ``start_pending``."""

    def restart(self, media_id: str, status: str, run: str | None, new_run: str) -> dict[str, Any] | None:
        """Make ``new_run`` the item's current run (status ``received``, ``start_pending``,
        previous error cleared) if it is still in ``status`` under ``run``; the item as it
        is now, or None when it moved on meanwhile."""

    def stuck(self, requested_before: Any, limit: int) -> list[str]:
        """Items whose current run was asked for before ``requested_before`` (a datetime)
        and has not been claimed by an execution: the sparse ``start_pending`` index."""

    def update(self, media_id: str, fields: dict[str, Any], *, if_run: str | None = None) -> None:
        """Set (None: remove) fields. With ``if_run``, only while that run is the item's
        current one; ``SupersededRunError`` otherwise (a re-drive replaced it)."""

    def get(self, media_id: str) -> dict[str, Any] | None: ...

    def scan_page(self, page_size: int, start: Any | None = None) -> tuple[list[dict[str, Any]], Any | None]:
        """One page of a Scan of every item (the review console's search, bounded by its
        caller): ``(items, where the next page starts or None)``."""

    def audit_chain(self, chain: str) -> list[AuditRecord]:
        """Every record of one chain, in order."""


class Workflow(Protocol):
    def start(self, name: str, payload: dict) -> str:
        """Start one execution named ``name``; returns its id."""


class MissingPortError(MediaguardError):
    """A stage asked for an adapter its wiring did not build (a wiring or IAM mismatch)."""

    reason = "misconfigured"


@dataclass
class MatcherSlot:
    """Where a process keeps its matcher between invocations (see ``stages.similarity``)."""

    matcher: Matcher | None = None
    checked: float = float("-inf")


@dataclass
class Deps:
    """What one stage may reach, built by ``mediaguard.wiring`` per stage: a stage's
    factory builds only the clients its function's IAM role allows, and leaves the
    rest ``None``. ``need`` turns a missing one into a typed error instead of an
    ``AttributeError`` on ``None``."""

    settings: Settings
    blobs: BlobStore | None = None
    items: ItemStore | None = None
    workflow: Workflow | None = None
    bank_reader: BankReader | None = None
    history: HistoryStore | None = None
    enforcement: EnforcementPorts | None = None
    review: ReviewQueue | None = None  # the failure stage's way to people (enforcement has its own)
    live: LivePorts | None = None  # the segment stage's streams, IVS and frame analysis
    # Seconds since the epoch; replaceable so a test can let a minute pass without waiting one.
    clock: Callable[[], float] = time.time
    matching: MatcherSlot = field(default_factory=MatcherSlot)

    def need(self, port: str) -> Any:
        value = getattr(self, port)
        if value is None:
            raise MissingPortError(f"this stage's wiring has no {port!r} adapter")
        return value


# --- enforcement (mediaguard.decisions.enforcement) -------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    """What enforcement needs to know about one stored object. ``sha256`` is hex, or None
    when the store holds no full-object SHA-256 for it (use ``BlobCustody.digest``)."""

    bucket: str
    key: str
    size: int
    sha256: str | None
    content_type: str | None
    version_id: str | None = None


class BlobCustody(Protocol):
    """Object moves with chain of custody: what removal and restore need beyond ``BlobStore``."""

    def head(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        """The object's (or that version's) metadata, or None when it does not exist."""

    def list(self, bucket: str, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""

    def digest(self, bucket: str, key: str, version_id: str | None = None) -> str | None:
        """Hex SHA-256 of the object's bytes (the store's checksum, else read and hashed); None if missing."""

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str,
             src_version_id: str | None = None) -> StoredObject:
        """Server-side copy (of ``src_version_id`` exactly, when given) keeping content type
        and metadata; the result carries the SHA-256 of the bytes the destination now holds,
        computed by the store, not by the caller, and the destination's version id."""

    def delete(self, bucket: str, keys: list[str]) -> int:
        """Delete every version of each key (nothing left to undelete); returns versions removed."""

    def delete_version(self, bucket: str, key: str, version_id: str) -> int:
        """Delete exactly one version (gone for good); 0 when it no longer exists."""


class ReviewQueue(Protocol):
    def enqueue(self, media_id: str, risk: float, reach: int | None, reason: str) -> Any:
        """Queue the item for people. Must be idempotent per ``media_id``: a retried stage calls again."""

    def sample_for_qa(self, media_id: str, automated_action: str) -> Any:
        """Queue a blind quality sample of an automated decision when sampling picks the
        item (a hash of the id: the same items on every retry); None when it does not."""

    def withdraw_failure(self, media_id: str, actor: str, run: str) -> bool:
        """Close the open task a failed run queued (``failed:<reason>``), because a re-drive
        replaces that run; True if one was closed. A task a person is deciding stays."""


class DecisionSink(Protocol):
    def publish(self, event: DecisionEvent) -> None:
        """Deliver one decision event or raise ``events.EventDeliveryError``."""


@dataclass
class EnforcementPorts:
    """Enforcement's adapters, carried in ``Deps.enforcement``."""

    custody: BlobCustody
    sinks: list[DecisionSink] = field(default_factory=list)
    review: ReviewQueue | None = None


# --- live streams (mediaguard.stages.segment) -------------------------------------------------


@dataclass
class StreamRecord:
    """One stream as stored: its state machine value plus what the rim needs to act on it.
    ``version`` is the store's optimistic-lock counter (None: not stored yet)."""

    stream: Stream
    channel_arn: str
    origin_s: float | None = None  # presentation time of the first segment seen (t_start = pts - origin)
    last: dict[str, Any] | None = None  # the newest segment's result line (what `live simulate` prints)
    version: int | None = None


class StreamStore(Protocol):
    def get(self, stream_id: str) -> StreamRecord | None: ...

    def by_state(self, state: str, limit: int) -> list[StreamRecord]:
        """Streams in ``state``, the most recently updated first (the moderation list)."""

    def put(self, record: StreamRecord) -> bool:
        """Write ``record`` if nobody wrote the stream since it was read (``record.version``;
        None: only if it does not exist yet). False on a lost race: read again and re-apply."""


class LiveControl(Protocol):
    """What the platform's live service (Amazon IVS) does for us."""

    def verified(self, channel_arn: str) -> bool:
        """Whether the channel belongs to a verified streamer (the platform tags it)."""

    def put_metadata(self, channel_arn: str, payload: str) -> None:
        """Timed metadata into the running stream (players apply overlays from it); <= 1 KB."""

    def stop(self, channel_arn: str) -> None:
        """End the broadcast and delete the channel's stream keys (a block)."""


class FrameAnalysis(Protocol):
    """The classifier and detect stages, called as the upload pipeline calls them."""

    def classify(self, request: ClassifyInput) -> ClassifyResult: ...

    def detect(self, request: DetectInput) -> DetectResult: ...


class StreamEventSink(Protocol):
    def publish(self, stream_id: str, detail: dict[str, Any]) -> None:
        """One ``mediaguard.stream`` event (ids, states and codes only)."""


@dataclass
class LivePorts:
    streams: StreamStore
    control: LiveControl
    analysis: FrameAnalysis | None = None  # None where only people act on streams (the review API)
    events: StreamEventSink | None = None
