"""Audio-only containers: the signatures that tell MP3, ADTS AAC, Ogg (Vorbis/Opus),
WAV and FLAC apart. M4A is ISO BMFF (``isobmff``, major brand ``M4A ``/``M4B ``).

Signatures only: the streams are read by ffmpeg (:mod:`mediaguard.ingress.audio`),
with the demuxer these names choose, after the sniff.
"""

from __future__ import annotations

import struct

_ID3 = b"ID3"
# Major brands of audio-only MP4 files (iTunes songs and audio books).
M4A_BRANDS = frozenset({b"M4A ", b"M4B "})


def _mpeg_audio_sync(head: bytes, pos: int) -> bool:
    """An MPEG-1/2/2.5 layer III frame header at ``pos`` (11 sync bits, a valid version,
    layer III, a bitrate index other than free/bad and a valid sample-rate index)."""
    if pos + 4 > len(head):
        return False
    b1, b2 = head[pos + 1], head[pos + 2]
    return (head[pos] == 0xFF and b1 & 0xE0 == 0xE0 and (b1 >> 3) & 3 != 1 and (b1 >> 1) & 3 == 1
            and (b2 >> 4) not in (0, 15) and (b2 >> 2) & 3 != 3)


def is_mp3(head: bytes) -> bool:
    """MP3: an ID3v2 tag, or a layer III frame header at the start followed by a second
    one where the first frame's length says (one sync word alone is too weak a sign)."""
    if head[:3] == _ID3 and len(head) >= 10:
        return True
    if not _mpeg_audio_sync(head, 0):
        return False
    length = _frame_length(head)
    return length is not None and (length + 4 > len(head) or _mpeg_audio_sync(head, length))


_BITRATES = {  # kbit/s by bitrate index: MPEG-1 layer III, MPEG-2/2.5 layer III
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _frame_length(head: bytes) -> int | None:
    version = (head[1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    bitrate = _BITRATES[3 if version == 3 else 2][head[2] >> 4] * 1000
    rate = _RATES[version][(head[2] >> 2) & 3]
    padding = (head[2] >> 1) & 1
    return (144 if version == 3 else 72) * bitrate // rate + padding if bitrate else None


def is_adts(head: bytes) -> bool:
    """Raw AAC in ADTS frames: 12 sync bits, layer 0, and a frame length that lands on the
    next sync word (a lone 0xFFF is too weak a sign)."""
    if len(head) < 7 or head[0] != 0xFF or head[1] & 0xF6 != 0xF0:
        return False
    length = ((head[3] & 0x03) << 11) | (head[4] << 3) | (head[5] >> 5)
    if length < 7:
        return False
    return length + 2 > len(head) or (head[length] == 0xFF and head[length + 1] & 0xF6 == 0xF0)


def ogg_codec(head: bytes) -> str | None:
    """The codec of an Ogg file's first logical stream: "vorbis", "opus", another name
    for other codecs (Theora, Speex, FLAC-in-Ogg), None when ``head`` is not Ogg."""
    if head[:4] != b"OggS" or len(head) < 28:
        return None
    segments = head[26]
    body = head[27 + segments : 27 + segments + 16]
    if body[:7] == b"\x01vorbis":
        return "vorbis"
    if body[:8] == b"OpusHead":
        return "opus"
    return body[1:8].decode("latin-1", "replace").strip("\x00") or "unknown"


def is_wav(head: bytes) -> bool:
    """RIFF/WAVE (the same RIFF container as WebP, another form type)."""
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def is_flac(head: bytes) -> bool:
    """Native FLAC: ``fLaC`` then a STREAMINFO block (type 0, 34 bytes)."""
    if len(head) < 8 or head[:4] != b"fLaC":
        return False
    (header,) = struct.unpack(">I", head[4:8])
    return (header >> 24) & 0x7F == 0 and header & 0xFFFFFF == 34

