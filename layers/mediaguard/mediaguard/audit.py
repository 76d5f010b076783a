"""Tamper-evident audit records: one hash chain per item.

Each record commits to its predecessor's hash, so editing, deleting or
reordering any record breaks every hash after it. Chains are per item (the
partition key), so no single hot partition caps write throughput.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

GENESIS = "0" * 64


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


def record_hash(chain: str, seq: int, at: str, actor: str, event: str, detail: dict, prev_hash: str) -> str:
    body = json.dumps(
        {"chain": chain, "seq": seq, "at": at, "actor": actor, "event": event, "detail": detail, "prev": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def next_record(
    chain: str, last: AuditRecord | None, at: str, actor: str, event: str, detail: dict
) -> AuditRecord:
    seq = 0 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    return AuditRecord(chain, seq, at, actor, event, detail, prev, record_hash(chain, seq, at, actor, event, detail, prev))


def verify(records: list[AuditRecord]) -> list[str]:
    """Problems found in one chain, in order; an empty list means it verifies."""
    problems = []
    prev = GENESIS
    for expected_seq, rec in enumerate(records):
        if rec.seq != expected_seq:
            problems.append(f"{rec.chain}: record {expected_seq} missing or out of order (found seq {rec.seq})")
        if rec.prev_hash != prev:
            problems.append(f"{rec.chain}#{rec.seq}: does not follow the previous record")
        if record_hash(rec.chain, rec.seq, rec.at, rec.actor, rec.event, rec.detail, rec.prev_hash) != rec.hash:
            problems.append(f"{rec.chain}#{rec.seq}: contents were edited")
        prev = rec.hash
    return problems
