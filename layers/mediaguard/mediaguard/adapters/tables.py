"""pynamodb models. ``template.yaml`` declares the same tables; a contract test keeps
key schemas, attribute definitions and billing mode identical."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from ..settings import Settings


class MediaItem(Model):
    class Meta:
        table_name = "mediaguard-media"
        billing_mode = "PAY_PER_REQUEST"

    media_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute(default="received")
    upload_bucket = UnicodeAttribute(null=True)
    upload_key = UnicodeAttribute(null=True)
    received_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    content_type = UnicodeAttribute(null=True)
    size = NumberAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
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
    action = UnicodeAttribute(null=True)
    signals = JSONAttribute(null=True)
    policy_version = UnicodeAttribute(null=True)
    override = UnicodeAttribute(null=True)
    served_key = UnicodeAttribute(null=True)
    derivative_key = UnicodeAttribute(null=True)
    error_type = UnicodeAttribute(null=True)
    error_reason = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)


class Bank(Model):
    class Meta:
        table_name = "mediaguard-banks"
        billing_mode = "PAY_PER_REQUEST"

    name = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # block | flag | allow
    action = UnicodeAttribute(null=True)
    pdq_threshold = NumberAttribute(default=31)
    created_at = UTCDateTimeAttribute(null=True)


class BankEntryItem(Model):
    class Meta:
        table_name = "mediaguard-bank-entries"
        billing_mode = "PAY_PER_REQUEST"

    bank = UnicodeAttribute(hash_key=True)
    ref = UnicodeAttribute(range_key=True)
    signal = UnicodeAttribute()
    value = UnicodeAttribute()
    quality = NumberAttribute(null=True)
    status = UnicodeAttribute(default="active")  # active | withdrawn
    added_at = UTCDateTimeAttribute(null=True)


class AuditItem(Model):
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


MODELS: dict[str, type[Model]] = {
    "media_table": MediaItem,
    "banks_table": Bank,
    "bank_entries_table": BankEntryItem,
    "audit_table": AuditItem,
    "geofence_table": GeofenceRule,
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
