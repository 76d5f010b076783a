"""Hand-written fakes shared by the unit and functional tests (one copy of each).

They stand in at a port (a clock, the item store, the CLI's output), never inside
production code, and hold no AWS: a test that needs DynamoDB or S3 is a functional test
and uses moto.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from mediaguard.audit import chain as audit
from mediaguard.audit.memory import InMemoryAudit
from mediaguard.errors import SupersededRunError

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves: ``clock()`` is the current time, ``tick``/``advance`` move it.
    ``start`` is a datetime, or epoch seconds (a float) for code that reads ``time.time()``.

    With ``step``, every reading first moves the clock on by that much, so consecutive
    records get distinct, ordered times without the test ticking by hand.

        clock = Clock()
        clock.tick(30)          # 30 s later; returns the new time
        clock.advance(hours=2)  # any timedelta keyword
    """

    def __init__(self, start: datetime | float = T0, *, step: timedelta | float | None = None) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime | float:
        if self.step is not None:
            self.now += self.step
        return self.now

    def tick(self, seconds: float = 1.0) -> datetime | float:
        return self.advance(seconds=seconds)

    def advance(self, **delta: float) -> datetime | float:
        step = timedelta(**delta)
        self.now += step.total_seconds() if isinstance(self.now, int | float) else step
        return self.now


class Items:
    """The item store (``get``/``update``/``append_audit``) in memory, with real audit chains.

    ``update`` merges fields and drops those set to None, as the DynamoDB store does; a new
    item starts as ``{"media_id": ...}`` (its key) when ``keyed``. ``journal``, if given,
    receives ``("audit", event)`` per appended record, for tests that check the order of
    side effects.
    """

    def __init__(self, journal: list | None = None, *, keyed: bool = True) -> None:
        self.items: dict[str, dict] = {}
        self.audit = InMemoryAudit()  # the library's in-memory trail: one copy of the chain code
        self.chains: dict[str, list[audit.AuditRecord]] = self.audit.chains
        self.journal = journal
        self.keyed = keyed

    def get(self, media_id):
        return copy.deepcopy(self.items.get(media_id))

    def scan_page(self, page_size, start=None):
        ids = sorted(self.items)
        at = ids.index(start) + 1 if start in ids else 0
        page = ids[at:at + page_size]
        more = page[-1] if page and at + page_size < len(ids) else None
        return [{"media_id": m, **copy.deepcopy(self.items[m])} for m in page], more

    def update(self, media_id, fields, *, if_run=None):
        if if_run is not None and (self.items.get(media_id) or {}).get("run") != if_run:
            raise SupersededRunError("this execution is not the item's current run")
        item = self.items.setdefault(media_id, {"media_id": media_id} if self.keyed else {})
        for name, value in fields.items():
            if value is None:
                item.pop(name, None)
            else:
                item[name] = copy.deepcopy(value)

    def append_audit(self, chain, actor, event, detail):
        record = self.audit.append_audit(chain, actor, event, detail)
        if self.journal is not None:
            self.journal.append(("audit", event))
        return record

    def events(self, chain: str) -> list[str]:
        return [r.event for r in self.chains[chain]]


class Lines:
    """Stands in for the CLI's output (``out.line(text)``): what a command prints on stdout,
    one entry per line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.extend(text.splitlines())

    def json(self) -> list[dict]:
        """Each line parsed as JSON (the ``--json`` output: one object per line)."""
        return [json.loads(line) for line in self.lines]
