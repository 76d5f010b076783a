"""pynamodb models. ``template.yaml`` declares the same tables; a contract test keeps
key schemas, attribute definitions and billing mode identical."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from mediaguard.settings import Settings


class StartPendingIndex(GlobalSecondaryIndex):
    """Sparse: only items whose current run has not been claimed by its execution yet
    carry ``start_pending`` (a shard, 0-3), by when that run was asked for. The sweep
    (``decisions.redrive.sweep_stuck``) reads the old end of it instead of scanning."""

    class Meta:
        index_name = "start_pending"
        projection = KeysOnlyProjection()

    start_pending = NumberAttribute(hash_key=True)
    start_requested_at = UTCDateTimeAttribute(range_key=True)


class MediaItem(Model):
    class Meta:
        table_name = "mediaguard-media"
        billing_mode = "PAY_PER_REQUEST"

    media_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute(default="received")
    run = UnicodeAttribute(null=True)  # the execution name of the current attempt
    runs = NumberAttribute(null=True)  # attempts so far (names the next one)
    start_pending = NumberAttribute(null=True)
    start_requested_at = UTCDateTimeAttribute(null=True)
    claimed_by = UnicodeAttribute(null=True)  # the execution (id) that claimed the current run
    claimed_at = UTCDateTimeAttribute(null=True)
    start_pending_index = StartPendingIndex()
    upload_bucket = UnicodeAttribute(null=True)
    upload_key = UnicodeAttribute(null=True)
    upload_version_id = UnicodeAttribute(null=True)  # the scanned version (models.Upload.version_id)
    replaced_versions = UnicodeSetAttribute(null=True)  # later versions of the key: refused, never scanned
    received_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    start_claim = UnicodeAttribute(null=True)  # random token of the start call that created the item
    content_type = UnicodeAttribute(null=True)
    size = NumberAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
    media_type = UnicodeAttribute(null=True)  # image | animation | video
    frames = JSONAttribute(null=True)  # {count, method, truncated, duration_s, t: [each frame's time, s]}
    # {present, codec, duration_s, fingerprint_kind, sanitize} of the first audio track (frames stage)
    audio = JSONAttribute(null=True)
    scores = JSONAttribute(null=True)  # per classifier score key: the max over frames
    models = JSONAttribute(null=True)  # [{id, sha256}] of every model that scored the item
    faces = JSONAttribute(null=True)  # {count, model, frame, boxes}: the analysed frame with the most faces
    signal_frames = JSONAttribute(null=True)  # a video's: score key -> the frame (position) that gave its max
    sanitized_key = UnicodeAttribute(null=True)
    sanitized_sha256 = UnicodeAttribute(null=True)
    metadata_removed = ListAttribute(of=UnicodeAttribute, null=True)
    provenance = JSONAttribute(null=True)
    pdq = UnicodeAttribute(null=True)
    pdq_quality = NumberAttribute(null=True)
    phash = UnicodeAttribute(null=True)
    dhash = UnicodeAttribute(null=True)
    nsfw = NumberAttribute(null=True)
    model_id = UnicodeAttribute(null=True)
    model_sha256 = UnicodeAttribute(null=True)
    matches = JSONAttribute(null=True)
    risk = NumberAttribute(null=True)
    proposed_action = UnicodeAttribute(null=True)  # what scoring proposed
    action = UnicodeAttribute(null=True)  # what enforcement applied: absent until it did
    signals = JSONAttribute(null=True)
    policy_version = UnicodeAttribute(null=True)
    override = UnicodeAttribute(null=True)
    escalate = BooleanAttribute(null=True)
    shadow = JSONAttribute(null=True)  # what the shadow policy would have decided
    score_inputs = JSONAttribute(null=True)  # everything the decision was made from (replay)
    uploader = UnicodeAttribute(null=True)  # keyed HMAC of the platform's uploader id, never the id
    erased_at = UnicodeAttribute(null=True)  # an uploader erasure unlinked the item (decisions.erasure)
    reach = NumberAttribute(null=True)  # audience size the platform declared at upload
    served_key = UnicodeAttribute(null=True)
    derivative_key = UnicodeAttribute(null=True)
    poster_key = UnicodeAttribute(null=True)
    enforcement = JSONAttribute(null=True)  # the decision state machine of mediaguard.decisions.enforcement
    error_type = UnicodeAttribute(null=True)
    error_reason = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    stream_id = UnicodeAttribute(null=True)  # a live segment's item: the stream it came from


class BankRow(Model):
    """A hash bank: what a match against its entries means (kind, action) and how close
    counts as a match per signal. Administered through ``mediaguard.analysis.banks.service.BankService``."""

    class Meta:
        table_name = "mediaguard-banks"
        billing_mode = "PAY_PER_REQUEST"

    name = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # block | flag | allow
    action = UnicodeAttribute(null=True)  # the models.Action a match carries, if any
    pdq_threshold = NumberAttribute(default=31)  # max Hamming distance
    embedding_threshold = NumberAttribute(null=True)  # min cosine; absent = the system default
    created_at = UTCDateTimeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)


class UpdatedIndex(GlobalSecondaryIndex):
    """Entries by last change: the delta that makes a new or withdrawn entry count before
    the next index build. ``shard`` (0-7, from a hash of bank and ref) spreads the writes
    of a bulk import over eight partitions instead of one; a reader queries all eight."""

    class Meta:
        index_name = "updated"
        projection = AllProjection()

    shard = UnicodeAttribute(hash_key=True)
    updated_at = UTCDateTimeAttribute(range_key=True)


class BankEntryItem(Model):
    """One banked item: a photo, or one frame of a banked video (``ref`` = ``<group>#<n>``).

    ``signal``/``value`` keep their first meaning (the PDQ, hex) so older readers still
    work; the embedding sits beside it. A withdrawn entry keeps no hash: only its ref,
    who withdrew it and when (StopNCII practice: withdrawn hashes must be deleted).
    """

    class Meta:
        table_name = "mediaguard-bank-entries"
        billing_mode = "PAY_PER_REQUEST"

    bank = UnicodeAttribute(hash_key=True)
    ref = UnicodeAttribute(range_key=True)
    signal = UnicodeAttribute(default="pdq")  # "pdq", or "embedding" for an embedding-only entry
    value = UnicodeAttribute(null=True)  # PDQ, 64 lowercase hex
    quality = NumberAttribute(null=True)
    embedding = UnicodeAttribute(null=True)  # base64 of little-endian float16, L2-normalised
    audio = UnicodeAttribute(null=True)  # base64 of Chromaprint's raw uint32 words (signals.AudioSignal)
    clip = UnicodeAttribute(null=True)  # CLIP's embedding, stored like ``embedding``
    signals = ListAttribute(of=UnicodeAttribute, null=True)  # names carried (kept on tombstones)
    group = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="active")  # active | withdrawn | deleted (its bank was deleted)
    source = UnicodeAttribute(null=True)
    added_at = UTCDateTimeAttribute(null=True)
    added_by = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    confirmed_at = UTCDateTimeAttribute(null=True)
    confirmed_by = UnicodeAttribute(null=True)
    withdrawn_at = UTCDateTimeAttribute(null=True)
    withdrawn_by = UnicodeAttribute(null=True)
    shard = UnicodeAttribute(null=True)
    # Epoch seconds; the table's TTL attribute. Only the markers a bank deletion leaves
    # carry it: they must outlive the last index build that still holds the entry.
    expires_at = NumberAttribute(null=True)
    updated = UpdatedIndex()


class AuditItem(Model):
    """One record of an audit hash chain (``mediaguard.audit.chain``); written only by
    ``adapters.audit.DynamoAuditStore``, in one transaction with the chain's ``AuditHead``."""

    class Meta:
        table_name = "mediaguard-audit"
        billing_mode = "PAY_PER_REQUEST"

    chain = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    at = UnicodeAttribute()
    actor = UnicodeAttribute()
    event = UnicodeAttribute()
    # Canonical JSON text, stored as written so the hash can be recomputed exactly.
    detail = UnicodeAttribute()
    prev_hash = UnicodeAttribute()
    hash = UnicodeAttribute()


class PendingIndex(GlobalSecondaryIndex):
    """Sparse: only heads appended since the last digest carry ``pending``, so the digest
    job finds them without scanning every chain. ``pending`` is a shard (0-15, from a hash
    of the chain) so the index has sixteen partitions to write to, not one; the index is
    written only when a head becomes pending or is anchored, not on every append."""

    class Meta:
        index_name = "pending"
        projection = KeysOnlyProjection()

    pending = NumberAttribute(hash_key=True)
    chain = UnicodeAttribute(range_key=True)


class AuditHead(Model):
    """The newest record of one audit chain, replaced in the same transaction as each
    record is put (the condition on ``seq`` also serialises concurrent writers)."""

    class Meta:
        table_name = "mediaguard-audit-heads"
        billing_mode = "PAY_PER_REQUEST"

    chain = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute()
    hash = UnicodeAttribute()
    at = UnicodeAttribute()
    pending = NumberAttribute(null=True)
    pending_index = PendingIndex()


class GeofenceRule(Model):
    """A legal restriction on serving media to one country, read by the edge viewer-request
    function (edge/viewer_request), which answers HTTP 451 with ``legal_reference``."""

    class Meta:
        table_name = "mediaguard-geofence"
        billing_mode = "PAY_PER_REQUEST"

    country = UnicodeAttribute(hash_key=True)  # ISO 3166-1 alpha-2, as CloudFront-Viewer-Country sends it
    scope = UnicodeAttribute(range_key=True)  # "global" | "path:<uri prefix>"
    legal_reference = UnicodeAttribute()  # shown to the viewer: statute, court order or notice id
    # Epoch seconds. Also the table's TTL attribute, but DynamoDB deletes expired items
    # lazily (up to days later), so readers must ignore expired rules themselves.
    expires_at = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)


