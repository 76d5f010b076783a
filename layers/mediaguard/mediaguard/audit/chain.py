"""Tamper-evident audit trail: one hash chain per item, anchored by periodic digests.

Each record commits to its predecessor's hash, so editing, deleting or reordering a
record breaks every hash after it. Chains are per item (the partition key), so no single
hot partition caps write throughput. A chain alone cannot protect its newest end (drop
the last records and what is left still verifies), so two things anchor it:

* a head pointer (seq, hash) written in the same transaction as every record. It catches
  a deleted newest record at once, but lives in the database an intruder with write
  access could also edit;
* digests: every few minutes the heads of the chains appended since the previous digest
  are hashed into a record of their own chain (``DIGEST_CHAIN``) and archived in an S3
  bucket under Object Lock in compliance mode, which nobody, root included, can rewrite
  or delete before its retention ends.

Neither protects what was written after the last digest: a record forged, rewritten or
deleted (a whole chain even) between two digests would be anchored by the next as if
genuine. So every write to the audit table also reaches a change log: the table's
DynamoDB stream (old and new images) feeds a function that archives each batch of
changes in the same Object Lock bucket (``changes/``), which a table writer cannot edit.
Records are only ever put once, so any overwrite (MODIFY) or delete (REMOVE) the log
holds is a finding; and a record no digest has anchored two digest periods after it was
written is a failure (``stale``), not a note: the digest job stopped, or someone wrote
the record without marking its chain pending.

``verify_trail`` recomputes all of it and names each problem: chain, seq and kind.
This module is pure (no AWS); ``mediaguard.adapters.audit`` stores and reads the trail.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

GENESIS = "0" * 64

# The chain of digests lives beside the item chains, under a name no item id can take
# (media ids are hex, upload chains are "upload:<hex>").
DIGEST_CHAIN = "audit:digest"
DIGEST_ACTOR = "system:digest"
DIGEST_PREFIX = "digests/"
DIGEST_FORMAT = "mediaguard.audit.digest/1"
_DIGEST_KEY = re.compile(r"digests/(\d{12})\.json")
# How often the digest job runs: template.yaml's DigestFunction schedule (a contract test
# keeps the two equal). A record no digest anchors within two periods is ``stale``: one
# period can pass with the job running late, two cannot.
DIGEST_PERIOD = timedelta(minutes=5)
STALE_AFTER = 2 * DIGEST_PERIOD
# A record dated further ahead than clocks drift was not written by the store (which stamps
# its own time): a forged future time must not keep a record out of STALE's reach.
MAX_CLOCK_SKEW = timedelta(minutes=1)

# The change log: the audit table's stream, archived batch by batch beside the digests.
CHANGES_CHAIN = "audit:changes"
CHANGES_PREFIX = "changes/"
CHANGES_FORMAT = "mediaguard.audit.changes/1"
_CHANGES_KEY = re.compile(r"changes/\d{8}T\d{6}Z-[0-9a-f]{16}\.json")

# Kinds of finding. Every kind but UNANCHORED means the trail was changed after the fact
# (or, for UNLOCKED, that the archive could be).
EDITED = "edited"
DELETED = "deleted"
REORDERED = "reordered"
INSERTED = "inserted"
OVERWRITTEN = "overwritten"
UNLOCKED = "unlocked"
UNANCHORED = "unanchored"
STALE = "stale"  # unanchored for longer than STALE_AFTER: a failure
INFORMATIONAL = frozenset({UNANCHORED})


@dataclass(frozen=True)
class AuditRecord:
    chain: str
    seq: int
    at: str
    actor: str
    event: str
    detail: dict
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Head:
    """The newest record of a chain as the head pointer (or a digest) states it."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Anchor:
    """Digest ``digest`` states that record ``seq`` of a chain had hash ``hash``."""

    digest: int
    seq: int
    hash: str


