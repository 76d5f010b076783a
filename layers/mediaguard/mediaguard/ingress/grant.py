"""The upload grant: where an upload lands and who was handed the form for it.

The upload API appends an ``upload_granted`` record to the chain ``upload:{media_id}``
when it hands out a presigned POST for ``uploads/{media_id}``; that record is the one
place that says who uploaded a file and what reach the platform declared. Everything
else (the start stage, scoring, enforcement, review and appeals) asks this module,
so the key layout and the chain's names exist once.

The key carries no file name: names are user data and never leave the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mediaguard.audit.chain import AuditRecord, trusted
from mediaguard.errors import MediaRejectedError

UPLOAD_PREFIX = "uploads/"
GRANT_CHAIN_PREFIX = "upload:"
CLIENT_ACTOR_PREFIX = "client:"
GRANTED = "upload_granted"
REFUSED = "upload_refused"


def upload_key(media_id: str) -> str:
    """The upload bucket key a grant for ``media_id`` admits.

    >>> upload_key("abc")
    'uploads/abc'
    """
    return f"{UPLOAD_PREFIX}{media_id}"


def media_id_from_key(key: str) -> str:
    """The media id of an upload key; anything outside the prefix is a typed rejection."""
    if not key.startswith(UPLOAD_PREFIX) or "/" in key[len(UPLOAD_PREFIX):]:
        raise MediaRejectedError("object key is outside the upload prefix", reason="bad_key")
    return key[len(UPLOAD_PREFIX):]


def grant_chain(media_id: str) -> str:
    """The audit chain holding the grant (and any refusal) for one upload."""
    return f"{GRANT_CHAIN_PREFIX}{media_id}"


def client_actor(subject: str) -> str:
    """The audit actor for a platform user (the JWT subject)."""
    return f"{CLIENT_ACTOR_PREFIX}{subject}"


@dataclass(frozen=True)
class UploadFacts:
    """What the grant says: who received the form (None for uploads outside the API,
    e.g. the CLI) and the reach the platform declared with the request."""

    uploader: str | None = None
    reach: int | None = None


def facts_from_chain(records: Iterable[AuditRecord], media_id: str) -> UploadFacts:
    """The facts of the first grant in an upload chain, read only from records that verify
    from the chain's start (``audit.chain.trusted``): a record forged into the table cannot
    make someone else the uploader."""
    for record in trusted(list(records), grant_chain(media_id)):
        if record.event != GRANTED:
            continue
        uploader = record.actor[len(CLIENT_ACTOR_PREFIX):] if record.actor.startswith(CLIENT_ACTOR_PREFIX) else None
        reach = record.detail.get("reach")
        return UploadFacts(uploader=uploader, reach=int(reach) if reach is not None else None)
    return UploadFacts()


def read_facts(media_id: str, read_chain: Callable[[str], list[AuditRecord]]) -> UploadFacts:
    """One read of the grant chain through the item store's ``audit_chain``."""
    return facts_from_chain(read_chain(grant_chain(media_id)), media_id)
