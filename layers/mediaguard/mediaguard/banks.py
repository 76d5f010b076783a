"""Hash banks: parse what goes into them. Storage lives in the adapters.

CSV import accepts the hex PDQ exports hash exchanges use (StopNCII,
ThreatExchange): one hash per row, 64 hex characters, optionally with a quality
column and other columns we ignore.
"""

from __future__ import annotations

import csv
import io
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from .errors import MediaRejectedError
from .fingerprint import PdqSignal
from .ingest import prepare
from .settings import Settings

BANK_KINDS = ("block", "flag", "allow")


class BankSourceError(ValueError):
    """A bank source (folder or CSV) that cannot be read."""


@dataclass(frozen=True)
class NewEntry:
    ref: str
    signal: str
    value: str
    quality: int | None


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
    entries = []
    for row_number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row if c.strip()]
        pdq = next((c.lower() for c in cells if len(c) == 64 and _is_hex(c)), None)
        if pdq is None:
            if row_number == 1:
                continue  # a header row
            raise BankSourceError(f"row {row_number} has no 64-hex-character PDQ hash")
        quality = next((int(c) for c in cells if c.isdigit() and 0 <= int(c) <= 100), None)
        entries.append(NewEntry(ref=pdq[:16] + f"-{row_number}", signal="pdq", value=PdqSignal.validate(pdq),
                                quality=quality))
    return entries


def entries_from_folder(folder: Path, settings: Settings) -> tuple[list[NewEntry], list[str]]:
    """Fingerprint every supported file in ``folder`` the way uploads are fingerprinted.

    Returns the entries and the names of files that were skipped as unusable.
    """
    entries, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        declared = mimetypes.guess_type(path.name)[0]
        try:
            prepared = prepare(path.read_bytes(), declared, settings)
        except MediaRejectedError:
            skipped.append(path.name)
            continue
        fps = prepared.fingerprints
        entries.append(NewEntry(ref=path.stem, signal="pdq", value=fps.pdq, quality=fps.pdq_quality))
    return entries, skipped


def load_entries(path: Path, settings: Settings) -> list[NewEntry]:
    if path.is_dir():
        return entries_from_folder(path, settings)[0]
    if path.is_file():
        return entries_from_csv(path.read_text())
    raise BankSourceError(f"bank source {path} is neither a folder nor a CSV file")


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return True
