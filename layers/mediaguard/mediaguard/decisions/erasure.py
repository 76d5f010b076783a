"""An uploader's erasure request: delete what we may, keep what a legal hold requires, audit both.

For the uploader (named by their platform id, turned into the keyed hash at once):

* deleted: their history rows (counters, strikes), and for each of their items not on hold
  the stored upload (every version) and everything under ``media/<id>/``; the item keeps its
  decision record but loses the link to the uploader (``uploader`` removed, ``erased_at`` set);
* kept, with the reason: items a legal order names or enforced (``legal_order:<id>``) and items
  whose original sits in the evidence bucket under S3 Object Lock (``evidence_object_lock``:
  a removal preserved it; the lock, not us, decides when it may go);
* pseudonymised: their appeals carry ``erased:<key>`` instead of the platform id;
* audited on ``erasure:<uploader key>`` (ids and counts only) and on each item's chain.

The audit trail itself is kept, including the upload grant records (``upload:<id>``) whose
actor is ``client:<platform id>``: rewriting a record would break the tamper-evident chain.
That id stays until the audit retention ends; the README's retention section says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from mediaguard.decisions.history import Pseudonymiser
from mediaguard.decisions.legal import ItemFinder, LegalOrderStore, held_items
from mediaguard.ports import BlobCustody, ItemStore

ACTOR_PREFIX = "admin:"


class AppealsEraser(Protocol):
    def pseudonymise(self, uploader_id: str, key: str) -> int:
        """Replace the uploader's id on their appeals by the keyed hash; appeals changed."""


class ErasableHistory(Protocol):
    def erase(self, uploader: str) -> int:
        """Delete every history row of the uploader (platform id); rows deleted."""


@dataclass
class ErasurePorts:
    items: ItemStore
    custody: BlobCustody
    finder: ItemFinder
    orders: LegalOrderStore
    pseudonymiser: Pseudonymiser
    media_bucket: str
    history: ErasableHistory | None = None
    appeals: AppealsEraser | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def erase_uploader(uploader_id: str, who: str, ports: ErasurePorts) -> dict[str, Any]:
    """Carry out the request; returns what was deleted and kept (ids only), as audited."""
    key = ports.pseudonymiser.key(uploader_id)
    held = held_items(ports.orders.list(), ports.finder)
    deleted: list[dict[str, Any]] = []
    kept: list[dict[str, str]] = []
    now = ports.clock().isoformat()
    for media_id in sorted(ports.finder.by_uploader(key)):
        item = ports.items.get(media_id) or {}
        record = item.get("enforcement") or {}
        # A removal overturned on appeal is live again: its public copies are erased like any
        # item's, but its evidence copies stay under Object Lock until retention ends, and
        # the result says so (it read as wholly deleted).
        retained = any(e.get("state") == "preserved" for e in record.get("evidence") or [])
        if media_id in held:
            kept.append({"media_id": media_id, "reason": f"legal_order:{held[media_id]}"})
        elif record.get("custody") in ("preserved", "evidence"):
            kept.append({"media_id": media_id, "reason": "evidence_object_lock"})
        else:
            objects = 0
            if item.get("upload_bucket") and item.get("upload_key"):
                objects += ports.custody.delete(item["upload_bucket"], [item["upload_key"]])
            media_keys = ports.custody.list(ports.media_bucket, f"media/{media_id}/")
            if media_keys:
                objects += ports.custody.delete(ports.media_bucket, media_keys)
            ports.items.update(media_id, {"uploader": None, "erased_at": now, "served_key": None,
                                          "derivative_key": None})
            deleted.append({"media_id": media_id, "object_versions": objects,
                            **({"evidence_retained": True} if retained else {})})
        ports.items.append_audit(media_id, who, "uploader_erased",
                                 {"kept": media_id in {k["media_id"] for k in kept}})
    history_rows = ports.history.erase(uploader_id) if ports.history is not None else 0
    appeals = ports.appeals.pseudonymise(uploader_id, key) if ports.appeals is not None else 0
    result = {"uploader_key": key, "deleted": deleted, "kept": kept, "history_rows_deleted": history_rows,
              "appeals_pseudonymised": appeals, "erased_at": now}
    ports.items.append_audit(f"erasure:{key}", who, "uploader_erasure",
                             {k: v for k, v in result.items() if k != "uploader_key"})
    return result
