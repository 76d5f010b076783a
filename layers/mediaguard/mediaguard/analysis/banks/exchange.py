"""The hash-exchange CSV: reading the shapes StopNCII, ThreatExchange and the PDQ
reference hasher produce, and writing this package's own (``pdq_hash,quality,ref,status,group``)."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TextIO

from mediaguard.analysis.banks.errors import BankCsvError, InvalidEntryError
from mediaguard.analysis.banks.model import Entry, NewEntry
from mediaguard.analysis.banks.validation import check_quality, check_ref, pdq_ref
from mediaguard.signals import PdqSignal

# The CSV this module writes. One row per entry; a withdrawn entry is a row with no hash.
CSV_HEADER = ("pdq_hash", "quality", "ref", "status", "group")


# Accepted shapes (header or not, any column order, extra columns ignored):
#   this module's own export       pdq_hash,quality,ref,status,group
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
            quality = check_quality(float(f["quality"]))
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
