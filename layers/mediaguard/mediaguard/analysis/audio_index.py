"""An index of banked audio fingerprints: sub-fingerprint voting proposes alignments,
:meth:`AudioSignal.align` judges them.

Every informative word of every banked clip is a key (sorted uint32, with its clip and
position). A query probes, for each of its informative words, every key within
``PROBE_BITS`` bits (1 + 32 + 496 = 529 probes a word, found with one ``searchsorted``
over all of them) and each hit votes for (clip, reference position - query position).
Per clip, the offsets with the most votes (and their neighbours, for a trim that fell
between two hops) are judged by the share of aligned words that agree, exactly as
``AudioSignal.compare`` would judge them. Exact-word voting alone is too weak: a copy
trimmed off the hop grid (3.06 s) kept 1 of 31 words identical, but 16 within 2 bits.

Flat arrays only (words, clip starts), like the PDQ index, so a build is two ``.npy``
files; the sorted key table is rebuilt on load (a sort of the banked words).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import combinations
from pathlib import Path

import numpy as np

from mediaguard.signals import AudioSignal

# Bits a banked word may differ from a query word and still vote.
PROBE_BITS = 2
# Offsets judged per candidate clip: the best-voted few, each with its two neighbours.
TOP_OFFSETS = 3
# A clip needs this many votes at one offset to be judged at all (unrelated clips: 0-1).
MIN_VOTES = 3


@cache
def _probe_masks() -> np.ndarray:
    masks = [0] + [1 << i for i in range(32)]
    masks += [(1 << a) | (1 << b) for a, b in combinations(range(32), 2)] if PROBE_BITS >= 2 else []
    return np.array(masks, dtype=np.uint32)


class AudioIndex:
    """Banked clips' fingerprints, searchable by a query clip.

    >>> w = np.arange(1, 80, dtype=np.uint32) * np.uint32(2654435761)
    >>> idx = AudioIndex.build([w], ids=[4])
    >>> [(i, a.offset) for i, a in idx.query(w[20:60])]
    [(4, 20)]
    """

    def __init__(self, words: np.ndarray | None = None, starts: np.ndarray | None = None,
                 ids: np.ndarray | None = None) -> None:
        self.words = np.zeros(0, dtype=np.uint32) if words is None else np.asarray(words, dtype=np.uint32)
        self.starts = np.zeros(1, dtype=np.int64) if starts is None else np.asarray(starts, dtype=np.int64)
        self.ids = np.arange(len(self.starts) - 1, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        informative = np.zeros(len(self.words), dtype=bool)
        for c in range(len(self.starts) - 1):
            a, b = self.starts[c], self.starts[c + 1]
            informative[a:b] = AudioSignal.informative(self.words[a:b])
        positions = np.flatnonzero(informative)
        order = np.argsort(self.words[positions], kind="stable")
        self._keys = self.words[positions][order]
        self._positions = positions[order]

    @classmethod
    def build(cls, clips: Sequence[np.ndarray], ids: Sequence[int] | np.ndarray | None = None) -> AudioIndex:
        lengths = [len(c) for c in clips]
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        words = np.concatenate([np.asarray(c, dtype=np.uint32) for c in clips]) if clips else \
            np.zeros(0, dtype=np.uint32)
        return cls(words, starts, None if ids is None else np.asarray(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.starts) - 1

    def clip(self, row: int) -> np.ndarray:
        return self.words[self.starts[row]:self.starts[row + 1]]

    def query(self, words: np.ndarray, threshold: float = AudioSignal.match_threshold) -> list[tuple[int, object]]:
        """``(id, Alignment)`` of every banked clip the query matches (share >= threshold),
        best first."""
        q = np.asarray(words, dtype=np.uint32)
        if not len(self) or len(q) < AudioSignal.min_words or not len(self._keys):
            return []
        qpos = np.flatnonzero(AudioSignal.informative(q))
        probes = (q[qpos][:, None] ^ _probe_masks()[None, :]).ravel()
        probe_qpos = np.repeat(qpos, len(_probe_masks()))
        lo = np.searchsorted(self._keys, probes, side="left")
        hi = np.searchsorted(self._keys, probes, side="right")
        counts = hi - lo
        if not counts.sum():
            return []
        hit = np.repeat(np.arange(len(probes)), counts)
        ref_pos = self._positions[np.arange(counts.sum()) + np.repeat(lo - np.cumsum(counts) + counts, counts)]
        clip = np.searchsorted(self.starts, ref_pos, side="right") - 1
        offset = (ref_pos - self.starts[clip]) - probe_qpos[hit]
        # One vote per (clip, offset, query word): a word near two banked words counts once.
        votes = np.unique(np.stack([clip, offset, probe_qpos[hit]]), axis=1)
        pairs, tally = np.unique(votes[:2], axis=1, return_counts=True)
        out = []
        for c in np.unique(pairs[0]).tolist():
            mine = pairs[0] == c
            best = np.argsort(-tally[mine], kind="stable")[:TOP_OFFSETS]
            best = best[tally[mine][best] >= MIN_VOTES]
            if not len(best):
                continue
            centre = pairs[1][mine][best]
            offsets = np.unique(np.concatenate([centre - 1, centre, centre + 1]))
            alignment = AudioSignal.align(q, self.clip(c), offsets)
            if alignment.words and alignment.share >= threshold:
                out.append((int(self.ids[c]), alignment))
        return sorted(out, key=lambda item: (-item[1].share, item[0]))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "words.npy", self.words.astype("<u4"), allow_pickle=False)
        np.save(directory / "starts.npy", self.starts, allow_pickle=False)
        np.save(directory / "ids.npy", self.ids, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> AudioIndex:
        if not (directory / "words.npy").exists():
            return cls()
        return cls(np.load(directory / "words.npy"), np.load(directory / "starts.npy"), np.load(directory / "ids.npy"))
