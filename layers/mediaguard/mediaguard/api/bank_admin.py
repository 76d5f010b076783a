"""Bank administration over HTTP (admin only): the console's Banks tab and its "add to bank".

Served by its own function (``functions/bank_admin``) on the review API, because writing a
bank's audit chain (``bank:<name>``) is what the review API's role is denied (issue 14 #8):
this function's role may write those chains and the bank tables, and nothing of the review
pipeline. ``GET /admin/banks`` (the listing) stays on the review API.

=======  ==============================================  =====  =====================================
method   path                                            role   answer
=======  ==============================================  =====  =====================================
POST     /admin/banks                                    admin  bank (201); 409 if it exists
GET      /admin/banks/{bank}/entries?limit=              admin  {items: [entry], counts}; 404
POST     /admin/banks/{bank}/entries                     admin  add report: hashes computed by the
                                                                caller (the console hashes media in
                                                                the browser: no media is sent)
POST     /admin/banks/{bank}/csv                         admin  add report of a PDQ CSV (validated
                                                                whole before anything is written)
POST     /admin/banks/{bank}/confirm {ref}               admin  {items: [entry]}
POST     /admin/banks/{bank}/withdraw {ref}              admin  {items: [entry]} (hash deleted)
POST     /admin/banks/{bank}/items/{media_id}            admin  add report: the item's own
                                                                fingerprints, source ``item:<id>``
=======  ==============================================  =====  =====================================

Banks keep no media (hash exchange practice). An entry added from an item this platform
holds records ``source: item:<media_id>``, so the item view can show that item's sanitized
copy beside a new match (blurred, like the upload).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediaguard.analysis.banks import errors as bank_errors
from mediaguard.analysis.banks.model import AddReport, NewEntry
from mediaguard.analysis.banks.service import BankService
from mediaguard.api import errors
from mediaguard.api.auth import authenticate_reviewer, credentials
from mediaguard.api.errors import ApiError, ConflictError, InvalidRequestError, NotFoundError
from mediaguard.decisions.review.roles import Caller
from mediaguard.decisions.review.settings import ReviewSettings
from mediaguard.ports import ItemStore

MEDIA_ID = r"^[A-Za-z0-9_-]{1,80}$"
BANK = r"^[A-Za-z0-9_.-]{1,64}$"
REF = r"^[A-Za-z0-9_.:#@-]{1,128}$"  # refs the console makes; confirm/withdraw take any ref in a body
ITEM_SOURCE = "item:"  # an entry's source when it was banked from an item this platform holds

app = errors.ApiResolver(enable_validation=True)
errors.install(app, validation_status=400)


@dataclass
class BankAdmin:
    """What the routes need: the bank service (its audit hook writes ``bank:<name>``), the
    media table (to bank an item from its stored fingerprints) and the review settings
    (who is an admin, for dev tokens)."""

    banks: BankService
    items: ItemStore
    settings: ReviewSettings


_provider: Callable[[], BankAdmin] | None = None


def use(provider: Callable[[], BankAdmin]) -> None:
    global _provider
    _provider = provider


def _admin_deps() -> BankAdmin:
    if _provider is None:
        raise RuntimeError("mediaguard.api.bank_admin.use() was not called")
    return _provider()


def check_caller(event: dict[str, Any]) -> None:
    """Every route is an admin's: 401, then 403, before any body is validated."""
    http = (event.get("requestContext") or {}).get("http") or {}
    if str(http.get("method") or "").upper() == "OPTIONS":
        return
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    authenticate_reviewer(claims, headers.get("authorization"), _admin_deps().settings).require("admin")


app.before_validation = check_caller


def _actor() -> str:
    who: Caller = authenticate_reviewer(*credentials(app.current_event), _admin_deps().settings)
    who.require("admin")
    return f"admin:{who.sub}"


def _refused(error: bank_errors.BankError) -> ApiError:
    if isinstance(error, bank_errors.BankNotFoundError | bank_errors.EntryNotFoundError):
        return NotFoundError(str(error), reason=error.reason)
    if isinstance(error, bank_errors.BankExistsError | bank_errors.ConcurrentUpdateError
                  | bank_errors.EntryWithdrawnError):
        return ConflictError(str(error), reason=error.reason)
    return InvalidRequestError(str(error), reason=error.reason)


class BankIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=BANK)
    kind: str = Field(pattern=r"^(block|flag|allow)$")
    action: str | None = Field(default=None, max_length=16)
    pdq_threshold: int | None = Field(default=None, ge=0, le=256)
    embedding_threshold: float | None = Field(default=None, gt=0, le=1)


class HashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(pattern=REF)
    pdq: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    quality: int | None = Field(default=None, ge=0, le=100)


class HashesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # 500 hashes of ~120 bytes each stay well inside the 64 KiB body limit.
    entries: list[HashIn] = Field(min_length=1, max_length=500)
    source: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")

    @field_validator("source")
    @classmethod
    def _not_an_item(cls, source: str | None) -> str | None:
        # ``item:<id>`` makes the item view show that item beside every match of the entry:
        # only banking an item (which reads its stored fingerprints) may claim it.
        if source is not None and source.startswith(ITEM_SOURCE):
            raise ValueError("the item: source is set only by banking an item")
        return source


def _csv_source(name: str | None) -> str:
    """A digest of the CSV's file name, never the name: every reviewer sees an entry's source,
    and a file name can name a person."""
    return f"csv:{hashlib.sha256(name.encode()).hexdigest()[:12]}" if name else "csv"


class CsvIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    csv: str = Field(min_length=1, max_length=60_000)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_. -]{1,80}$")  # the file's name, for the source


class RefIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # In the body, not the path: a CSV's refs may hold any printable character (check_ref).
    ref: str = Field(min_length=1, max_length=256)


class EntryOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bank: str
    ref: str
    status: str
    signals: list[str] = []
    pdq: str | None = None
    quality: int | None = None
    group: str | None = None
    source: str | None = None
    added_at: str | None = None
    added_by: str | None = None
    confirmed_at: str | None = None
    confirmed_by: str | None = None
    withdrawn_at: str | None = None
    withdrawn_by: str | None = None


class EntryPage(BaseModel):
    items: list[EntryOut]
    counts: dict[str, int]  # of the first COUNT_CAP entries when counted_all is false
    truncated: bool  # more entries than listed
    counted_all: bool


class EntriesOut(BaseModel):
    items: list[EntryOut]


def _report(report: AddReport) -> dict[str, Any]:
    return {**report.counts(), "refs": report.refs}


@app.post("/admin/banks", summary="Create an empty bank")
def create_bank(request: Annotated[BankIn, Body()]) -> Response[dict]:
    actor, deps = _actor(), _admin_deps()
    options: dict[str, Any] = {"action": request.action, "embedding_threshold": request.embedding_threshold}
    if request.pdq_threshold is not None:
        options["pdq_threshold"] = request.pdq_threshold
    try:
        bank = deps.banks.create_bank(request.name, request.kind, actor=actor, **options)
    except bank_errors.BankError as error:
        raise _refused(error) from None
    return Response(201, content_types.APPLICATION_JSON, bank.to_dict())


# Counting reads entries one by one (a Query over the bank's partition): stop here, so a
# bank of millions of hashes (a StopNCII import) answers in a request's time.
COUNT_CAP = 10_000


@app.get("/admin/banks/<bank>/entries", summary="A bank's entries by ref (active and withdrawn)")
def list_entries(bank: Annotated[str, Path(pattern=BANK)],
                 limit: Annotated[int, Query(ge=1, le=500)] = 200) -> EntryPage:
    _actor()
    try:
        entries = _admin_deps().banks.entries(bank)
        shown, counts, read = [], {"active": 0, "withdrawn": 0}, 0
        for entry in islice(entries, COUNT_CAP + 1):
            read += 1
            if read > COUNT_CAP:
                break
            counts["active" if entry.active else "withdrawn"] += 1
            if len(shown) < limit:
                shown.append(entry)
    except bank_errors.BankError as error:
        raise _refused(error) from None
    return EntryPage(items=[EntryOut.model_validate(e.to_dict()) for e in shown], counts=counts,
                     truncated=read > len(shown), counted_all=read <= COUNT_CAP)