@dataclass(frozen=True)
class Finding:
    """One problem (or, for ``unanchored``, one note) about one record, chain or digest."""

    chain: str
    seq: int | None
    kind: str
    message: str

    @property
    def failing(self) -> bool:
        return self.kind not in INFORMATIONAL

    @property
    def where(self) -> str:
        return self.chain if self.seq is None else f"{self.chain}#{self.seq}"

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failing": self.failing}


def record_hash(chain: str, seq: int, at: str, actor: str, event: str, detail: dict, prev_hash: str) -> str:
    body = json.dumps(
        {"chain": chain, "seq": seq, "at": at, "actor": actor, "event": event, "detail": detail, "prev": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def next_record(
    chain: str, last: AuditRecord | Head | None, at: str, actor: str, event: str, detail: dict
) -> AuditRecord:
    """The record that follows ``last`` (a record or the chain's head pointer; None starts the chain)."""
    seq = 0 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    return AuditRecord(chain, seq, at, actor, event, detail, prev, record_hash(chain, seq, at, actor, event, detail, prev))


def _hash_as(chain: str, seq: int, rec: AuditRecord) -> str:
    return record_hash(chain, seq, rec.at, rec.actor, rec.event, rec.detail, rec.prev_hash)


def verify(
    records: Sequence[AuditRecord],
    head: Head | None = None,
    anchors: Iterable[Anchor] | None = None,
    chain: str | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Everything wrong with one chain, as findings ordered by seq; empty means it verifies.

    ``records`` are as stored (a store returns them in seq order; a list out of order is
    itself reported). ``head`` is the chain's head pointer, ``anchors`` what the digests
    state about it: either one reveals deleted newest records. With ``anchors`` given
    (even empty), records newer than the last anchor are reported as ``unanchored``,
    a note rather than a failure, unless ``now`` is given and the oldest of them was
    written more than ``STALE_AFTER`` before it: then they are ``stale``, a failure. Example::

        problems = verify(records, head=Head(4, h4))
        [str(p) for p in problems]  # ['media-7f3a#4: deleted: newest record(s) deleted: ...']
    """
    name = chain if chain is not None else (Counter(r.chain for r in records).most_common(1)[0][0] if records else "")
    findings: list[Finding] = []
    ordered = sorted(records, key=lambda r: r.seq)
    for position, (got, want) in enumerate(zip(records, ordered, strict=True)):
        if got.seq != want.seq:
            findings.append(Finding(name, got.seq, REORDERED, f"stored at position {position}, where #{want.seq} belongs"))
    by_seq: dict[int, AuditRecord] = {}
    for rec in ordered:
        if rec.seq < 0:
            # A chain starts at #0 from genesis: nothing the store wrote sits before it, so a
            # record there was forged, however well it hashes.
            findings.append(Finding(name, rec.seq, INSERTED, "before the chain's first record (#0)"))
        elif rec.seq in by_seq:
            findings.append(Finding(name, rec.seq, INSERTED, "a second record with this seq"))
        else:
            by_seq[rec.seq] = rec
    flagged = _check_contents(name, by_seq, findings)
    _check_links(name, by_seq, flagged, findings)

    last = max(by_seq, default=-1)
    missing = {seq: f"missing: the chain continues to #{last}" for seq in range(last) if seq not in by_seq}
    if head is not None:
        _check_head(name, by_seq, flagged, head, missing, findings)
    anchored = -1
    for anchor in sorted(anchors or (), key=lambda a: (a.digest, a.seq)):
        rec = by_seq.get(anchor.seq)
        if rec is None:
            for seq in range(last + 1, anchor.seq + 1):
                missing.setdefault(seq, f"deleted after digest {anchor.digest} anchored the chain at #{anchor.seq}")
        elif rec.hash != anchor.hash and anchor.seq not in flagged:
            findings.append(Finding(name, anchor.seq, EDITED,
                                    f"does not match digest {anchor.digest}: the chain was rewritten up to here"))
        # Records up to an anchor that fails are already reported; only later ones are "new".
        anchored = max(anchored, anchor.seq)

    if missing and not by_seq:
        reason = missing[max(missing)]
        findings.append(Finding(name, None, DELETED, f"whole chain deleted (#0..#{max(missing)}; {reason})"))
    else:
        findings.extend(Finding(name, seq, DELETED, why) for seq, why in missing.items())
    if anchors is not None and last > anchored:
        findings.append(_unanchored(name, anchored + 1, last, by_seq, now))
    return _unique(sorted(findings, key=lambda f: -1 if f.seq is None else f.seq))


def _unanchored(name: str, first: int, last: int, by_seq: dict[int, AuditRecord], now: datetime | None) -> Finding:
    span = f"#{first}..#{last}"
    oldest = next((by_seq[seq] for seq in range(first, last + 1) if seq in by_seq), None)
    written = _parse_time(oldest.at) if oldest is not None else None
    if now is not None and written is not None and written > now + MAX_CLOCK_SKEW:
        return Finding(name, first, STALE, f"{span} not anchored by any digest and dated in the future "
                                           f"({oldest.at}): not a time the audit store wrote")
    if now is not None and (written is None or now - written > STALE_AFTER):
        return Finding(name, first, STALE,
                       f"{span} not anchored by any digest for more than {_minutes(STALE_AFTER)} min "
                       f"(written {oldest.at if oldest else 'at an unknown time'}): the digest job is not running, "
                       "or the records were written without marking the chain pending")
    return Finding(name, first, UNANCHORED, f"{span} appended after the latest digest that covers this chain")


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _parse_time(text: str) -> datetime | None:
    """A record's ``at`` (ISO 8601, as the store writes it); None when it is not one."""
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def trusted(records: Sequence[AuditRecord], chain: str, head: Head | None = None) -> list[AuditRecord]:
    """The records a reader may act on: from #0 (genesis) up to the first record that
    ``verify`` finds anything wrong with, in seq order.

    Who uploaded a file, what reach was declared: anything decided from an audit record
    must come from here, so a record forged into the table (at a negative seq, between
    two real ones, past the head) never counts.
    """
    failing = [f.seq for f in verify(records, head=head, chain=chain) if f.failing]
    if any(seq is None for seq in failing):
        return []
    # Forged records before #0 are dropped below; they do not make the real chain untrusted.
    first_bad = min((seq for seq in failing if seq is not None and seq >= 0), default=None)
    out = []
    for expected, rec in enumerate(sorted((r for r in records if r.seq >= 0), key=lambda r: r.seq)):
        if rec.seq != expected or (first_bad is not None and rec.seq >= first_bad):
            break
        out.append(rec)
    return out


def _check_contents(name: str, by_seq: dict[int, AuditRecord], findings: list[Finding]) -> set[int]:
    """Records whose contents do not hash to their stored hash: moved here from another
    seq (found through the predecessor their prev_hash names) or edited."""
    seq_of_hash = {rec.hash: seq for seq, rec in by_seq.items()}
    flagged = set()
    for seq, rec in by_seq.items():
        if _hash_as(name, seq, rec) == rec.hash:
            continue
        flagged.add(seq)
        origin = 0 if rec.prev_hash == GENESIS else (
            seq_of_hash[rec.prev_hash] + 1 if rec.prev_hash in seq_of_hash else None)
        if origin is not None and origin != seq and _hash_as(name, origin, rec) == rec.hash:
            findings.append(Finding(name, seq, REORDERED, f"holds the record written as #{origin}"))
        elif rec.chain != name and _hash_as(rec.chain, seq, rec) == rec.hash:
            findings.append(Finding(name, seq, EDITED, f"holds a record of chain {rec.chain}"))
        else:
            findings.append(Finding(name, seq, EDITED, "contents do not match the record's hash"))
    return flagged


def _check_links(name: str, by_seq: dict[int, AuditRecord], flagged: set[int], findings: list[Finding]) -> None:
    # A record that hashes correctly but no longer names its predecessor's hash: one side
    # was rewritten and rehashed. Links next to a record already reported say nothing new.
    for seq, rec in by_seq.items():
        if seq in flagged:
            continue
        if seq == 0:
            if rec.prev_hash != GENESIS:
                findings.append(Finding(name, 0, EDITED, "does not start the chain"))
            continue
        before = by_seq.get(seq - 1)
        if before is not None and seq - 1 not in flagged and rec.prev_hash != before.hash:
            findings.append(Finding(name, seq, EDITED,
                                    f"does not follow #{seq - 1}: #{seq - 1} was rewritten, or #{seq} onwards were"))


def _check_head(name: str, by_seq: dict[int, AuditRecord], flagged: set[int], head: Head,
                missing: dict[int, str], findings: list[Finding]) -> None:
    last = max(by_seq, default=-1)
    for seq in range(last + 1, head.seq + 1):
        missing.setdefault(seq, f"newest record(s) deleted: the head pointer says #{head.seq}")
    for seq in range(head.seq + 1, last + 1):
        findings.append(Finding(name, seq, INSERTED,
                                f"beyond the head pointer (#{head.seq}): not written by the audit store"))
    rec = by_seq.get(head.seq)
    if rec is not None and rec.hash != head.hash and head.seq not in flagged:
        findings.append(Finding(name, head.seq, EDITED, "does not match the head pointer"))


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, int | None, str]] = set()
    out = []
    for f in findings:
        if (f.chain, f.seq, f.kind) not in seen:
            seen.add((f.chain, f.seq, f.kind))
            out.append(f)
    return out


# --- digests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """A record of the digest chain plus the heads its ``root`` commits to."""

    record: AuditRecord
    heads: dict[str, Head]

    @property
    def seq(self) -> int:
        return self.record.seq

    @property
    def key(self) -> str:
        return digest_key(self.record.seq)


def heads_root(heads: Mapping[str, Head]) -> str:
    """One hash over every (chain, seq, hash), independent of the mapping's order.

    A flat hash, not a Merkle tree: verification always reads the whole digest, and
    inclusion proofs for a single chain are not something anyone asks of us yet.
    """
    rows = sorted([chain, head.seq, head.hash] for chain, head in heads.items())
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def next_digest(last: AuditRecord | Head | None, at: str, heads: Mapping[str, Head]) -> Digest:
    """The digest that follows ``last`` (the digest chain's newest record or head pointer)."""
    detail = {"root": heads_root(heads), "chains": len(heads)}
    return Digest(next_record(DIGEST_CHAIN, last, at, DIGEST_ACTOR, "digest", detail), dict(heads))


def digest_key(seq: int) -> str:
    """S3 key of digest ``seq``; zero-padded so keys list in seq order."""
    return f"{DIGEST_PREFIX}{seq:012d}.json"


def encode_digest(digest: Digest) -> bytes:
    """The archived form: self-contained, so the archive alone re-verifies the digest chain."""
    body = {
        "format": DIGEST_FORMAT,
        "record": asdict(digest.record),
        "heads": {chain: [head.seq, head.hash] for chain, head in sorted(digest.heads.items())},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def decode_digest(data: bytes) -> Digest:
    """Parse an archived digest; ``ValueError`` for anything that is not one."""
    try:
        body = json.loads(data)
        if body.get("format") != DIGEST_FORMAT:
            raise ValueError(f"unknown format {body.get('format')!r}")
        r = body["record"]
        record = AuditRecord(str(r["chain"]), int(r["seq"]), str(r["at"]), str(r["actor"]), str(r["event"]),
                             dict(r["detail"]), str(r["prev_hash"]), str(r["hash"]))
        heads = {str(chain): Head(int(seq), str(h)) for chain, (seq, h) in body["heads"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed digest: {type(exc).__name__}") from exc
    return Digest(record, heads)


@dataclass(frozen=True)
class ArchivedDigest:
    """One digest object as the archive holds it.

    ``body`` and ``lock_mode`` are those of the original (oldest) version; ``later_versions``
    counts versions and delete markers written over it since.
    """

    key: str
    body: bytes
    lock_mode: str | None
    later_versions: int = 0


# --- the change log --------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One write to the audit table, as its DynamoDB stream reported it: ``event`` is
    INSERT, MODIFY or REMOVE; ``at`` when DynamoDB made the change (not what the record
    claims); the hashes those of the record before and after."""

    event: str
    chain: str
    seq: int
    at: str
    old_hash: str | None
    new_hash: str | None
    event_id: str


def changes_from_stream(records: Iterable[Mapping[str, Any]]) -> list[Change]:
    """The changes in a DynamoDB stream batch (the Lambda event's ``Records``) of the
    audit table. Example::

        changes_from_stream(event["Records"])  # [Change('INSERT', 'media-7f3a', 0, ...)]
    """
    out = []
    for record in records:
        stream = record["dynamodb"]
        keys = stream["Keys"]
        # Epoch seconds, set by DynamoDB: when the write happened, whatever the record claims.
        at = datetime.fromtimestamp(float(stream["ApproximateCreationDateTime"]), UTC).isoformat()
        out.append(Change(
            event=str(record["eventName"]), chain=str(keys["chain"]["S"]), seq=int(keys["seq"]["N"]), at=at,
            old_hash=stream.get("OldImage", {}).get("hash", {}).get("S"),
            new_hash=stream.get("NewImage", {}).get("hash", {}).get("S"),
            event_id=str(record["eventID"]),
        ))
    return out


def changes_key(changes: Sequence[Change]) -> str:
    """S3 key of one archived batch: its first change's time (so keys list in time order)
    and a hash of its event ids (so a retried batch lands on the same key, written once)."""
    first = _parse_time(changes[0].at) or datetime.fromtimestamp(0, UTC)
    ids = hashlib.sha256("\n".join(c.event_id for c in changes).encode()).hexdigest()[:16]
    return f"{CHANGES_PREFIX}{first.astimezone(UTC):%Y%m%dT%H%M%SZ}-{ids}.json"


def encode_changes(changes: Sequence[Change]) -> bytes:
    body = {"format": CHANGES_FORMAT, "changes": [asdict(c) for c in changes]}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def decode_changes(data: bytes) -> list[Change]:
    """Parse an archived batch; ``ValueError`` for anything that is not one."""
    try:
        body = json.loads(data)
        if body.get("format") != CHANGES_FORMAT:
            raise ValueError(f"unknown format {body.get('format')!r}")
        return [Change(str(c["event"]), str(c["chain"]), int(c["seq"]), str(c["at"]), c["old_hash"], c["new_hash"],
                       str(c["event_id"])) for c in body["changes"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed change batch: {type(exc).__name__}") from exc


def verify_changes(archive: Sequence[ArchivedDigest]) -> tuple[list[Finding], list[Change]]:
    """Check the archived change log (locks, overwrites, readability) and name every
    overwrite or deletion of an audit record it holds. The audit store only ever puts a
    record once, so a MODIFY or REMOVE is always someone else's write."""
    findings: list[Finding] = []
    changes: list[Change] = []
    for obj in archive:
        if _CHANGES_KEY.fullmatch(obj.key) is None:
            findings.append(Finding(CHANGES_CHAIN, None, INSERTED, f"unexpected object {obj.key} in the change log"))
            continue
        if obj.lock_mode != "COMPLIANCE":
            findings.append(Finding(CHANGES_CHAIN, None, UNLOCKED,
                                    f"{obj.key} is not under a compliance-mode lock ({obj.lock_mode or 'none'})"))
        if obj.later_versions:
            findings.append(Finding(CHANGES_CHAIN, None, OVERWRITTEN,
                                    f"{obj.later_versions} version(s) or delete marker(s) written over {obj.key} "
                                    "(the original was read)"))
        try:
            changes.extend(decode_changes(obj.body))
        except ValueError:
            findings.append(Finding(CHANGES_CHAIN, None, EDITED, f"{obj.key} is not a readable change batch"))
    for change in sorted(changes, key=lambda c: c.at):
        if change.event == "REMOVE":
            findings.append(Finding(change.chain, change.seq, DELETED,
                                    f"deleted from the table at {change.at} (change log)"))
        elif change.event == "MODIFY":
            findings.append(Finding(change.chain, change.seq, OVERWRITTEN,
                                    f"overwritten in the table at {change.at} (change log)"))
    return findings, changes


@dataclass(frozen=True)
class ChainState:
    records: list[AuditRecord]
    head: Head | None


@dataclass(frozen=True)
class TrailSnapshot:
    """Everything ``verify_trail`` needs, read by a store. ``only`` limits the check to one chain
    (the digests are still read whole: any of them may anchor it)."""

    chains: dict[str, ChainState]
    digest_table: ChainState
    archive: list[ArchivedDigest]
    only: str | None = None
    # The archived change log (``changes/``), and when the snapshot was taken (ISO 8601):
    # what unanchored records are judged stale against.
    changes: list[ArchivedDigest] = field(default_factory=list)
    taken_at: str | None = None


@dataclass
class Report:
    findings: list[Finding]
    chains: int
    records: int
    digests: int
    latest_digest: dict[str, Any] | None = None
    checked: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chains": self.chains,
            "records": self.records,
            "digests": self.digests,
            "latest_digest": self.latest_digest,
            "problems": len(self.problems),
            "findings": [f.to_dict() for f in self.findings],
        }


def verify_digests(
    archive: Sequence[ArchivedDigest], table: ChainState | None = None
) -> tuple[list[Finding], dict[str, list[Anchor]], list[Digest]]:
    """Check the archived digests (lock, overwrites, contents, chain) and the table's copy
    of the digest chain against them. Returns the findings, what the sound digests anchor
    per chain, and those digests in seq order."""
    findings: list[Finding] = []
    digests: dict[int, Digest] = {}
    archived_seqs = set()
    for obj in archive:
        match = _DIGEST_KEY.fullmatch(obj.key)
        if match is None:
            findings.append(Finding(DIGEST_CHAIN, None, INSERTED, f"unexpected object {obj.key} in the archive"))
            continue
        seq = int(match[1])
        archived_seqs.add(seq)
        if obj.lock_mode != "COMPLIANCE":
            findings.append(Finding(DIGEST_CHAIN, seq, UNLOCKED,
                                    f"archived copy is not under a compliance-mode lock ({obj.lock_mode or 'none'})"))
        if obj.later_versions:
            findings.append(Finding(DIGEST_CHAIN, seq, OVERWRITTEN,
                                    f"{obj.later_versions} version(s) or delete marker(s) written over the archived copy "
                                    "(the original was verified)"))
        try:
            digest = decode_digest(obj.body)
        except ValueError:
            findings.append(Finding(DIGEST_CHAIN, seq, EDITED, "archived copy is not a readable digest"))
            continue
        if digest.record.seq != seq or digest.record.chain != DIGEST_CHAIN:
            findings.append(Finding(DIGEST_CHAIN, seq, REORDERED, f"archived copy holds digest #{digest.record.seq}"))
            continue
        detail = digest.record.detail
        if detail.get("root") != heads_root(digest.heads) or detail.get("chains") != len(digest.heads):
            findings.append(Finding(DIGEST_CHAIN, seq, EDITED, "archived heads do not match the digest's root"))
            continue
        digests[seq] = digest
    chain_findings = verify([d.record for _, d in sorted(digests.items())], chain=DIGEST_CHAIN)
    # A gap at a seq whose object exists was already reported above as unreadable or moved.
    findings.extend(_relabel(f, "archived copy") for f in chain_findings
                    if not (f.kind == DELETED and f.seq in archived_seqs))
    unsound = {f.seq for f in chain_findings if f.kind in (EDITED, REORDERED)}
    sound = [d for seq, d in sorted(digests.items()) if seq not in unsound]

    if table is not None:
        table_findings = [_relabel(f, "table copy") for f in verify(table.records, table.head, chain=DIGEST_CHAIN)]
        findings.extend(table_findings)
        reported = {f.seq for f in table_findings}
        in_table = {r.seq: r for r in table.records}
        for seq in sorted((set(digests) | set(in_table)) - reported):
            copy, original = in_table.get(seq), digests.get(seq)
            if copy is None and original is not None:
                findings.append(Finding(DIGEST_CHAIN, seq, DELETED,
                                        "table copy missing (the archive keeps the digest; if the digest job stopped "
                                        "between its two writes, its next run restores it)"))
            elif copy is not None and seq not in archived_seqs:
                findings.append(Finding(DIGEST_CHAIN, seq, INSERTED, "in the table but not in the archive"))
            elif copy is not None and original is not None and copy.hash != original.record.hash:
                findings.append(Finding(DIGEST_CHAIN, seq, EDITED, "table copy differs from the archived copy"))

    anchors: dict[str, list[Anchor]] = defaultdict(list)
    for digest in sound:
        for chain, head in digest.heads.items():
            anchors[chain].append(Anchor(digest.seq, head.seq, head.hash))
    return _unique(findings), dict(anchors), sound


def _relabel(finding: Finding, source: str) -> Finding:
    return Finding(finding.chain, finding.seq, finding.kind, f"{source}: {finding.message}")


def verify_trail(snapshot: TrailSnapshot) -> Report:
    """Verify every chain (or ``snapshot.only``) against its head pointer, the digests and
    the change log, and the digests against their archive. Example::

        report = verify_trail(store.snapshot())
        report.ok, [str(f) for f in report.problems]
    """
    findings, anchors, digests = verify_digests(snapshot.archive, snapshot.digest_table)
    change_findings, changes = verify_changes(snapshot.changes)
    # A chain the change log saw written and deleted is checked even though no table or digest names it.
    names = set(snapshot.chains) | set(anchors) | {c.chain for c in changes if c.chain != DIGEST_CHAIN}
    if snapshot.only is not None:
        names &= {snapshot.only}
    now = _parse_time(snapshot.taken_at) if snapshot.taken_at else None
    records = 0
    for name in sorted(names):
        state = snapshot.chains.get(name, ChainState([], None))
        records += len(state.records)
        if state.records and state.head is None:
            findings.append(Finding(name, None, DELETED,
                                    "head pointer missing (deleted, or the chain predates head pointers)"))
        findings.extend(verify(state.records, state.head, anchors.get(name, []), chain=name, now=now))
    findings.extend(f for f in change_findings
                    if f.chain in names or (snapshot.only is None and f.chain in (DIGEST_CHAIN, CHANGES_CHAIN)))
    findings = _unique(findings)  # a deletion the chain shows is also in the change log: name it once
    latest = digests[-1].record if digests else None
    return Report(
        findings=findings,
        chains=len(names),
        records=records,
        digests=len(digests),
        latest_digest={"seq": latest.seq, "at": latest.at} if latest else None,
        checked=sorted(names),
    )


@dataclass(frozen=True)
class DigestOutcome:
    """What one run of the digest job did: the digest written (if any chain was pending),
    a digest adopted from a run that stopped half-way, and whether chains were left for
    the next run because this one reached its cap."""

    seq: int | None
    chains: int
    key: str | None = None
    adopted: int | None = None
    more_pending: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
