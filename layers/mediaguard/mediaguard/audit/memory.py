"""Audit chains in memory, built by the real chain code (``audit.chain.next_record``).

The CLI's trail when it keeps nothing (``genguard screen``: it ends with the process;
``mediaguard serve`` and AWS keep theirs in the audit table, ``mediaguard bank`` in its
local files) and the tests' item store's trail (``tests/fakes.Items``): one copy.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from mediaguard.audit.chain import AuditRecord, next_record


def _now() -> str:
    return datetime.now(UTC).isoformat()


class InMemoryAudit:
    """``append_audit`` (``ports.AuditAppender``) and ``audit_chain`` over a dict of chains.

    Details go through JSON as the stores write them (sorted keys, anything else as
    ``str``), so a record hashes here as it would in DynamoDB.

    >>> trail = InMemoryAudit()
    >>> trail.append_audit("c", "system:test", "created", {"n": 1}).seq
    0
    """

    def __init__(self, clock: Callable[[], str] = _now) -> None:
        self.chains: dict[str, list[AuditRecord]] = defaultdict(list)
        self._clock = clock
        self._lock = threading.Lock()

    def append_audit(self, chain: str, actor: str, event: str, detail: dict) -> AuditRecord:
        detail = json.loads(json.dumps(detail, sort_keys=True, default=str))
        with self._lock:
            records = self.chains[chain]
            record = next_record(chain, records[-1] if records else None, self._clock(), actor, event, detail)
            records.append(record)
            return record

    def audit_chain(self, chain: str) -> list[AuditRecord]:
        return list(self.chains.get(chain, []))
