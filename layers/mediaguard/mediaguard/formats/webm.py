"""WebM: the EBML header whose DocType tells WebM from other Matroska files, and the
track types that tell an audio-only WebM (a browser's voice recording) from a video."""

from __future__ import annotations

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_DOCTYPE = 0x4282
_SEGMENT, _TRACKS, _TRACK_ENTRY, _TRACK_TYPE, _CLUSTER = 0x18538067, 0x1654AE6B, 0xAE, 0x83, 0x1F43B675
VIDEO_TRACK, AUDIO_TRACK = 1, 2
# Elements read before giving up: a real file has a handful before Tracks, a few per track.
_MAX_ELEMENTS = 1024


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


def _size(data: bytes, pos: int) -> tuple[int | None, int]:
    """An element's data size at ``pos`` (None: "unknown", all value bits set, as a
    live recorder writes for the Segment), and where the data starts."""
    start = pos
    value, pos = vint(data, pos, marker=False)
    return (None if value == (1 << (7 * (pos - start))) - 1 else value), pos


def track_types(data: bytes) -> frozenset[int] | None:
    """The TrackType of every track in the Segment's Tracks element (1 video, 2 audio,
    17 subtitle...), read from the file's first bytes (Tracks precede the first Cluster;
    give it 64 KiB: a Vorbis track's setup header is a few KB). None when there is no
    complete Tracks element before a Cluster, or the structure cannot be read."""
    if data[:4] != EBML_MAGIC:
        return None
    try:
        size, pos = _size(data, 4)
        if size is None:
            return None
        element, pos = vint(data, pos + size, marker=True)
        if element != _SEGMENT:
            return None
        size, pos = _size(data, pos)
        end = len(data) if size is None else min(len(data), pos + size)
        for _ in range(_MAX_ELEMENTS):
            if pos >= end:
                break
            element, pos = vint(data, pos, marker=True)
            size, pos = _size(data, pos)
            if element == _CLUSTER or size is None:
                return None
            if element == _TRACKS:
                return _types(data[pos : pos + size]) if pos + size <= len(data) else None
            pos += size
    except (ValueError, IndexError):
        return None
    return None


def _types(tracks: bytes) -> frozenset[int] | None:
    found, budget = set(), [_MAX_ELEMENTS]

    def children(payload: bytes):
        pos = 0
        while pos < len(payload):
            budget[0] -= 1
            element, pos = vint(payload, pos, marker=True)
            size, pos = _size(payload, pos)
            if size is None or pos + size > len(payload) or budget[0] < 0:
                raise ValueError("unreadable track element")
            yield element, payload[pos : pos + size]
            pos += size

    try:
        for element, entry in children(tracks):
            for field, value in children(entry) if element == _TRACK_ENTRY else ():
                if field == _TRACK_TYPE:
                    found.add(int.from_bytes(value, "big"))
    except (ValueError, IndexError):
        return None
    return frozenset(found)
