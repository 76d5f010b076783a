"""What bank names, entry refs and qualities may be, and the refs derived from content
(so that neither a hash nor a file name ends up as a ref)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from mediaguard.analysis.banks.errors import InvalidBankError, InvalidEntryError

# Bank names become DynamoDB keys, directory names and audit chain names.
_BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REF_MAX_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bank_name(name: str) -> str:
    """The name, if it can be a bank's (it becomes a key, a directory and an audit chain)."""
    if not isinstance(name, str) or not _BANK_NAME.match(name):
        raise InvalidBankError("a bank name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def check_ref(ref: str, what: str = "ref") -> str:
    """The ref (or group) without surrounding blanks, if it is 1-256 printable characters."""
    ref = ref.strip() if isinstance(ref, str) else ""
    if not ref or len(ref) > REF_MAX_CHARS or _CONTROL.search(ref):
        raise InvalidEntryError(f"a {what} is 1-{REF_MAX_CHARS} printable characters")
    return ref


def check_quality(quality: Any) -> int | None:
    """The quality as an int, if it is a whole number from 0 to 100 (None stays None)."""
    if quality is None:
        return None
    if isinstance(quality, bool) or not isinstance(quality, int | float) or quality != int(quality) \
            or not 0 <= quality <= 100:
        raise InvalidEntryError("quality is an integer from 0 to 100")
    return int(quality)


def pdq_ref(pdq: str) -> str:
    """The ref of a hash imported without one: a one-way digest of the hash, so the same
    list imports idempotently and a tombstone does not keep the withdrawn hash."""
    return "pdq-" + hashlib.blake2b(pdq.encode(), digest_size=16, person=b"mediaguard.ref").hexdigest()


def content_ref(data: bytes) -> str:
    """The default ref of banked media: a one-way digest of its bytes (not a file name,
    which may name a person)."""
    return "m-" + hashlib.blake2b(data, digest_size=16, person=b"mediaguard.ref").hexdigest()
