"""Re-driving an upload: a new run, under a new execution name, for an item whose last run
never got going (the start function died, StartExecution failed or was ambiguous) or failed.

Every attempt has its own name (``models.run_name``) and the pipeline's first stage claims
the item for its run (``ItemStore.claim_run``), so a re-drive can never leave two
executions both working on one item: whichever run is not the item's current one stops
at the claim (``SupersededRunError``). Each re-drive is audited (``redriven``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from mediaguard.errors import MediaguardError, RedriveRefusedError
from mediaguard.ingress import grant
from mediaguard.models import Upload, run_name
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)

# What an operator may re-drive: an upload that never started, or whose run failed after a
# fix. Not ``rejected`` (the upload itself was refused: it would be again) and not a
# finished item (its decision stands; a reviewer changes it).
REDRIVABLE = ("received", "start_failed", "failed")
# What the sweep re-drives on its own: starts that never reached the first stage.
STUCK = ("received", "start_failed")
# A healthy run claims its item within seconds of StartExecution; the sweep runs every 5
# minutes (template.yaml SweepFunction), so an item is re-driven 5-10 minutes after its start.
STUCK_AFTER = timedelta(minutes=5)
SWEEP_LIMIT = 200  # per run: a backlog larger than this drains over the following runs


class ItemNotFoundError(MediaguardError):
    reason = "item_not_found"


class SweepIncompleteError(MediaguardError):
    """Some stuck items could not be re-driven this run (each logged by id); the next run
    tries again. Raised after every other item was handled, so the function's error
    metric shows it."""

    reason = "sweep_incomplete"


@dataclass(frozen=True)
class Redriven:
    media_id: str
    run: str
    previous_run: str | None
    previous_status: str
    execution: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def redrive(media_id: str, deps: Deps, *, actor: str, reason: str,
            statuses: tuple[str, ...] = REDRIVABLE) -> Redriven:
    """Start a new run of ``media_id`` if its status is one of ``statuses``. Example::

        redrive("0f3c...", deps, actor="admin:alice", reason="fixed_classifier").run  # '0f3c...-r1a2b3c4d'

    Raises ``ItemNotFoundError``, or ``RedriveRefusedError`` when the item is in another
    state (or changed while this ran); a StartExecution error propagates, the item then
    marked ``start_failed`` so the sweep takes it up.
    """
    items, workflow = deps.need("items"), deps.need("workflow")
    item = items.get(media_id)
    if item is None:
        raise ItemNotFoundError("no such item")
    status, previous = item.get("status", "unknown"), item.get("run")
    if status not in statuses:
        raise RedriveRefusedError(f"an item in status {status} is not re-driven")
    run = run_name(media_id)
    current = items.restart(media_id, status, previous, run)
    if current is None:
        raise RedriveRefusedError("the item changed while the re-drive was prepared")
    if status in STUCK and not any(r.event == "received" for r in items.audit_chain(media_id)):
        # The start died (or its write failed) between creating the item and auditing it:
        # every chain begins with the receipt, so it is recorded now, marked late.
        items.append_audit(media_id, actor, "received",
                           {"key": current["upload_key"], "version_id": current.get("upload_version_id"),
                            "run": run, "recorded_late": True})
    items.append_audit(media_id, actor, "redriven",
                       {"run": run, "previous_run": previous, "previous_status": status, "reason": reason})
    if status == "failed" and deps.review is not None:
        # The failed run queued the item for people; the new run decides again.
        deps.review.withdraw_failure(media_id, actor, run)
    facts = grant.read_facts(media_id, items.audit_chain)
    # The pinned version: the key may hold a refused replacement by now (a reused form).
    upload = Upload(media_id=media_id, bucket=current["upload_bucket"], key=current["upload_key"],
                    version_id=current.get("upload_version_id"), uploader=facts.uploader, reach=facts.reach, run=run)
    try:
        execution = workflow.start(run, upload.model_dump())
    except Exception:
        items.mark_start_failed(media_id, run)  # the sweep takes it up again
        raise
    logger.info("redriven", extra={"media_id": media_id, "run": run, "previous_status": status})
    return Redriven(media_id, run, previous, status, execution)


@dataclass
class SweepOutcome:
    stuck: int = 0
    redriven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_stuck(deps: Deps, now: datetime, older_than: timedelta = STUCK_AFTER,
                limit: int = SWEEP_LIMIT) -> SweepOutcome:
    """Re-drive every item whose current run was asked for more than ``older_than`` ago
    and never claimed by an execution. Found through the sparse ``start_pending`` index,
    not a scan."""
    items = deps.need("items")
    outcome = SweepOutcome()
    for media_id in items.stuck(now - older_than, limit):
        outcome.stuck += 1
        try:
            outcome.redriven.append(redrive(media_id, deps, actor="system:sweep", reason="stuck_start",
                                            statuses=STUCK).run)
        except RedriveRefusedError:
            continue  # claimed or re-driven since the index was read: not stuck any more
        except Exception as exc:  # noqa: BLE001 - one item's failure must not stop the others; raised below
            logger.warning("redrive failed", extra={"media_id": media_id, "error_type": type(exc).__name__})
            outcome.failed.append(media_id)
    return outcome