class StreamStateIndex(GlobalSecondaryIndex):
    """Streams by state, most recently updated last: the moderators' list of restricted streams."""

    class Meta:
        index_name = "by_state"
        projection = AllProjection()

    state = UnicodeAttribute(hash_key=True)
    updated_at = UTCDateTimeAttribute(range_key=True)


class StreamItem(Model):
    """One live stream's state (``decisions.live.Stream``) plus the newest segment's result.
    Bounded: per-segment history lives in the audit chain ``stream:<id>`` (transitions) and
    the logs, never in this item (a 4-hour stream has 7,200 two-second segments)."""

    class Meta:
        table_name = "mediaguard-streams"
        billing_mode = "PAY_PER_REQUEST"

    stream_id = UnicodeAttribute(hash_key=True)  # the IVS recording id
    channel_arn = UnicodeAttribute()
    state = UnicodeAttribute()
    verified = BooleanAttribute(default=False)
    overlays = ListAttribute(of=UnicodeAttribute, null=True)
    clean_seconds = NumberAttribute(default=0)
    segments = NumberAttribute(default=0)
    severity = UnicodeAttribute(default="allow")
    cause_segment = NumberAttribute(null=True)
    origin_s = NumberAttribute(null=True)
    last = JSONAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    # Segments of one stream are analysed concurrently (one S3 event each): every write is
    # conditional on the version read, and the loser re-applies its segment.
    version = VersionAttribute()
    by_state = StreamStateIndex()


class LegalOrderItem(Model):
    """A legal or government order (``mediaguard.decisions.legal.LegalOrder``), stored whole as
    JSON: orders are few, read whole and never queried by field."""

    class Meta:
        table_name = "mediaguard-legal"
        billing_mode = "PAY_PER_REQUEST"

    order_id = UnicodeAttribute(hash_key=True)
    order = JSONAttribute()
    updated_at = UTCDateTimeAttribute(null=True)


MODELS: dict[str, type[Model]] = {
    "media_table": MediaItem,
    "banks_table": BankRow,
    "bank_entries_table": BankEntryItem,
    "audit_table": AuditItem,
    "geofence_table": GeofenceRule,
    "audit_head_table": AuditHead,
    "streams_table": StreamItem,
    "legal_table": LegalOrderItem,
}


def bind(settings: Settings) -> None:
    """Point every model at the table names and region from settings.

    pynamodb reads Meta once per connection, so the cached connection is reset too.
    """
    for field, model in MODELS.items():
        name = getattr(settings, field)
        if name:
            model.Meta.table_name = name
        model.Meta.region = settings.region
        model._connection = None
