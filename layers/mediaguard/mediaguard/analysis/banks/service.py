"""BankService: the rules for changing banks, over any BankStore; also what the matcher reads."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from mediaguard.analysis.banks.embeddings import decode_embedding, encode_embedding
from mediaguard.analysis.banks.errors import (
    BankNotFoundError,
    ConcurrentUpdateError,
    EntryNotFoundError,
    EntryWithdrawnError,
    InvalidBankError,
    InvalidEntryError,
)
from mediaguard.analysis.banks.exchange import pdq_csv_entries, write_csv
from mediaguard.analysis.banks.indexing import index_entries
from mediaguard.analysis.banks.model import ACTIONS, BANK_KINDS, AddReport, Bank, Entry, Features, Featurizer, NewEntry
from mediaguard.analysis.banks.store import BankStore
from mediaguard.analysis.banks.validation import check_bank_name, check_quality, check_ref
from mediaguard.analysis.matching import BankInfo, IndexEntry
from mediaguard.signals import AudioSignal, PdqSignal

# Unrelated photos differ by ~128 +- 8 PDQ bits; past 63 a bank would match noise.
PDQ_THRESHOLD_MAX = 63
# What a bank deletion leaves behind (entries with no hash, status "deleted") must outlive
# every index build that still holds the entries (builds run every 15 minutes); a week
# is ample, and DynamoDB's TTL deletes them some time after.
DELETED_MARKER_TTL = timedelta(days=7)
# Entries written per store round trip when adding; a store may ask for more (files).
DEFAULT_BATCH = 1000


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _signals_of(pdq: str | None, embedding: str | None, audio: str | None = None,
                clip: str | None = None) -> tuple[str, ...]:
    return tuple(name for name, value in (("pdq", pdq), ("embedding", embedding), ("clip", clip), ("audio", audio))
                 if value)


def _tombstone(entry: Entry, actor: str, now: datetime) -> Entry:
    # Only what the audit needs survives: the ref, who withdrew it and when. The group
    # and the signal names stay so a matcher can tell which frames of a video went.
    return Entry(bank=entry.bank, ref=entry.ref, status="withdrawn", signals=entry.signals or ("pdq",),
                 group=entry.group, updated_at=now, withdrawn_at=now, withdrawn_by=actor)



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
                    pdq_threshold: int = PdqSignal.match_threshold, embedding_threshold: float | None = None) -> Bank:
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
                          audio=new.audio, clip=new.clip,
                          signals=_signals_of(new.value, new.embedding, new.audio, new.clip),
                          group=new.group, source=source,
                          added_at=now, added_by=actor, updated_at=now)
            if old is None:
                report.added += 1
            elif (old.pdq, old.quality, old.embedding, old.clip, old.audio, old.group) == (
                    entry.pdq, entry.quality, entry.embedding, entry.clip, entry.audio, entry.group):
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



def _validated(new: NewEntry) -> NewEntry:
    ref = check_ref(new.ref)
    group = check_ref(new.group, "group") if new.group is not None else None
    if new.status == "withdrawn":
        return NewEntry(ref=ref, group=group, status="withdrawn")
    if new.status != "active":
        raise InvalidEntryError("status is active or withdrawn")
    if new.signal not in ("pdq", "embedding", "audio") or (new.signal != "pdq" and new.value):
        raise InvalidEntryError("signal is pdq (value = the PDQ hash), embedding or audio")
    try:
        value = PdqSignal.validate(new.value) if new.value else None
    except ValueError as exc:
        raise InvalidEntryError("a PDQ hash is 64 hex characters") from exc
    embedding = encode_embedding(decode_embedding(new.embedding)) if new.embedding else None
    clip = encode_embedding(decode_embedding(new.clip)) if new.clip else None
    try:
        audio = AudioSignal.validate(new.audio) if new.audio else None
    except ValueError as exc:
        raise InvalidEntryError("an audio fingerprint is base64 of 32-bit Chromaprint words") from exc
    if value is None and embedding is None and clip is None and audio is None:
        raise InvalidEntryError("an entry needs a PDQ hash, an embedding or an audio fingerprint")
    return NewEntry(ref=ref, signal="pdq" if value else "embedding" if (embedding or clip) else "audio", value=value,
                    quality=check_quality(new.quality), embedding=embedding, group=group, audio=audio, clip=clip)


def _from_features(ref: str, f: Features, group: str | None) -> NewEntry:
    def stored(vector):
        if vector is None:
            return None
        return vector if isinstance(vector, str) else encode_embedding(vector)

    embedding, clip = stored(f.embedding), stored(f.clip)
    return NewEntry(ref=ref, signal="pdq" if f.pdq else "embedding" if (embedding or clip) else "audio", value=f.pdq,
                    quality=f.quality, embedding=embedding, group=group, audio=f.audio, clip=clip)
