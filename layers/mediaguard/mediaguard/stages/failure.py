"""Failure: the state machine's Catch target; a reason on the item, the original kept and
restricted, and a failed (not rejected) item queued for people."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from mediaguard import errors, observability
from mediaguard.models import FailureInput, FailureResult
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)

_REJECTIONS = {cls.__name__: cls for cls in errors.REJECTION_ERRORS}


def record_failure(request: FailureInput, deps: Deps) -> FailureResult:
    """Terminal bookkeeping for a caught error: reason on the item, the original kept
    and marked restricted, an audit record. Internal error text never reaches the item."""
    blobs, items = deps.need("blobs"), deps.need("items")
    error_type = str(request.error.get("Error", "Unknown"))
    message = ""
    try:
        message = json.loads(request.error.get("Cause", "{}")).get("errorMessage", "")
    except (json.JSONDecodeError, AttributeError):
        message = ""
    rejected = error_type in _REJECTIONS
    status = "rejected" if rejected else "failed"
    reason = _REJECTIONS[error_type].reason if rejected else "internal_error"
    safe_message = message if rejected else "processing failed; see the execution history"
    # start_pending removed: a run that ended here is not stuck, and left in the sweep's
    # sparse index it would be read (and refused) on every sweep, crowding out real ones.
    fields: dict = {"status": status, "error_type": error_type, "error_reason": reason,
                    "error_message": safe_message, "start_pending": None}
    item = {} if rejected else items.get(request.media_id) or {}
    received = None if rejected or item.get("sha256") else _hash_original(request, blobs)
    if received:
        # Sanitize writes the upload's hash with its results, or on a caught error: a run it
        # never returned from (a timeout, out of memory) left none, and evidence needs it.
        fields.update(received)
    try:
        # The item first, conditional on this run being current: a run a re-drive replaced
        # must not mark the new run's item failed, nor tag the object it is scanning.
        items.update(request.media_id, fields, if_run=request.run)
    except errors.SupersededRunError:
        logger.info("failure of a superseded run not recorded",
                    extra={"media_id": request.media_id, "error_type": error_type})
        return FailureResult(status="superseded", error_type=error_type, reason=reason)
    detail: dict = {"error_type": error_type, "reason": reason}
    if received:
        detail["sha256"] = received["sha256"]
    try:
        blobs.tag(request.bucket, request.key, {"mediaguard-state": status, "mediaguard-reason": reason},
                  version_id=request.version_id)
    except errors.ObjectMissingError:
        # Enforcement had already moved the original to the evidence bucket (a removal that
        # failed after the move): the copy there is kept under its own record. Failing here
        # instead would leave the item without a terminal status on every retry.
        detail["original"] = "not_in_upload_bucket"
    items.append_audit(request.media_id, "system:catch", status, detail)
    if not rejected:
        # Nothing was decided about this upload: people look at it (and may re-drive it after
        # a fix, ``mediaguard redrive``). A retried Catch finds the open task: no second one.
        deps.need("review").enqueue(request.media_id, float(item.get("risk") or 0.0), request.reach,
                                    f"failed:{reason}")
    log = logger.info if rejected else logger.warning  # a rejection is an expected outcome
    # Reason codes are a closed set (errors.REJECTION_ERRORS), safe as a dimension.
    if rejected:
        observability.count("Rejections", reason=reason)
    else:
        observability.count("Failures", reason=reason)
    log(status, extra={"media_id": request.media_id, "error_type": error_type, "reason": reason})
    return FailureResult(status=status, error_type=error_type, reason=reason)


def _hash_original(request: FailureInput, blobs: Any) -> dict | None:
    """``{sha256, size}`` of the scanned version of the upload (streamed), or None when it
    has left the upload bucket (enforcement moved it to evidence, with its own hash)."""
    try:
        sha256, size = blobs.sha256(request.bucket, request.key, version_id=request.version_id)
    except errors.ObjectMissingError:
        return None
    return {"sha256": sha256, "size": size}
