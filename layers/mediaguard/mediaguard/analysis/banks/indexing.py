"""A stored entry as the rows the matcher indexes (one per signal)."""

from __future__ import annotations

from mediaguard.analysis.banks.embeddings import decode_embedding
from mediaguard.analysis.banks.model import Entry
from mediaguard.analysis.matching import IndexEntry


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
        if e.audio:
            rows.append(IndexEntry(bank=e.bank, ref=e.ref, signal="audio", value=e.audio, group=e.group, active=True,
                                   updated_at=at))
        if e.clip:
            rows.append(IndexEntry(bank=e.bank, ref=e.ref, signal="clip", value=decode_embedding(e.clip),
                                   group=e.group, active=True, updated_at=at))
        return rows
    return [IndexEntry(bank=e.bank, ref=e.ref, signal=s, value=None, group=e.group, active=False, updated_at=at)
            for s in (e.signals or ("pdq",))]
