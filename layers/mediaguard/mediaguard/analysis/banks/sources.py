"""Entries from outside a bank: media through the default PDQ featurizer, a folder of
photos, a hash CSV, and the ``mediaguard scan --bank NAME[:KIND]=PATH`` spec."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from mediaguard.analysis.banks.errors import BankSourceError
from mediaguard.analysis.banks.exchange import pdq_csv_entries
from mediaguard.analysis.banks.model import BANK_KINDS, Features, Featurizer, NewEntry
from mediaguard.errors import MediaRejectedError
from mediaguard.ingress.ingest import prepare
from mediaguard.settings import Settings


def pdq_featurizer(settings: Settings | None = None) -> Featurizer:
    """The default featurizer: PDQ and its quality computed by ``ingest.prepare``, the
    same code path as an upload's fingerprint (so a banked photo hashes like its re-upload)."""
    settings = settings or Settings()

    # ``prepare`` is imported at the top of this module, no longer lazily here: every importer
    # of this module adds media or loads a bank source (`mediaguard bank add`, `scan --bank`),
    # so deferring it saved none of them the ingest path. Code that only reads or administers
    # banks imports ``service``/``model``, which never load ingest (sanitizers, forensics).
    def featurize(data: bytes, declared: str | None) -> list[Features]:
        fps = prepare(data, declared, settings, forensics=False).fingerprints
        return [Features(pdq=fps.pdq, quality=fps.pdq_quality)]

    return featurize


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
