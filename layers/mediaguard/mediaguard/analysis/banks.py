"""Hash banks: what a bank holds, the rules for changing it, and the CSV exchange format.

A bank is a named list of entries with a *kind*: ``block`` (e.g. victim-submitted NCII
hashes), ``flag`` (e.g. known deepfakes) or ``allow`` (verified originals; scoring lets
an allow match override a block match). It has per-signal thresholds (PDQ distance,
default 31; embedding cosine, default None = the system threshold) and an optional
action label that its matches carry. An entry is one banked photo, or one frame of a
banked video (``ref = <group>#<n>``), with a PDQ hash (64 hex), an embedding (base64 of
float16, see :func:`encode_embedding`) or both.

Third-party hashes can be wrong, so an entry can be confirmed (who, when) and
withdrawn. StopNCII practice is that a withdrawn hash must be deleted: withdrawing
drops the hash and the embedding at once and keeps a tombstone (ref, who, when), so the
audit holds and re-importing the same list cannot bring the hash back.

Storage sits behind :class:`BankStore` (DynamoDB in ``adapters/banks.py``, files in
``local/bankfile.py``). :class:`BankService` holds the rules and is also the
:class:`~mediaguard.analysis.matching.BankReader` the similarity stage reads.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import mimetypes
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO, get_args

import numpy as np

from mediaguard.analysis.matching import BankInfo, IndexEntry
from mediaguard.errors import MediaguardError, MediaRejectedError
from mediaguard.models import Action, BankKind
from mediaguard.settings import Settings
from mediaguard.signals import EmbeddingSignal, PdqSignal

BANK_KINDS: tuple[str, ...] = get_args(BankKind)
ACTIONS: tuple[str, ...] = get_args(Action)
EntryStatus = Literal["active", "withdrawn", "deleted"]

# Bank names become DynamoDB keys, directory names and audit chain names.
_BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REF_MAX_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A bank's default PDQ distance (the value lives on PdqSignal; cli.bank reads it here).
PDQ_MAX_DISTANCE = PdqSignal.match_threshold
# Unrelated photos differ by ~128 +- 8 PDQ bits; past 63 a bank would match noise.
PDQ_THRESHOLD_MAX = 63
# What a bank deletion leaves behind (entries with no hash, status "deleted") must outlive
# every index build that still holds the entries (builds run every 15 minutes); a week
# is ample, and DynamoDB's TTL deletes them some time after.
DELETED_MARKER_TTL = timedelta(days=7)
# Entries written per store round trip when adding; a store may ask for more (files).
DEFAULT_BATCH = 1000

# The CSV this module writes. One row per entry; a withdrawn entry is a row with no hash.
CSV_HEADER = ("pdq_hash", "quality", "ref", "status", "group")


# --- errors ---------------------------------------------------------------------------


class BankError(MediaguardError):
    """A bank operation that cannot be done as asked. ``reason`` is a stable code."""

    reason = "bank_error"


class BankSourceError(BankError, ValueError):
    """A bank source (folder, CSV, spec) that cannot be read."""

    reason = "invalid_bank_source"


_CSV_PROBLEMS = {
    "unreadable_row": "is not valid CSV",
    "missing_pdq": "has no PDQ hash (64 hex characters)",
    "invalid_pdq": "has a PDQ hash that is not 64 hex characters",
    "invalid_quality": "has a quality that is not an integer from 0 to 100",
    "missing_ref": "is withdrawn but names neither a ref nor a hash",
    "invalid_ref": "has a ref or group that is empty, too long or holds control characters",
    "duplicate_ref": "repeats an earlier row's ref with different contents",
}


class BankCsvError(BankSourceError):
    """An invalid CSV row. The message names the row number and the problem, never the
    row's contents (they may be hashes of someone's intimate images)."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(f"row {row} {_CSV_PROBLEMS[reason]}", reason=reason)
        self.row = row


class InvalidBankError(BankError, ValueError):
    reason = "invalid_bank"


class InvalidEntryError(BankError, ValueError):
    reason = "invalid_entry"


class BankExistsError(BankError):
    reason = "bank_exists"


class BankNotFoundError(BankError, LookupError):
    reason = "bank_not_found"


class EntryNotFoundError(BankError, LookupError):
    reason = "entry_not_found"


class EntryWithdrawnError(BankError):
    reason = "entry_withdrawn"


class ConcurrentUpdateError(BankError):
    """The entry changed between reading and writing it; run the command again."""

    reason = "concurrent_update"


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bank:
    name: str
    kind: BankKind
    action: Action | None = None
    pdq_threshold: int = PDQ_MAX_DISTANCE
    embedding_threshold: float | None = None  # minimum cosine; None = the system default
    created_at: datetime | None = None
    created_by: str | None = None

    def info(self) -> BankInfo:
        """The matcher's view of this bank."""
        return BankInfo(name=self.name, kind=self.kind, action=self.action, pdq_threshold=self.pdq_threshold,
                        embedding_threshold=self.embedding_threshold)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": _iso(self.created_at)}


