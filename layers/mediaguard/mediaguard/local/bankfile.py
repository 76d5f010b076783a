"""Banks as plain files, for ``mediaguard bank`` on a laptop.

Layout under the root (``--store DIR``; default ``$MEDIAGUARD_HOME/banks``, and
``./.mediaguard/banks`` without ``MEDIAGUARD_HOME``)::

    <bank>/bank.json        the bank's settings (absent once the bank is deleted)
    <bank>/entries.json     {"format": 1, "entries": [...]} sorted by ref
    .audit/<chain>.jsonl    hash-chained audit records (mediaguard.audit.chain)
    .lock                   held while a command reads, changes and writes a file

Every write goes to a temporary file that then replaces the old one, so a reader never
sees half a file and an interrupted command leaves the previous state. Sized for
laptop banks (a PDQ entry is ~250 bytes of JSON; 100k entries is a 25 MB file).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediaguard.analysis.banks.errors import BankExistsError
from mediaguard.analysis.banks.model import Bank, Entry, EntryStatus
from mediaguard.analysis.banks.validation import check_bank_name
from mediaguard.audit.chain import AuditRecord, next_record

FORMAT = 1
_TIMES = ("added_at", "updated_at", "confirmed_at", "withdrawn_at", "expires_at")


def default_bank_dir() -> Path:
    """``$MEDIAGUARD_HOME/banks``, or ``./.mediaguard/banks`` when it is not set."""
    home = os.environ.get("MEDIAGUARD_HOME")
    return (Path(home) if home else Path.cwd() / ".mediaguard") / "banks"


class FileBankStore:
    """A :class:`~mediaguard.analysis.banks.store.BankStore` over JSON files under ``root``."""

    # Each write rewrites a bank's whole entries file, so add in large batches.
    batch_size = 50_000

    def __init__(self, root: str | os.PathLike | None = None, *, clock=lambda: datetime.now(UTC)) -> None:
        self.root = Path(root) if root is not None else default_bank_dir()
        self.clock = clock
        self._cache: dict[str, tuple[tuple[int, int, int], dict[str, dict[str, Any]]]] = {}

    # --- banks ---------------------------------------------------------------------

    def create_bank(self, bank: Bank) -> None:
        with self._locked():
            path = self._dir(bank.name) / "bank.json"
            if path.exists():
                raise BankExistsError(f"bank {bank.name} exists")
            _write_json(path, {"format": FORMAT, **bank.to_dict()})

    def get_bank(self, name: str) -> Bank | None:
        path = self._dir(name) / "bank.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        data.pop("format", None)
        data["created_at"] = _time(data.get("created_at"))
        return Bank(**data)

    def list_banks(self) -> list[Bank]:
        if not self.root.is_dir():
            return []
        names = sorted(p.parent.name for p in self.root.glob("*/bank.json"))
        return [b for b in (self.get_bank(n) for n in names) if b is not None]

    def delete_bank(self, name: str) -> bool:
        with self._locked():
            path = self._dir(name) / "bank.json"
            if not path.exists():
                return False
            path.unlink()
            return True

    # --- entries -------------------------------------------------------------------

    def get_entries(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        out: dict[tuple[str, str], Entry] = {}
        rows_of: dict[str, dict[str, dict[str, Any]]] = {}
        for bank, ref in keys:
            if bank not in rows_of:
                rows_of[bank] = self._rows(bank)
            row = rows_of[bank].get(ref)
            if row is not None:
                out[(bank, ref)] = _entry(bank, row)
        return out

    def put_entries(self, entries: Sequence[Entry]) -> None:
        by_bank: dict[str, list[Entry]] = {}
        for e in entries:
            by_bank.setdefault(e.bank, []).append(e)
        with self._locked():
            for bank, items in by_bank.items():
                rows = dict(self._rows(bank))
                rows.update({e.ref: _row(e) for e in items})
                self._write(bank, rows)

    def replace_entry(self, entry: Entry, expected_updated_at: datetime | None) -> bool:
        with self._locked():
            rows = self._rows(entry.bank)
            current = rows.get(entry.ref)
            if current is None or _time(current.get("updated_at")) != expected_updated_at:
                return False
            self._write(entry.bank, {**rows, entry.ref: _row(entry)})
            return True

    def bank_entries(self, bank: str, ref_prefix: str = "") -> Iterator[Entry]:
        rows = self._rows(bank)  # a snapshot: writes while iterating replace the file, not this dict
        return (_entry(bank, rows[r]) for r in sorted(rows) if r.startswith(ref_prefix))

    def scan_entries(self, status: EntryStatus | None = "active") -> Iterator[Entry]:
        for bank in self._bank_dirs():
            rows = self._rows(bank)
            for ref in sorted(rows):
                if status is None or rows[ref].get("status", "active") == status:
                    yield _entry(bank, rows[ref])

    def entries_updated_since(self, since: datetime) -> Iterator[Entry]:
        for bank in self._bank_dirs():
            for row in self._rows(bank).values():
                at = _time(row.get("updated_at"))
                if at is not None and at >= since:
                    yield _entry(bank, row)

    # --- audit -------------------------------------------------------------------------

    def append_audit(self, chain: str, actor: str, event: str, detail: dict) -> AuditRecord:
        """Append to a local hash chain (the same records ``ItemStore.append_audit`` keeps)."""
        detail = json.loads(json.dumps(detail, sort_keys=True, default=str))
        with self._locked():
            path = self.root / ".audit" / (chain.replace(":", "_") + ".jsonl")
            records = self.audit_chain(chain)
            record = next_record(chain, records[-1] if records else None, self.clock().isoformat(), actor, event,
                                 detail)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps(record.__dict__, sort_keys=True) + "\n")
            return record

    def audit_chain(self, chain: str) -> list[AuditRecord]:
        path = self.root / ".audit" / (chain.replace(":", "_") + ".jsonl")
        if not path.exists():
            return []
        return [AuditRecord(**json.loads(line)) for line in path.read_text().splitlines() if line]

    # --- files ---------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        # Names are checked by the service too; here they become paths, so again.
        return self.root / check_bank_name(name)

    def _bank_dirs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/entries.json"))

    def _rows(self, bank: str) -> dict[str, dict[str, Any]]:
        """The bank's entries as stored (JSON rows by ref), re-read only when the file
        changed: a command touching one entry of a large bank parses the file once."""
        path = self._dir(bank) / "entries.json"
        try:
            stat = path.stat()
        except FileNotFoundError:
            return {}
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._cache.get(bank)
        if cached is None or cached[0] != key:
            rows = json.loads(path.read_text())["entries"]
            cached = self._cache[bank] = (key, {row["ref"]: row for row in rows})
        return cached[1]

    def _write(self, bank: str, rows: dict[str, dict[str, Any]]) -> None:
        now = self.clock()
        # Deletion markers expire here as DynamoDB's TTL expires them there.
        live = {ref: row for ref, row in rows.items() if "expires_at" not in row or _time(row["expires_at"]) > now}
        path = self._dir(bank) / "entries.json"
        self._cache.pop(bank, None)
        if not live and not (self._dir(bank) / "bank.json").exists():
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
            return
        _write_json(path, {"format": FORMAT, "entries": [live[ref] for ref in sorted(live)]})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            try:
                import fcntl
            except ImportError:  # Windows: one CLI process at a time is the user's job
                yield
                return
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _row(e: Entry) -> dict[str, Any]:
    row = {k: v for k, v in e.__dict__.items() if v is not None and k != "bank" and v != ()}
    for k in _TIMES:
        if k in row:
            row[k] = row[k].astimezone(UTC).isoformat()
    if "signals" in row:
        row["signals"] = list(row["signals"])
    return row


def _entry(bank: str, row: dict[str, Any]) -> Entry:
    data = dict(row)
    for k in _TIMES:
        data[k] = _time(data.get(k))
    data["signals"] = tuple(data.get("signals", ()))
    return Entry(bank=bank, **data)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)
