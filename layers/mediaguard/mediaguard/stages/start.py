"""Start: one workflow execution per upload, however often S3 delivers the event."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from mediaguard.audit.chain import trusted
from mediaguard.errors import ObjectMissingError
from mediaguard.ingress import grant
from mediaguard.models import Upload
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)


# The tag a refused replacement carries (the failure stage tags rejected originals alike).
REPLACED_TAGS = {"mediaguard-state": "replaced-refused", "mediaguard-reason": "upload_replaced"}
REPLACED_REFUSED = "upload_replaced_refused"


def upload_from_key(bucket: str, key: str, version_id: str | None = None) -> Upload:
    """The execution input for an object version the upload bucket reported (key already
    URL-decoded; ``version_id`` from the event, absent only for an unversioned bucket)."""
    return Upload(media_id=grant.media_id_from_key(key), bucket=bucket, key=key, version_id=version_id or None)


def start(upload: Upload, deps: Deps) -> dict:
    """Start the workflow once per upload.

    Express workflows do not deduplicate by execution name, so creating the item with a
    conditional write is what makes a duplicated S3 event a no-op, and the first stage's
    claim (``ItemStore.claim_run``) what makes a duplicated execution one. The grant is
    read here, once, and travels in the execution input, so scoring and enforcement
    never re-read the upload's chain; the item keeps only the uploader's keyed HMAC. If
    this function dies before StartExecution returns, the item stays ``start_pending`` and
    the sweep re-drives it.
    """
    items, workflow = deps.need("items"), deps.need("workflow")
    # The grant first (a read): the item is created with its uploader's keyed HMAC in the
    # same write, which search and erasure read; the id itself is never stored on the item.
    facts = grant.read_facts(upload.media_id, items.audit_chain)
    key = deps.history.key_of(facts.uploader) if (deps.history is not None and facts.uploader) else None
    run = items.create_once(upload, uploader_key=key)
    if run is None:
        if upload.version_id and items.record_replacement(upload.media_id, upload.version_id):
            return _refuse_replacement(upload, deps)
        logger.info("duplicate upload event ignored", extra={"media_id": upload.media_id})
        return {"media_id": upload.media_id, "started": False}
    try:
        # Audited before the execution starts, so "received" is always the chain's first record.
        items.append_audit(upload.media_id, "system:start", "received",
                           {"key": upload.key, "version_id": upload.version_id, "run": run})
        upload = upload.model_copy(update={"uploader": facts.uploader, "reach": facts.reach, "run": run})
        execution = workflow.start(run, upload.model_dump())
    except Exception:
        # Let S3's retry (or the sweep) start it, under a new name; unless this run's
        # execution started after all (an ambiguous error) and has claimed the item.
        items.mark_start_failed(upload.media_id, run)
        raise
    if deps.history is not None and upload.uploader:  # uploads outside the API (the CLI) have no uploader
        deps.history.record_upload(upload.uploader, upload.media_id)
    logger.info("workflow started", extra={"media_id": upload.media_id})
    return {"media_id": upload.media_id, "started": True, "execution": execution}


def _refuse_replacement(upload: Upload, deps: Deps) -> dict:
    """A new version of a key whose item already exists: the upload form was used again.

    Refused, not scanned as a new item. One grant admits one upload: the media id, the
    grant chain, the platform's reference and every decision are per key, so a second
    item for the same key would need ids the platform never asked for, and an item
    re-scanned in place would let a client swap bytes under a decision already made.
    The new version is kept (it may be evidence of why the form was reused), tagged so it
    is never mistaken for the scanned one, never served (only the sanitized copy is), and
    never deleted here; the pinned version stays the original. No run starts.

    The tag comes first and the audit record last: a crash in between makes S3 redeliver
    the event, and both steps are safe to repeat (a repeated audit record is visible and
    harmless; a lost one would not be).
    """
    items, blobs = deps.need("items"), deps.need("blobs")
    try:
        blobs.tag(upload.bucket, upload.key, REPLACED_TAGS, version_id=upload.version_id)
        missing = False
    except ObjectMissingError:
        # The event names a version that no longer exists (or never did): nothing to keep
        # or to mark. Raising would only park the event and fail again on every redrive.
        missing = True
    chain = trusted(items.audit_chain(upload.media_id), upload.media_id)
    if not any(r.event == REPLACED_REFUSED and r.detail.get("version_id") == upload.version_id for r in chain):
        # The role may not read the item: the pinned version comes from the "received" record.
        pinned = next((r.detail.get("version_id") for r in chain if r.event == "received"), None)
        detail = {"key": upload.key, "version_id": upload.version_id, "pinned_version_id": pinned}
        items.append_audit(upload.media_id, "system:start", REPLACED_REFUSED,
                           {**detail, "version_missing": True} if missing else detail)
    logger.warning("replacement of a scanned upload refused",
                   extra={"media_id": upload.media_id, "version_id": upload.version_id})
    return {"media_id": upload.media_id, "started": False, "refused": "upload_replaced"}