@app.post("/admin/banks/<bank>/entries", summary="Add PDQ hashes (computed where the media is)")
def add_hashes(bank: Annotated[str, Path(pattern=BANK)], request: Annotated[HashesIn, Body()]) -> dict:
    actor = _actor()
    entries = [NewEntry(ref=e.ref, signal="pdq", value=e.pdq.lower(), quality=e.quality) for e in request.entries]
    try:
        report = _admin_deps().banks.add_entries(bank, entries, actor=actor, source=request.source or "console")
    except bank_errors.BankError as error:
        raise _refused(error) from None
    return _report(report)


@app.post("/admin/banks/<bank>/csv", summary="Import a CSV of PDQ hashes (all rows valid, or nothing written)")
def import_csv(bank: Annotated[str, Path(pattern=BANK)], request: Annotated[CsvIn, Body()]) -> dict:
    actor = _actor()
    try:
        report = _admin_deps().banks.import_csv(bank, request.csv.lstrip("\ufeff"), actor=actor,
                                                source=_csv_source(request.name))
    except bank_errors.BankError as error:
        raise _refused(error) from None
    return _report(report)


@app.post("/admin/banks/<bank>/confirm", summary="Record that you checked an entry (or a video's group)")
def confirm(bank: Annotated[str, Path(pattern=BANK)], request: Annotated[RefIn, Body()]) -> EntriesOut:
    actor = _actor()
    try:
        done = _admin_deps().banks.confirm(bank, request.ref, actor=actor)
    except bank_errors.BankError as error:
        raise _refused(error) from None
    return EntriesOut(items=[EntryOut.model_validate(e.to_dict()) for e in done])


@app.post("/admin/banks/<bank>/withdraw", summary="Withdraw an entry (or group): hash deleted, tombstone kept")
def withdraw(bank: Annotated[str, Path(pattern=BANK)], request: Annotated[RefIn, Body()]) -> EntriesOut:
    actor = _actor()
    try:
        done = _admin_deps().banks.withdraw(bank, request.ref, actor=actor)
    except bank_errors.BankError as error:
        raise _refused(error) from None
    return EntriesOut(items=[EntryOut.model_validate(e.to_dict()) for e in done])


_PDQ = re.compile(r"^[0-9a-f]{64}$")


def item_entries(media_id: str, item: dict[str, Any]) -> list[NewEntry]:
    """What banking an item stores: its PDQ (a still) or its frames' PDQs (a video, entries
    ``<ref>#<n>`` grouped under the ref), from the fingerprints the pipeline stored. The ref
    is the media id: the bank then names which item it came from."""
    pdq = item.get("pdq")
    if isinstance(pdq, str) and _PDQ.match(pdq):
        return [NewEntry(ref=media_id, signal="pdq", value=pdq, quality=_int(item.get("pdq_quality")))]
    frames = [p for p in (pdq or []) if isinstance(p, str) and _PDQ.match(p)] if isinstance(pdq, list) else []
    return [NewEntry(ref=f"{media_id}#{n}", signal="pdq", value=p, group=media_id) for n, p in enumerate(frames)]


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@app.post("/admin/banks/<bank>/items/<media_id>", summary="Bank an item this platform holds (add to bank)")
def bank_item(bank: Annotated[str, Path(pattern=BANK)], media_id: Annotated[str, Path(pattern=MEDIA_ID)]) -> dict:
    actor, deps = _actor(), _admin_deps()
    item = deps.items.get(media_id)
    if item is None:
        raise NotFoundError("no such item")
    if not isinstance(item.get("pdq"), str):
        # A video's frame PDQs are not on the item (size): the frames stage's audit record has them.
        frames = [r for r in deps.items.audit_chain(media_id) if r.event == "frames"]
        if frames:
            item = {**item, "pdq": (frames[-1].detail or {}).get("pdq") or []}
    entries = item_entries(media_id, item)
    if not entries:
        raise ConflictError("the item has no fingerprint to bank (not sanitized, or audio only)",
                            reason="no_fingerprint")
    try:
        report = deps.banks.add_entries(bank, entries, actor=actor, source=f"{ITEM_SOURCE}{media_id}")
    except bank_errors.BankError as error:
        raise _refused(error) from None
    report.refs = [e.ref for e in entries]
    # Audited on bank:<name> (entries_added, source item:<id>); the item's own chain is
    # not this function's to write (its role writes bank chains only).
    return _report(report) | {"bank": bank}
