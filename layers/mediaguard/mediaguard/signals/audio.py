"""Audio: a clip as its Chromaprint sub-fingerprints, matched by the share of aligned
32-bit words that agree."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mediaguard.signals.base import Comparison, SignalType

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Alignment:
    """The best alignment of a query against a reference: ``offset`` (reference word index
    minus query word index), ``share`` of the judged aligned words within
    :attr:`AudioSignal.bit_threshold` bits, and ``words`` judged (both sides informative)."""

    share: float
    offset: int
    words: int


class AudioSignal(SignalType):
    """Chromaprint (algorithm 1, fpcalc's and AcoustID's default) sub-fingerprints: one
    32-bit word per ~0.124 s of audio (4096-sample frames at 11025 Hz, hop 1365).

    Alignment: every offset at which the two clips overlap by at least
    :attr:`min_words` judged words is tried (the index narrows that to the offsets that
    sub-fingerprint voting proposes; :mod:`mediaguard.analysis.audio_index`); at each, an
    aligned pair of words *agrees* when their Hamming distance is at most
    :attr:`bit_threshold`. The score is the share of judged pairs that agree at the best
    offset; two clips match at ``share >= match_threshold``. Only *informative* words are
    judged: a word equal to a neighbour is stationary sound, and digital silence is one
    word repeated (627964279), which would otherwise make any two clips with pauses match
    (measured: two unrelated speech clips padded with 6 s of silence scored 1.0).

    Thresholds, from ``python -m bench.audio`` (espeak-ng speech, ``aevalsrc`` music-like
    tones; 10-12 s clips banked as MP3 192k): re-encodes (Opus 24-32k mono, AAC 48-64k,
    Vorbis with white noise at 20 dB SNR, FLAC/Opus trimmed by 1.5-4.4 s, off the hop
    grid) scored 0.94-1.00 at 6 bits; unrelated pairs (speech/speech in the same voice,
    speech/music, music/music) 0.02-0.08. 6 bits leaves the threshold 0.44 above the worst
    unrelated pair and 0.44 below the worst copy (at 4 bits: 0.81 vs 0.02; at 8 bits
    unrelated pairs reach 0.32).

    String form: base64 of the raw little-endian uint32 words (``-fp_format raw``), as the
    media item, the payload and the banks store it (~2.6 KB a minute).
    """

    name = "audio"
    content_types = ("audio", "video")
    match_threshold = 0.5
    # Bits two aligned sub-fingerprints may differ by and still agree.
    bit_threshold: ClassVar[int] = 6
    # Fewer judged aligned words (~3 s) than this is not enough to call a match.
    min_words: ClassVar[int] = 24
    index = "mediaguard.analysis.audio_index:AudioIndex"
    examples = (
        # 24 informative words: enough for the contract's self-comparison.
        base64.b64encode(b"".join(((i * 2654435761 + 12345) % 2**32).to_bytes(4, "little")
                                  for i in range(32))).decode("ascii"),
        base64.b64encode(b"".join(((i * 40503 + 7) % 2**32).to_bytes(4, "little")
                                  for i in range(40))).decode("ascii"),
    )

    @classmethod
    def words(cls, value: str) -> np.ndarray:
        """The uint32 words of a string form; raises ``ValueError``."""
        import numpy as np
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError, AttributeError) as exc:
            raise ValueError("an audio fingerprint is base64 of 32-bit words") from exc
        if not raw or len(raw) % 4:
            raise ValueError("an audio fingerprint is a non-empty run of 32-bit words")
        return np.frombuffer(raw, dtype="<u4").astype(np.uint32)

    @classmethod
    def format(cls, words: np.ndarray) -> str:
        import numpy as np
        return base64.b64encode(np.asarray(words, dtype="<u4").tobytes()).decode("ascii")

    @classmethod
    def validate(cls, value: str) -> str:
        return cls.format(cls.words(value))

    @classmethod
    def informative(cls, words: np.ndarray) -> np.ndarray:
        """Which words are judged: those differing from both neighbours (see the class doc)."""
        import numpy as np
        w = np.asarray(words, dtype=np.uint32)
        same = np.zeros(len(w), dtype=bool)
        if len(w) > 1:
            eq = w[1:] == w[:-1]
            same[1:] |= eq
            same[:-1] |= eq
        return ~same

    @classmethod
    def align(cls, query: np.ndarray, reference: np.ndarray, offsets: np.ndarray | None = None) -> Alignment:
        """The best alignment over ``offsets`` (default: every offset); share 0 when no
        offset has :attr:`min_words` judged words.

        >>> import numpy as np
        >>> w = np.arange(1, 60, dtype=np.uint32) * 2654435761
        >>> AudioSignal.align(w[10:50], w).offset
        10
        """
        import numpy as np
        q, r = np.asarray(query, dtype=np.uint32), np.asarray(reference, dtype=np.uint32)
        n, m = len(q), len(r)
        if n == 0 or m == 0:
            return Alignment(0.0, 0, 0)
        qi, ri = cls.informative(q), cls.informative(r)
        if offsets is None:
            offsets = np.arange(-(n - 1), m)
        best = Alignment(0.0, 0, 0)
        for off in np.asarray(offsets, dtype=np.int64).tolist():
            qs, rs = max(0, -off), max(0, off)
            k = min(n - qs, m - rs)
            if k < cls.min_words:
                continue
            judged = qi[qs:qs + k] & ri[rs:rs + k]
            words = int(judged.sum())
            if words < cls.min_words:
                continue
            agree = np.bitwise_count(q[qs:qs + k] ^ r[rs:rs + k]) <= cls.bit_threshold
            share = float((agree & judged).sum()) / words
            if share > best.share:
                best = Alignment(round(share, 4), off, words)
        return best

    @classmethod
    def compare(cls, a: str, b: str, threshold: int | float | None = None) -> Comparison:
        result = cls.align(cls.words(a), cls.words(b))
        threshold = cls.match_threshold if threshold is None else threshold
        return Comparison(result.words > 0 and result.share >= threshold, round(1.0 - result.share, 4))
