"""Start: one workflow execution per upload, however often S3 delivers the event."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from mediaguard.ingress import grant
from mediaguard.models import Upload
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)


def upload_from_key(bucket: str, key: str) -> Upload:
    """The execution input for an object the upload bucket reported (key already URL-decoded)."""
    return Upload(media_id=grant.media_id_from_key(key), bucket=bucket, key=key)


def start(upload: Upload, deps: Deps) -> dict:
    """Start the workflow once per upload.

    Express workflows do not deduplicate by execution name, so creating the item with a
    conditional write is what makes a duplicated S3 event a no-op, and the first stage's
    claim (``ItemStore.claim_run``) what makes a duplicated execution one. The grant is
    read here, once, and travels in the execution input, so scoring and enforcement
    never re-read the upload's chain. If this function dies before StartExecution
    returns, the item stays ``start_pending`` and the sweep re-drives it.
    """
    items, workflow = deps.need("items"), deps.need("workflow")
    run = items.create_once(upload)
    if run is None:
        logger.info("duplicate upload event ignored", extra={"media_id": upload.media_id})
        return {"media_id": upload.media_id, "started": False}
    try:
        # Audited before the execution starts, so "received" is always the chain's first record.
        items.append_audit(upload.media_id, "system:start", "received", {"key": upload.key, "run": run})
        facts = grant.read_facts(upload.media_id, items.audit_chain)
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
