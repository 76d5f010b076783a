"""Who uploaded an item, and the audience they declared: read from the upload's grant."""

from __future__ import annotations

from typing import Any

from mediaguard.ingress import grant
from mediaguard.ports import Deps


def upload_facts(media_id: str, deps: Deps, item: dict[str, Any] | None = None) -> tuple[str | None, int | None]:
    """``(uploader, declared reach)`` from one read of the upload's grant chain (the item's own
    ``uploader`` attribute wins when the pipeline recorded one)."""
    facts = grant.read_facts(media_id, deps.items.audit_chain)
    uploader = str(item["uploader"]) if item and item.get("uploader") else facts.uploader
    return uploader, facts.reach


def uploader_of(media_id: str, deps: Deps, item: dict[str, Any] | None = None) -> str | None:
    """The JWT subject the upload was granted to.

    An ``uploader`` attribute on the item wins when the pipeline records one; otherwise
    the grant in the upload's own audit chain (``upload:{media_id}``) says who received
    the presigned POST for this key, and that chain is tamper-evident.
    """
    if item and item.get("uploader"):
        return str(item["uploader"])
    return upload_facts(media_id, deps)[0]
