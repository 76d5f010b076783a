"""Who uploaded an item, and the audience they declared: read from the upload's grant."""

from __future__ import annotations

from mediaguard.ingress import grant
from mediaguard.ports import Deps


def upload_facts(media_id: str, deps: Deps) -> tuple[str | None, int | None]:
    """``(uploader, declared reach)`` from one read of the upload's grant chain."""
    facts = grant.read_facts(media_id, deps.items.audit_chain)
    return facts.uploader, facts.reach


def uploader_of(media_id: str, deps: Deps) -> str | None:
    """The JWT subject the upload was granted to.

    The grant in the upload's own audit chain (``upload:{media_id}``) says who received the
    presigned POST for this key, and that chain is tamper-evident. (The item's ``uploader``
    attribute is the keyed HMAC of that subject, for search and erasure: never compared
    with a subject.)
    """
    return upload_facts(media_id, deps)[0]
