"""Bank errors. Each has a stable ``reason`` code the CLI and the API report."""

from __future__ import annotations

from mediaguard.errors import MediaguardError


class BankError(MediaguardError):
    """A bank operation that cannot be done as asked. ``reason`` is a stable code."""

    reason = "bank_error"


class BankSourceError(BankError, ValueError):
    """A bank source (folder, CSV, spec) that cannot be read."""

    reason = "invalid_bank_source"


_CSV_PROBLEMS = {
    "unreadable_row": "is not valid CSV",
    "missing_pdq": "has no PDQ hash (64 hex characters)",
    "invalid_pdq": "has a PDQ hash that is not 64 hex characters",
    "invalid_quality": "has a quality that is not an integer from 0 to 100",
    "missing_ref": "is withdrawn but names neither a ref nor a hash",
    "invalid_ref": "has a ref or group that is empty, too long or holds control characters",
    "duplicate_ref": "repeats an earlier row's ref with different contents",
}


class BankCsvError(BankSourceError):
    """An invalid CSV row. The message names the row number and the problem, never the
    row's contents (they may be hashes of someone's intimate images)."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(f"row {row} {_CSV_PROBLEMS[reason]}", reason=reason)
        self.row = row


class InvalidBankError(BankError, ValueError):
    reason = "invalid_bank"


class InvalidEntryError(BankError, ValueError):
    reason = "invalid_entry"


class BankExistsError(BankError):
    reason = "bank_exists"


class BankNotFoundError(BankError, LookupError):
    reason = "bank_not_found"


class EntryNotFoundError(BankError, LookupError):
    reason = "entry_not_found"


class EntryWithdrawnError(BankError):
    reason = "entry_withdrawn"


class ConcurrentUpdateError(BankError):
    """The entry changed between reading and writing it; run the command again."""

    reason = "concurrent_update"