@dataclass(frozen=True)
class Entry:
    """A stored entry. ``signals`` names what it carries (or carried, for a tombstone)."""

    bank: str
    ref: str
    status: EntryStatus = "active"
    pdq: str | None = None
    quality: int | None = None
    embedding: str | None = None
    signals: tuple[str, ...] = ()
    group: str | None = None
    source: str | None = None
    added_at: datetime | None = None
    added_by: str | None = None
    updated_at: datetime | None = None
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    expires_at: datetime | None = None  # deletion markers only

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; the embedding is left out (it is large and opaque)."""
        out = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in asdict(self).items() if k != "embedding"}
        out["signals"] = list(self.signals)
        return out


@dataclass(frozen=True)
class NewEntry:
    """An entry to add. ``value`` is the PDQ (the name the table has always used);
    ``signal`` is ``"pdq"`` when there is one, ``"embedding"`` for an embedding-only entry.
    ``status="withdrawn"`` (from a CSV) withdraws ``ref`` instead of adding it."""

    ref: str
    signal: str = "pdq"
    value: str | None = None
    quality: int | None = None
    embedding: str | None = None
    group: str | None = None
    status: Literal["active", "withdrawn"] = "active"


@dataclass(frozen=True)
class Features:
    """What a featurizer computes for one photo or one video frame."""

    pdq: str | None = None
    quality: int | None = None
    embedding: np.ndarray | Sequence[float] | str | None = None


# (media bytes, declared content type) -> one Features per photo, or per video frame.
Featurizer = Callable[[bytes, str | None], Sequence[Features]]


@dataclass
class AddReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    skipped_withdrawn: int = 0  # refs withdrawn earlier: never revived by an add
    skipped_rows: int = 0  # CSV rows for other signal types or marked false positive
    refs: list[str] = field(default_factory=list)  # add_media only: the refs it wrote

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "refs"}


# --- validation and small helpers -------------------------------------------------------


def check_bank_name(name: str) -> str:
    """The name, if it can be a bank's (it becomes a key, a directory and an audit chain)."""
    if not isinstance(name, str) or not _BANK_NAME.match(name):
        raise InvalidBankError("a bank name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def check_ref(ref: str, what: str = "ref") -> str:
    """The ref (or group) without surrounding blanks, if it is 1-256 printable characters."""
    ref = ref.strip() if isinstance(ref, str) else ""
    if not ref or len(ref) > REF_MAX_CHARS or _CONTROL.search(ref):
        raise InvalidEntryError(f"a {what} is 1-{REF_MAX_CHARS} printable characters")
    return ref


def _check_quality(quality: Any) -> int | None:
    if quality is None:
        return None
    if isinstance(quality, bool) or not isinstance(quality, int | float) or quality != int(quality) \
            or not 0 <= quality <= 100:
        raise InvalidEntryError("quality is an integer from 0 to 100")
    return int(quality)


def pdq_ref(pdq: str) -> str:
    """The ref of a hash imported without one: a one-way digest of the hash, so the same
    list imports idempotently and a tombstone does not keep the withdrawn hash."""
    return "pdq-" + hashlib.blake2b(pdq.encode(), digest_size=16, person=b"mediaguard.ref").hexdigest()


def content_ref(data: bytes) -> str:
    """The default ref of banked media: a one-way digest of its bytes (not a file name,
    which may name a person)."""
    return "m-" + hashlib.blake2b(data, digest_size=16, person=b"mediaguard.ref").hexdigest()


def encode_embedding(vector: np.ndarray | Sequence[float]) -> str:
    """An embedding as stored (``EmbeddingSignal.encode``: L2-normalised float16, base64).

        >>> decode_embedding(encode_embedding([3.0, 4.0])).tolist()
        [0.60009765625, 0.7998046875]
    """
    try:
        return EmbeddingSignal.encode(vector)
    except ValueError as exc:
        raise InvalidEntryError(str(exc)) from exc


def decode_embedding(text: str) -> np.ndarray:
    """The float32 vector of a stored embedding (see :func:`encode_embedding`)."""
    try:
        return EmbeddingSignal.decode(text)
    except ValueError as exc:
        raise InvalidEntryError(str(exc)) from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _signals_of(pdq: str | None, embedding: str | None) -> tuple[str, ...]:
    return tuple(name for name, value in (("pdq", pdq), ("embedding", embedding)) if value)


def _tombstone(entry: Entry, actor: str, now: datetime) -> Entry:
    # Only what the audit needs survives: the ref, who withdrew it and when. The group
    # and the signal names stay so a matcher can tell which frames of a video went.
    return Entry(bank=entry.bank, ref=entry.ref, status="withdrawn", signals=entry.signals or ("pdq",),
                 group=entry.group, updated_at=now, withdrawn_at=now, withdrawn_by=actor)


# --- CSV ----------------------------------------------------------------------------------
#
# Accepted shapes (header or not, any column order, extra columns ignored):
#   this module's export       pdq_hash,quality,ref,status,group
#   ThreatExchange `tx dataset -P --csv`   collab,signal_type,signal_str,category,tags
#   StopNCII FetchHashes records, flattened   signalType,hashValue,hashStatus,...
#   PDQ reference hasher        hash=<hex>,norm=..,delta=..,quality=..,filename=..
#   bare rows                   <hex>[,<quality>][,...]  or  "pdq <hex>" (tx text output)
# Rows that name another signal type (VideoMD5, VideoTMK, SHA-256, or any type not
# known as PDQ) and rows whose category is FALSE_POSITIVE are skipped and counted. A
# status of withdrawn/deleted makes the row a withdrawal. Without a ref column the ref
# is pdq_ref(hash); file names are never used as refs.

_HASH_COLUMNS = ("pdq_hash", "pdq", "hash", "hash_value", "signal_str", "signal", "indicator", "value")
_QUALITY_COLUMNS = ("quality", "pdq_quality")
_REF_COLUMNS = ("ref", "id", "hash_id", "indicator_id", "content_id", "media_id", "external_id", "case_number",
                "reference")
_TYPE_COLUMNS = ("signal_type", "hash_type", "type", "indicator_type", "algorithm")
_STATUS_COLUMNS = ("status", "hash_status", "case_status", "state")
_CATEGORY_COLUMNS = ("category",)
_GROUP_COLUMNS = ("group", "group_id")
_PDQ_TYPES = {"pdq", "imagepdq", "photopdq", "hashpdq", "pdqhash"}
# Names other hashes go by. SHA-256 is 64 hex characters too: a row that says it is one
# must never be read as a PDQ.
_NON_PDQ_TYPES = {"videomd5", "videotmk", "md5", "photomd5", "sha256", "sha1", "photosha256", "videosha256", "tmk",
                  "vpdq", "url", "text", "rawtext", "trendquery"}
_WITHDRAWN = {"withdrawn", "deleted", "removed", "revoked"}
_KEY_VALUE = re.compile(r"^[A-Za-z_][\w.-]*=")
_HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_HEXISH = re.compile(r"^[0-9A-Fa-f]{32,}$")  # a long hex run: a hash, maybe a broken one, never a column name


def _column(name: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")


@lru_cache(maxsize=1024)  # a column holds a handful of values ("ImagePDQ", "Active") a million times
def _token(value: str) -> str:
    return _NOT_ALNUM.sub("", value.lower())


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    text = text.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    delimiter = "\t" if "\t" in first and "," not in first else ","
    # strict: an unbalanced quote would otherwise swallow every row after it into one cell.
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise BankCsvError(reader.line_num, "unreadable_row") from None
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        filled = [c for c in cells if c]
        if len(filled) == 1 and len(filled[0].split()) > 1:  # "pdq <hex>", as `tx` prints
            cells = filled[0].split()
        yield reader.line_num, cells


_FIELDS = {"hash": _HASH_COLUMNS, "quality": _QUALITY_COLUMNS, "ref": _REF_COLUMNS, "type": _TYPE_COLUMNS,
           "status": _STATUS_COLUMNS, "category": _CATEGORY_COLUMNS, "group": _GROUP_COLUMNS}


def _layout(names: list[str]) -> dict[str, int]:
    """Which column holds each field: the first column with the field's most preferred name."""
    first = {}
    for i, name in enumerate(names):
        if name:
            first.setdefault(name, i)
    return {f: next(first[n] for n in options if n in first) for f, options in _FIELDS.items()
            if any(n in first for n in options)}


def _fields(layout: dict[str, int], cells: list[str]) -> dict[str, str]:
    fields = {f: cells[i] if i < len(cells) else "" for f, i in layout.items()}
    if "hash" not in layout:  # no column is named like a hash: find it by content
        fields["hash"] = next((c for c in cells if _HEX64.match(c)), "")
    return fields


def _fields_from_pairs(pairs: list[tuple[str, str, str]]) -> dict[str, str]:
    names = [_column(k) for k, _, _ in pairs]
    return _fields(_layout(names), [v for _, _, v in pairs])


def _fields_from_bare(cells: list[str]) -> dict[str, str] | None:
    if any(_token(c) in _NON_PDQ_TYPES for c in cells):  # "video_md5 <hex>", "sha256 <hex>"
        return None
    at = next((i for i, c in enumerate(cells) if _HEX64.match(c)), None)
    if at is None:
        return {"hash": ""}
    after = cells[at + 1] if at + 1 < len(cells) else ""
    # A bare row has no names, so only the cell right after the hash is read, and only
    # as a quality (the PDQ hasher's "hash,quality" order); ids and file names are ignored.
    quality = after if after.isdigit() and int(after) <= 100 else ""
    return {"hash": cells[at], "quality": quality}


def _entry_from_fields(row: int, f: dict[str, str]) -> NewEntry | None:
    kind = _token(f.get("type", ""))
    if kind and kind not in _PDQ_TYPES:
        return None
    if _token(f.get("category", "")) == "falsepositive":
        return None
    withdrawn = _token(f.get("status", "")) in _WITHDRAWN
    pdq = None
    if f.get("hash"):
        try:
            pdq = PdqSignal.validate(f["hash"])
        except ValueError:
            raise BankCsvError(row, "invalid_pdq") from None
    elif not withdrawn:
        raise BankCsvError(row, "missing_pdq")
    if not f.get("ref") and pdq is None:
        raise BankCsvError(row, "missing_ref")
    try:
        ref = check_ref(f["ref"]) if f.get("ref") else pdq_ref(pdq)  # type: ignore[arg-type]
        group = check_ref(f["group"], "group") if f.get("group") else None
    except InvalidEntryError:
        raise BankCsvError(row, "invalid_ref") from None
    if withdrawn:
        return NewEntry(ref=ref, group=group, status="withdrawn")
    quality = None
    if f.get("quality"):
        try:
            quality = _check_quality(float(f["quality"]))
        except (ValueError, OverflowError, InvalidEntryError):
            raise BankCsvError(row, "invalid_quality") from None
    return NewEntry(ref=ref, value=pdq, quality=quality, group=group)


def pdq_csv_entries(text: str, skipped: list[int] | None = None) -> Iterator[NewEntry]:
    """Entries from a CSV of hex PDQ hashes, validated row by row (see the shapes above).

    Raises :class:`BankCsvError` naming the first bad row. Row numbers of skipped rows
    (other signal types, false positives) are appended to ``skipped``. A row repeating an
    earlier ref is dropped if identical and an error if not.

        >>> [e.value[:8] for e in pdq_csv_entries("pdq_hash,quality\\n" + "ab" * 32 + ",90\\n")]
        ['abababab']
    """
    rows = _csv_rows(text)
    first = next(rows, None)
    if first is None:
        return
    cells = first[1]
    records: Iterator[tuple[int, dict[str, str] | None]]
    if all(_KEY_VALUE.match(c) for c in cells if c):  # key=value cells, the PDQ hasher's output
        records = ((n, _fields_from_pairs([c.partition("=") for c in cs if c]))
                   for n, cs in itertools.chain([first], rows))
    elif not any(_HEXISH.match(c) for c in cells):  # a header
        layout = _layout([_column(c) for c in cells])
        records = ((n, _fields(layout, cs)) for n, cs in rows)
    else:
        records = ((n, _fields_from_bare(cs)) for n, cs in itertools.chain([first], rows))
    # hash(ref) -> hash(contents): ~100 bytes a row instead of the strings themselves
    # (a StopNCII list has millions of rows); a 64-bit collision is ~1e-7 at a million.
    seen: dict[int, int] = {}
    for row, fields in records:
        entry = _entry_from_fields(row, fields) if fields is not None else None
        if entry is None:
            if skipped is not None:
                skipped.append(row)
            continue
        key, content = hash(entry.ref), hash((entry.value, entry.quality, entry.group, entry.status))
        if key in seen:
            if seen[key] != content:
                raise BankCsvError(row, "duplicate_ref")
            continue  # the same row again: exchanges list a hash once per collaboration
        seen[key] = content
        yield entry


def write_csv(entries: Iterable[Entry], out: TextIO) -> int:
    """Write entries as ``pdq_hash,quality,ref,status,group`` (header first); returns rows.

    Only PDQ travels: embeddings are model-specific and not part of any exchange. A
    withdrawn entry is a row with an empty hash and ``status=withdrawn``, so a partner
    importing the file withdraws it too.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    rows = 0
    for e in entries:
        if e.status == "active" and e.pdq:
            writer.writerow((e.pdq, "" if e.quality is None else e.quality, e.ref, "active", e.group or ""))
        elif e.status == "withdrawn" and (not e.signals or "pdq" in e.signals):
            writer.writerow(("", "", e.ref, "withdrawn", e.group or ""))
        else:
            continue
        rows += 1
    return rows


# --- storage ------------------------------------------------------------------------------


class BankStore(Protocol):
    """Storage primitives. Names and entries arrive validated; the rules live in
    :class:`BankService`. ``batch_size`` (optional) is how many entries to write per call."""

    def create_bank(self, bank: Bank) -> None:
        """Store a new bank; :class:`BankExistsError` if the name is taken."""

    def get_bank(self, name: str) -> Bank | None: ...

    def list_banks(self) -> list[Bank]: ...

    def delete_bank(self, name: str) -> bool:
        """Remove the bank record (not its entries); False if there was none."""

    def get_entries(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        """The stored entries among ``(bank, ref)`` keys, read consistently."""

    def put_entries(self, entries: Sequence[Entry]) -> None:
        """Write entries whole, replacing any stored under the same keys."""

    def replace_entry(self, entry: Entry, expected_updated_at: datetime | None) -> bool:
        """Replace one stored entry only if its ``updated_at`` is still the one read;
        False if it changed or vanished meanwhile."""

    def bank_entries(self, bank: str, ref_prefix: str = "") -> Iterator[Entry]:
        """Every entry of one bank (any status) by ascending ref."""

    def scan_entries(self, status: EntryStatus | None = "active") -> Iterator[Entry]:
        """Every entry of every bank with this status (None: any)."""

    def entries_updated_since(self, since: datetime) -> Iterator[Entry]:
        """Every entry whose ``updated_at`` is at or after ``since`` (any status, any order)."""


# (chain, actor, event, detail): the signature of ItemStore.append_audit.
AuditHook = Callable[[str, str, str, dict], Any]


class BankService:
    """Bank administration with the rules, over any :class:`BankStore`; also the
    :class:`~mediaguard.analysis.matching.BankReader` the matcher and the index build read.

        svc = BankService(FileBankStore(tmp))
        svc.create_bank("ncii", "block", actor="ops:ana")
        svc.import_csv("ncii", Path("stopncii.csv").read_text(), actor="ops:ana")
        svc.withdraw("ncii", "pdq-3f2a...", actor="ops:ana")
    """

    def __init__(self, store: BankStore, *, clock: Callable[[], datetime] = _now,
                 audit: AuditHook | None = None) -> None:
        self.store = store
        self.clock = clock
        self.audit = audit
        self.batch_size = int(getattr(store, "batch_size", DEFAULT_BATCH))

    # --- banks ------------------------------------------------------------------------

    def create_bank(self, name: str, kind: str, *, actor: str, action: str | None = None,
                    pdq_threshold: int = PDQ_MAX_DISTANCE, embedding_threshold: float | None = None) -> Bank:
        """Create an empty bank. ``kind``: block | flag | allow; ``action``: the
        :data:`~mediaguard.models.Action` its matches carry; thresholds per signal."""
        check_bank_name(name)
        if kind not in BANK_KINDS:
            raise InvalidBankError(f"kind must be one of {', '.join(BANK_KINDS)}")
        if action is not None and action not in ACTIONS:
            raise InvalidBankError(f"action must be one of {', '.join(ACTIONS)}")
        if isinstance(pdq_threshold, bool) or not isinstance(pdq_threshold, int) \
                or not 0 <= pdq_threshold <= PDQ_THRESHOLD_MAX:
            raise InvalidBankError(f"pdq threshold is an integer from 0 to {PDQ_THRESHOLD_MAX}")
        if embedding_threshold is not None and not 0.0 < float(embedding_threshold) <= 1.0:
            raise InvalidBankError("embedding threshold is a cosine above 0 and at most 1")
        bank = Bank(name=name, kind=kind, action=action, pdq_threshold=pdq_threshold,  # type: ignore[arg-type]
                    embedding_threshold=None if embedding_threshold is None else float(embedding_threshold),
                    created_at=self.clock(), created_by=actor)
        self.store.create_bank(bank)
        self._audit(name, actor, "bank_created", bank.to_dict())
        return bank

    def get_bank(self, name: str) -> Bank:
        """The bank of that name, or :class:`BankNotFoundError`."""
        bank = self.store.get_bank(check_bank_name(name))
        if bank is None:
            raise BankNotFoundError(f"no bank named {name}")
        return bank

    def list_banks(self) -> list[Bank]:
        """Every bank, by name."""
        return sorted(self.store.list_banks(), key=lambda b: b.name)

    def delete_bank(self, name: str, *, actor: str) -> int:
        """Delete a bank; returns how many entries went with it.

        The bank record goes first, so its entries stop matching at the matcher's next
        refresh. Each entry becomes a marker without hashes that expires after
        :data:`DELETED_MARKER_TTL`: the delta then tells every matcher to drop it from
        older index builds, even if a bank of the same name is created meanwhile.
        """
        check_bank_name(name)
        existed = self.store.delete_bank(name)
        now = self.clock()
        count = 0
        markers = (Entry(bank=name, ref=e.ref, status="deleted", signals=e.signals or ("pdq",), group=e.group,
                         updated_at=now, expires_at=now + DELETED_MARKER_TTL)
                   for e in self.store.bank_entries(name) if e.status != "deleted")
        for chunk in _chunks(markers, self.batch_size):
            self.store.put_entries(chunk)
            count += len(chunk)
        if not existed and not count:
            raise BankNotFoundError(f"no bank named {name}")
        self._audit(name, actor, "bank_deleted", {"entries": count})
        return count

    # --- entries ----------------------------------------------------------------------

    def add_entries(self, bank: str, entries: Iterable[NewEntry], *, actor: str,
                    source: str | None = None) -> AddReport:
        """Add or update entries (an iterable of any length, written in batches).

        An unchanged entry is left alone (it keeps its confirmation); a changed one is
        replaced and needs confirming again; a withdrawn ref is never revived. A
        ``status="withdrawn"`` entry withdraws its ref (or records the withdrawal of a
        ref not seen yet, so a later import of it is refused).
        """
        self.get_bank(bank)
        report = AddReport()
        for chunk in _chunks(entries, self.batch_size):
            self._add_chunk(bank, chunk, actor, source, report)
        self._audit(bank, actor, "entries_added", {**report.counts(), "source": source})
        return report

    def _add_chunk(self, bank: str, chunk: list[NewEntry], actor: str, source: str | None,
                   report: AddReport) -> None:
        wanted = {}
        for new in chunk:
            new = _validated(new)
            wanted[new.ref] = new
        stored = self.store.get_entries([(bank, ref) for ref in wanted])
        now = self.clock()
        writes = []
        for ref, new in wanted.items():
            old = stored.get((bank, ref))
            if old is not None and old.status == "deleted":
                old = None
            if new.status == "withdrawn":
                if old is not None and old.status == "withdrawn":
                    report.unchanged += 1
                    continue
                writes.append(_tombstone(old or Entry(bank=bank, ref=ref, group=new.group), actor, now))
                report.withdrawn += 1
                continue
            if old is not None and old.status == "withdrawn":
                report.skipped_withdrawn += 1
                continue
            entry = Entry(bank=bank, ref=ref, pdq=new.value, quality=new.quality, embedding=new.embedding,
                          signals=_signals_of(new.value, new.embedding), group=new.group, source=source,
                          added_at=now, added_by=actor, updated_at=now)
            if old is None:
                report.added += 1
            elif (old.pdq, old.quality, old.embedding, old.group) == (entry.pdq, entry.quality, entry.embedding,
                                                                      entry.group):
                report.unchanged += 1
                continue
            else:
                entry = replace(entry, added_at=old.added_at, added_by=old.added_by)
                report.updated += 1
            writes.append(entry)
        if writes:
            self.store.put_entries(writes)

    def add_media(self, bank: str, ref: str, media: bytes | Sequence[Features], *, actor: str,
                  declared: str | None = None, featurizer: Featurizer | None = None,
                  source: str = "media") -> AddReport:
        """Bank one photo or video from its bytes (through ``featurizer``) or from
        features computed already. One feature set is one entry ``ref``; several (a
        video's frames) are entries ``ref#0``, ``ref#1``, ... with ``group=ref``. Frames left
        over from an earlier, longer version of the same ref are removed.

        Raises :class:`~mediaguard.errors.MediaRejectedError` from the featurizer for
        unusable media.
        """
        ref = check_ref(ref)
        if isinstance(media, bytes | bytearray):
            if featurizer is None:
                raise InvalidEntryError("adding media bytes needs a featurizer")
            features = list(featurizer(bytes(media), declared))
        else:
            features = list(media)
        if not features:
            raise InvalidEntryError("the featurizer found nothing to bank")
        entries = [_from_features(ref, f, None) for f in features] if len(features) == 1 else \
            [_from_features(f"{ref}#{n}", f, ref) for n, f in enumerate(features)]
        report = self.add_entries(bank, entries, actor=actor, source=source)
        report.refs = [e.ref for e in entries]
        keep = set(report.refs)
        stale = [e for e in self.store.bank_entries(bank, ref + "#")
                 if e.group == ref and e.ref not in keep and e.status == "active"]
        if stale:  # frames of an earlier version of this media that the new one does not have
            now = self.clock()
            self.store.put_entries([Entry(bank=bank, ref=e.ref, status="deleted", signals=e.signals, group=ref,
                                          updated_at=now, expires_at=now + DELETED_MARKER_TTL) for e in stale])
        return report

    def import_csv(self, bank: str, text: str, *, actor: str, source: str | None = None) -> AddReport:
        """Import a CSV of hex PDQ hashes (see :func:`pdq_csv_entries`).

        The whole file is validated before anything is written, so a bad row leaves the
        bank as it was.
        """
        self.get_bank(bank)
        for _ in pdq_csv_entries(text):
            pass
        skipped: list[int] = []
        report = self.add_entries(bank, pdq_csv_entries(text, skipped), actor=actor, source=source or "csv")
        report.skipped_rows = len(skipped)
        return report

    def export_csv(self, bank: str, out: TextIO) -> int:
        """Write the bank as CSV (see :func:`write_csv`); returns the number of rows."""
        self.get_bank(bank)
        return write_csv(self.store.bank_entries(bank), out)

    def entries(self, bank: str) -> Iterator[Entry]:
        """Every active and withdrawn entry of a bank, by ref."""
        self.get_bank(bank)
        return (e for e in self.store.bank_entries(bank) if e.status != "deleted")

    def counts(self, bank: str) -> dict[str, int]:
        """How many entries are active and withdrawn (reads them all)."""
        counts = {"active": 0, "withdrawn": 0}
        for e in self.entries(bank):
            counts[e.status] += 1
        return counts

    def confirm(self, bank: str, ref: str, *, actor: str) -> list[Entry]:
        """Record that ``actor`` checked the entry (or every frame of group ``ref``)."""
        targets = [e for e in self._targets(bank, ref) if e.active]
        if not targets:
            raise EntryWithdrawnError(f"{ref} in bank {bank} is withdrawn")
        now = self.clock()
        done = []
        for e in targets:
            # updated_at stays: a confirmation changes nothing a matcher sees.
            confirmed = replace(e, confirmed_at=now, confirmed_by=actor)
            self._replace(confirmed, e)
            done.append(confirmed)
        self._audit(bank, actor, "entries_confirmed", {"ref": ref, "entries": len(done)})
        return done

    def withdraw(self, bank: str, ref: str, *, actor: str) -> list[Entry]:
        """Withdraw the entry (or every frame of group ``ref``): its hash and embedding are
        deleted now and a tombstone keeps who withdrew it and when. Returns the tombstones
        written; empty if everything was withdrawn already."""
        now = self.clock()
        done = []
        for e in self._targets(bank, ref):
            if e.active:
                tomb = _tombstone(e, actor, now)
                self._replace(tomb, e)
                done.append(tomb)
        if done:
            self._audit(bank, actor, "entries_withdrawn", {"ref": ref, "entries": len(done)})
        return done

    def _targets(self, bank: str, ref: str) -> list[Entry]:
        self.get_bank(bank)
        ref = check_ref(ref)
        entry = self.store.get_entries([(bank, ref)]).get((bank, ref))
        if entry is not None and entry.status != "deleted":
            return [entry]
        frames = [e for e in self.store.bank_entries(bank, ref + "#") if e.group == ref and e.status != "deleted"]
        if not frames:
            raise EntryNotFoundError(f"bank {bank} has no entry or group {ref}")
        return frames

    def _replace(self, new: Entry, old: Entry) -> None:
        if not self.store.replace_entry(new, old.updated_at):
            raise ConcurrentUpdateError(f"{old.ref} in bank {old.bank} changed meanwhile; try again")

    def _audit(self, bank: str, actor: str, event: str, detail: dict) -> None:
        if self.audit is not None:
            self.audit(f"bank:{bank}", actor, event, detail)

    # --- what the matcher reads (matching.BankReader) ------------------------------------

    def banks(self) -> list[BankInfo]:
        """Every bank's kind, action and thresholds."""
        return [b.info() for b in self.list_banks()]

    def active_entries(self) -> Iterator[IndexEntry]:
        """Every active entry of an existing bank, one per signal (for an index build)."""
        names = {b.name for b in self.store.list_banks()}
        for e in self.store.scan_entries("active"):
            if e.bank in names:
                yield from index_entries(e)

    def changed_since(self, since: float) -> list[IndexEntry]:
        """Every entry added, changed, withdrawn or deleted at or after ``since`` (epoch s).

        Withdrawn and deleted entries come with ``active=False`` and no value. Read from a
        GSI, so a write shows up after DynamoDB's propagation (typically under a second).
        """
        start = datetime.fromtimestamp(max(float(since), 0.0), UTC)
        changed = sorted(self.store.entries_updated_since(start), key=lambda e: (e.updated_at, e.bank, e.ref))
        return [ie for e in changed for ie in index_entries(e)]

    def recheck(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], BankInfo]:
        """Of these ``(bank, ref)`` keys, the ones still active in an existing bank, with
        that bank's current settings: the last look before a candidate match is reported.
        A ref may name a video group (active while any of its frames is).

            live = service.recheck((m.bank, m.ref) for m in candidates)
            reported = [m for m in candidates if (m.bank, m.ref) in live]
        """
        keys = list(dict.fromkeys(keys))
        banks = {b.name: b for b in self.store.list_banks()}
        stored = self.store.get_entries([k for k in keys if k[0] in banks]) if keys else {}
        live = {}
        for key in keys:
            bank, ref = key
            if bank not in banks:
                continue
            entry = stored.get(key)
            if entry is not None and entry.status != "deleted":
                active = entry.active
            else:  # one query per miss: candidates are few, and a miss is usually a group
                active = any(e.active and e.group == ref for e in self.store.bank_entries(bank, ref + "#"))
            if active:
                live[key] = banks[bank].info()
        return live


def index_entries(e: Entry) -> list[IndexEntry]:
    """The matcher's rows for one stored entry: one per signal; inactive ones carry no value."""
    at = e.updated_at.timestamp() if e.updated_at else 0.0
    if e.active:
        rows = []
        if e.pdq:
            rows.append(IndexEntry(bank=e.bank, ref=e.ref, signal="pdq", value=e.pdq, quality=e.quality,
                                   group=e.group, active=True, updated_at=at))
        if e.embedding:
            rows.append(IndexEntry(bank=e.bank, ref=e.ref, signal="embedding", value=decode_embedding(e.embedding),
                                   group=e.group, active=True, updated_at=at))
        return rows
    return [IndexEntry(bank=e.bank, ref=e.ref, signal=s, value=None, group=e.group, active=False, updated_at=at)
            for s in (e.signals or ("pdq",))]


def _validated(new: NewEntry) -> NewEntry:
    ref = check_ref(new.ref)
    group = check_ref(new.group, "group") if new.group is not None else None
    if new.status == "withdrawn":
        return NewEntry(ref=ref, group=group, status="withdrawn")
    if new.status != "active":
        raise InvalidEntryError("status is active or withdrawn")
    if new.signal not in ("pdq", "embedding") or (new.signal == "embedding" and new.value):
        raise InvalidEntryError("signal is pdq (value = the PDQ hash) or embedding")
    try:
        value = PdqSignal.validate(new.value) if new.value else None
    except ValueError as exc:
        raise InvalidEntryError("a PDQ hash is 64 hex characters") from exc
    embedding = encode_embedding(decode_embedding(new.embedding)) if new.embedding else None
    if value is None and embedding is None:
        raise InvalidEntryError("an entry needs a PDQ hash or an embedding")
    return NewEntry(ref=ref, signal="pdq" if value else "embedding", value=value,
                    quality=_check_quality(new.quality), embedding=embedding, group=group)


def _from_features(ref: str, f: Features, group: str | None) -> NewEntry:
    embedding = None
    if f.embedding is not None:
        embedding = f.embedding if isinstance(f.embedding, str) else encode_embedding(f.embedding)
    return NewEntry(ref=ref, signal="pdq" if f.pdq else "embedding", value=f.pdq, quality=f.quality,
                    embedding=embedding, group=group)


def pdq_featurizer(settings: Settings | None = None) -> Featurizer:
    """The default featurizer: PDQ and its quality computed by ``ingest.prepare``, the
    same code path as an upload's fingerprint (so a banked photo hashes like its re-upload)."""
    settings = settings or Settings()

    def featurize(data: bytes, declared: str | None) -> list[Features]:
        from mediaguard.ingress.ingest import prepare  # Pillow, pdqhash and the sanitizers: only when media is added

        fps = prepare(data, declared, settings, forensics=False).fingerprints
        return [Features(pdq=fps.pdq, quality=fps.pdq_quality)]

    return featurize


# --- `mediaguard scan --bank NAME[:KIND]=PATH` -------------------------------------------------


def parse_bank_spec(spec: str) -> tuple[str, str, Path]:
    """``NAME[:KIND]=PATH`` -> (name, kind, path); kind defaults to ``block``.

    >>> parse_bank_spec("victims=hashes.csv")
    ('victims', 'block', PosixPath('hashes.csv'))
    """
    head, sep, path = spec.partition("=")
    if not sep or not head or not path:
        raise BankSourceError(f"bank must be NAME[:KIND]=PATH, got {spec!r}")
    name, _, kind = head.partition(":")
    kind = kind or "block"
    if kind not in BANK_KINDS:
        raise BankSourceError(f"bank kind must be one of {', '.join(BANK_KINDS)}")
    return name, kind, Path(path)


def entries_from_csv(text: str) -> list[NewEntry]:
    """The active entries of a hash CSV (see :func:`pdq_csv_entries`)."""
    return [e for e in pdq_csv_entries(text) if e.status == "active"]


def entries_from_folder(folder: Path, settings: Settings) -> tuple[list[NewEntry], list[str]]:
    """Fingerprint every supported file in ``folder`` the way uploads are fingerprinted.

    Returns the entries (ref = file stem) and the names of files skipped as unusable.
    """
    featurize = pdq_featurizer(settings)
    entries, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            (features,) = featurize(path.read_bytes(), mimetypes.guess_type(path.name)[0])
        except MediaRejectedError:
            skipped.append(path.name)
            continue
        entries.append(NewEntry(ref=path.stem, value=features.pdq, quality=features.quality))
    return entries, skipped


def load_entries(path: Path, settings: Settings) -> list[NewEntry]:
    if path.is_dir():
        return entries_from_folder(path, settings)[0]
    if path.is_file():
        return entries_from_csv(path.read_text())
    raise BankSourceError(f"bank source {path} is neither a folder nor a CSV file")
