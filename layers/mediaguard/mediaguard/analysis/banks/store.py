"""The storage a bank service needs (DynamoDB in ``adapters/banks.py``, files in ``local/bankfile.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from mediaguard.analysis.banks.model import Bank, Entry, EntryStatus


class BankStore(Protocol):
    """Storage primitives. Names and entries arrive validated; the rules live in
    :class:`BankService`. ``batch_size`` (optional) is how many entries to write per call."""

    def create_bank(self, bank: Bank) -> None:
        """Store a new bank; :class:`BankExistsError` if the name is taken."""

    def get_bank(self, name: str) -> Bank | None: ...

    def list_banks(self) -> list[Bank]: ...

    def delete_bank(self, name: str) -> bool:
        """Remove the bank record (not its entries); False if there was none."""

    def get_entries(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        """The stored entries among ``(bank, ref)`` keys, read consistently."""

    def put_entries(self, entries: Sequence[Entry]) -> None:
        """Write entries whole, replacing any stored under the same keys."""

    def replace_entry(self, entry: Entry, expected_updated_at: datetime | None) -> bool:
        """Replace one stored entry only if its ``updated_at`` is still the one read;
        False if it changed or vanished meanwhile."""

    def bank_entries(self, bank: str, ref_prefix: str = "") -> Iterator[Entry]:
        """Every entry of one bank (any status) by ascending ref."""

    def scan_entries(self, status: EntryStatus | None = "active") -> Iterator[Entry]:
        """Every entry of every bank with this status (None: any)."""

    def entries_updated_since(self, since: datetime) -> Iterator[Entry]:
        """Every entry whose ``updated_at`` is at or after ``since`` (any status, any order)."""
