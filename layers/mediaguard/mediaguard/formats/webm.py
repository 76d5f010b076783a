"""WebM: the EBML header whose DocType tells WebM from other Matroska files."""

from __future__ import annotations

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_DOCTYPE = 0x4282


def matches(head: bytes) -> bool:
    """Whether ``head`` (the first KiB or so) is an EBML file whose DocType is ``webm``."""
    return doctype(head) == b"webm"


def doctype(head: bytes) -> bytes | None:
    """The DocType of the EBML header (``webm``, ``matroska``), None when ``head`` is
    not EBML or the header cannot be read."""
    if head[:4] != EBML_MAGIC:
        return None
    try:
        size, pos = vint(head, 4, marker=False)
        end = min(len(head), pos + size)
        while pos < end:
            element, pos = vint(head, pos, marker=True)
            size, pos = vint(head, pos, marker=False)
            if element == _DOCTYPE:
                return head[pos : pos + size].rstrip(b"\x00")
            pos += size
    except (ValueError, IndexError):
        return None
    return None


def vint(data: bytes, pos: int, *, marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``pos``: (value, next position). IDs keep
    their length marker bit; sizes drop it. Raises ``ValueError`` when it is longer
    than 8 bytes or cut short."""
    first = data[pos]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or pos + length > len(data):
        raise ValueError("bad EBML vint")
    value = int.from_bytes(data[pos : pos + length], "big")
    if not marker:
        value &= (1 << (7 * length)) - 1
    return value, pos + length
