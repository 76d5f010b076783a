"""A PDQ index for millions of hashes on one Lambda: multi-index hashing over flat arrays.

Why this shape (numbers from ``bench/index.py``; the issue's targets are 10M hashes,
p50 <= 5 ms at radius 31 on one core, <= 1 GB resident, <= 5 s cold load):

- **Multi-index hashing** (Norouzi et al., as in Meta's PDQ MIH). The 256 bits are cut
  into 12 disjoint substrings: each uint64 word gives one of 22 bits and two of 21 bits.
  If two hashes differ in at most ``r`` bits, by pigeonhole at least one substring differs
  in at most ``r // 12`` bits (2 for r = 31, since 12 * 3 = 36 > 31). A query therefore
  looks up, per substring, every key within 2 bits of its own (232 or 254 keys), collects
  the entries in those buckets and verifies the full distance with a vectorised popcount.
  12 substrings rather than 16 x 16 bits: about 11k candidates at 10M random hashes
  instead of 41k, and 11 row tables instead of 16 (the 16 x 16 layout needs ~0.96 GB).
- **Flat arrays**, one ``.npy`` each, loaded with ``mmap_mode="r"``: load is a few
  ``open``/``mmap`` calls, and the page cache (not a Python heap) holds the data.
  Rows are stored sorted by substring 0, so table 0 needs no row array.
  At 10M: hashes 320 MB + rows 440 MB + bucket offsets 134 MB are touched by queries;
  ids, the id order and labels (on disk beside them) are read only for hits.
- **A delta** beside the main index: ``add`` appends to a small array scanned linearly,
  so a new bank entry is matchable as soon as the process holding the index sees it;
  ``remove`` sets a tombstone; ``rebuild`` folds both into a fresh main index.

Hashes are 32 raw bytes (the 64 hex characters hash exchanges use), handled as four
little-endian uint64 words: Hamming distance does not care how the bits are grouped.
All arithmetic is integer; nothing starts a thread.

    >>> idx = PdqIndex.build(["f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"], ids=[7])
    >>> idx.query("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b23")
    [(7, 1)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cache
from itertools import combinations
from pathlib import Path

import numpy as np

from mediaguard.signals import PdqSignal

FORMAT_VERSION = 1

# (word, shift, bits) of each substring: per 64-bit word one 22-bit and two 21-bit pieces.
_LAYOUT = tuple((w, s, b) for w in range(4) for s, b in ((0, 22), (22, 21), (43, 21)))
_M = len(_LAYOUT)
_WORD = np.array([w for w, _, _ in _LAYOUT], dtype=np.intp)
_SHIFT = np.array([s for _, s, _ in _LAYOUT], dtype=np.uint64)
_MASK = np.array([(1 << b) - 1 for _, _, b in _LAYOUT], dtype=np.uint64)
# Above this per-substring radius the probes outnumber what a linear scan reads.
_MAX_SUB_RADIUS = 3

HashesLike = str | bytes | Sequence[str] | Sequence[bytes] | np.ndarray


def to_words(hashes: HashesLike) -> np.ndarray:
    """PDQ hashes as a C-contiguous uint64 ``[N, 4]`` array (the index's internal form).

    Accepts one hex string or 32 bytes, a sequence of either, a uint8 ``[N, 32]`` array or
    a uint64 ``[N, 4]`` array.

    >>> to_words("00" * 31 + "ff").shape
    (1, 4)
    """
    if isinstance(hashes, str | bytes):
        hashes = [hashes]
    if isinstance(hashes, np.ndarray):
        arr = np.ascontiguousarray(hashes)
        if arr.dtype == np.uint64 and arr.ndim == 2 and arr.shape[1] == 4:
            return arr.astype("<u8", copy=False)
        if arr.dtype == np.uint8 and arr.ndim == 2 and arr.shape[1] == 32:
            return arr.view("<u8")
        raise ValueError("hash arrays are uint8 [N, 32] or uint64 [N, 4]")
    items = list(hashes)
    if not items:
        return np.zeros((0, 4), dtype="<u8")
    if isinstance(items[0], str):
        if any(len(h) != 64 for h in items):
            raise ValueError("PDQ hashes are 64 hex characters")
        raw = bytes.fromhex("".join(items))
    else:
        if any(len(h) != 32 for h in items):
            raise ValueError("PDQ hashes are 32 bytes")
        raw = b"".join(items)
    return np.frombuffer(raw, dtype="<u8").reshape(-1, 4).copy()


def _distances(words: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.bitwise_count(words ^ q).sum(axis=1, dtype=np.int32)


def brute_force(hashes: HashesLike, ids: Sequence[int] | np.ndarray, query: str | bytes,
                radius: int = PdqSignal.match_threshold, chunk: int = 1 << 20) -> list[tuple[int, int]]:
    """Exact linear scan: every ``(id, distance)`` with distance <= radius, nearest first.

    The baseline the benchmark compares against and the oracle the tests trust. It reads
    ``chunk`` rows at a time so a 10M scan needs no 320 MB temporary.

    >>> brute_force(["00" * 32, "ff" * 32], [1, 2], "00" * 31 + "03")
    [(1, 2)]
    """
    words = to_words(hashes)
    ids = np.asarray(ids, dtype=np.int64)
    q = to_words(query)[0]
    rows, dist = [], []
    for start in range(0, len(words), chunk):
        d = _distances(words[start:start + chunk], q)
        hit = np.flatnonzero(d <= radius)
        rows.append(hit + start)
        dist.append(d[hit])
    if not rows:
        return []
    return _sorted_pairs(ids[np.concatenate(rows)], np.concatenate(dist))


def _sorted_pairs(ids: np.ndarray, dist: np.ndarray) -> list[tuple[int, int]]:
    order = np.lexsort((ids, dist))
    return list(zip(ids[order].tolist(), dist[order].tolist(), strict=True))


def _keys(words: np.ndarray, t: int) -> np.ndarray:
    w, s, b = _LAYOUT[t]
    return ((words[:, w] >> np.uint64(s)) & np.uint64((1 << b) - 1)).astype(np.uint32)


@cache
def _flips(bits: int, radius: int) -> np.ndarray:
    """Every ``bits``-bit mask with at most ``radius`` bits set."""
    masks = [sum(1 << i for i in c) for r in range(radius + 1) for c in combinations(range(bits), r)]
    return np.array(masks, dtype=np.uint64)


@cache
def _probe_plan(sub_radius: int) -> tuple[np.ndarray, np.ndarray]:
    """For all substrings at once: which substring each probe belongs to, and its flip mask."""
    table, flip = [], []
    for t, (_, _, b) in enumerate(_LAYOUT):
        f = _flips(b, sub_radius)
        table.append(np.full(len(f), t, dtype=np.intp))
        flip.append(f)
    return np.concatenate(table), np.concatenate(flip)


def _bucket_bits(n: int) -> tuple[int, ...]:
    """Bits of each substring that address a bucket: all of them at millions of hashes, fewer
    for a small bank so its offset tables stay about as long as the bank (a full table set
    is 134 MB whatever the bank size). Dropped bits only make buckets coarser: the candidates
    are a superset and the verification keeps the result exact."""
    return tuple(min(b, max(8, n.bit_length() + 2)) for _, _, b in _LAYOUT)


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate the ranges ``[starts[i], starts[i] + lengths[i])`` without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - before, lengths)


def _quality_mask(quality, n: int) -> np.ndarray:
    if quality is None:
        return np.ones(n, dtype=bool)
    if not isinstance(quality, np.ndarray):
        # None means "not reported" and is indexed, as the similarity stage does today.
        quality = np.array([PdqSignal.min_quality if q is None else q for q in quality], dtype=np.int64)
    if len(quality) != n:
        raise ValueError("quality must have one value per hash")
    return quality >= PdqSignal.min_quality


class PdqIndex:
    """PDQ hashes keyed by caller-chosen int64 ids, searchable by Hamming radius.

    Build once (a periodic job), ``save`` to a directory, ``load`` it with ``mmap`` in each
    Lambda, ``add``/``remove`` bank changes between rebuilds. Optional labels map an id
    back to its ``(bank, ref)``. Ids should be unique; if one is reused, every entry with it
    is returned and ``remove`` drops them all.

        >>> idx = PdqIndex.build(["00" * 32, "ff" * 32], ids=[1, 2], labels=[("ncii", "a"), ("ncii", "b")])
        >>> idx.add(["0f" + "00" * 31], ids=[3], labels=[("deepfakes", "c")])
        1
        >>> idx.query("00" * 32)
        [(1, 0), (3, 4)]
        >>> idx.remove(1), idx.label(3)
        (1, ('deepfakes', 'c'))
        >>> idx.query("00" * 32)
        [(3, 4)]
    """

    def __init__(self) -> None:
        empty = _Main.empty()
        self._main = empty
        self._tomb = np.zeros(0, dtype=bool)
        self._dead = 0
        self._dh = np.zeros((0, 4), dtype="<u8")  # delta hashes (capacity grows by doubling)
        self._di = np.zeros(0, dtype=np.int64)  # delta ids
        self._dn = 0
        self._dlabels: dict[int, tuple[str, str]] = {}

    # --- building -----------------------------------------------------------

    @classmethod
    def build(cls, hashes: HashesLike, ids: Sequence[int] | np.ndarray, quality=None,
              labels: Sequence[tuple[str, str]] | None = None) -> PdqIndex:
        """A fresh main index. Entries whose quality is below ``PdqSignal.min_quality`` are left out.

        ``hashes``: hex strings, 32-byte strings, uint8 ``[N, 32]`` or uint64 ``[N, 4]``;
        ``ids``: int64 per hash; ``quality``: int (or None = unknown, kept) per hash;
        ``labels``: optional ``(bank, ref)`` per hash.
        """
        index = cls()
        index._main = _Main.build(to_words(hashes), np.asarray(ids, dtype=np.int64), _quality_mask(
            quality, len(ids)), labels)
        index._tomb = np.zeros(index._main.n, dtype=bool)
        return index

    def add(self, hashes: HashesLike, ids: Sequence[int] | np.ndarray, quality=None,
            labels: Sequence[tuple[str, str]] | None = None) -> int:
        """Make entries matchable now, through the linearly scanned delta; returns how many
        were kept (quality >= ``PdqSignal.min_quality`` or unknown)."""
        words = to_words(hashes)
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) != len(words):
            raise ValueError("one id per hash")
        keep = _quality_mask(quality, len(ids))
        words, kept_ids = words[keep], ids[keep]
        need = self._dn + len(kept_ids)
        if need > len(self._di):
            cap = max(1024, need, 2 * len(self._di))
            dh, di = np.zeros((cap, 4), dtype="<u8"), np.zeros(cap, dtype=np.int64)
            dh[:self._dn], di[:self._dn] = self._dh[:self._dn], self._di[:self._dn]
            self._dh, self._di = dh, di
        self._dh[self._dn:need], self._di[self._dn:need] = words, kept_ids
        self._dn = need
        if labels is not None:
            for i in np.flatnonzero(keep).tolist():
                self._dlabels[int(ids[i])] = (str(labels[i][0]), str(labels[i][1]))
        return len(kept_ids)

    def remove(self, entry_id: int) -> int:
        """Withdraw every entry with this id (main: tombstone; delta: dropped); returns how many."""
        rows = self._main.rows_of(entry_id)
        rows = rows[~self._tomb[rows]]
        self._tomb[rows] = True
        self._dead += len(rows)
        hit = np.flatnonzero(self._di[:self._dn] == entry_id)
        if len(hit):
            keep = np.flatnonzero(self._di[:self._dn] != entry_id)
            self._dh[:len(keep)], self._di[:len(keep)] = self._dh[keep], self._di[keep]
            self._dn = len(keep)
            self._dlabels.pop(int(entry_id), None)
        return len(rows) + len(hit)

    def rebuild(self) -> None:
        """Fold the delta in and drop tombstoned entries: a fresh main index, empty delta."""
        m, live = self._main, np.flatnonzero(~self._tomb)
        words = np.concatenate([np.asarray(m.hashes)[live], self._dh[:self._dn]])
        ids = np.concatenate([np.asarray(m.ids)[live], self._di[:self._dn]])
        labels = None
        if m.has_labels or self._dlabels:
            labels = [m.label_at(r) for r in live.tolist()]
            labels += [self._dlabels.get(i, ("", "")) for i in self._di[:self._dn].tolist()]
        fresh = PdqIndex.build(words, ids, labels=labels)
        self.__dict__.update(fresh.__dict__)

    # --- searching ----------------------------------------------------------

    def query(self, pdq: str | bytes, radius: int = PdqSignal.match_threshold) -> list[tuple[int, int]]:
        """Every live ``(id, distance)`` with distance <= radius, nearest first (ties by id)."""
        q = to_words(pdq)[0]
        rows, dist = self._main.search(q, radius)
        if len(rows):
            live = ~self._tomb[rows]
            rows, dist = rows[live], dist[live]
        ids = np.asarray(self._main.ids)[rows] if len(rows) else np.zeros(0, dtype=np.int64)
        if self._dn:
            d = _distances(self._dh[:self._dn], q)
            hit = np.flatnonzero(d <= radius)
            ids, dist = np.concatenate([ids, self._di[hit]]), np.concatenate([dist, d[hit]])
        return _sorted_pairs(ids, dist)

    def label(self, entry_id: int) -> tuple[str, str] | None:
        """The ``(bank, ref)`` stored for a live id, or None."""
        if int(entry_id) in self._dlabels and np.any(self._di[:self._dn] == entry_id):
            return self._dlabels[int(entry_id)]
        rows = self._main.rows_of(entry_id)
        rows = rows[~self._tomb[rows]]
        return self._main.label_at(int(rows[0])) if len(rows) and self._main.has_labels else None

    def __len__(self) -> int:
        return self._main.n - self._dead + self._dn

    @property
    def delta_size(self) -> int:
        return self._dn

    # --- storage ------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> None:
        """Write the index as flat ``.npy`` files plus ``meta.json`` (written last).

        Files are replaced atomically one by one, so a process that has the old files
        mapped keeps reading them; publish a new index to a fresh directory."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays = self._main.arrays()
        arrays["tombstones"] = self._tomb
        arrays["delta_hashes"] = self._dh[:self._dn]
        arrays["delta_ids"] = self._di[:self._dn]
        for name, arr in arrays.items():
            tmp = d / f".{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(arr), allow_pickle=False)
            os.replace(tmp, d / f"{name}.npy")
        meta = {"format": FORMAT_VERSION, "layout": _LAYOUT, "count": self._main.n,
                "banks": self._main.banks, "delta_labels": [[i, *v] for i, v in self._dlabels.items()]}
        tmp = d / ".meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, d / "meta.json")

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> PdqIndex:
        """Open a saved index. With ``mmap`` the big arrays stay in the page cache and load
        takes milliseconds; without it they are read into memory now."""
        d = Path(directory)
        meta = json.loads((d / "meta.json").read_text())
        if meta["format"] != FORMAT_VERSION or [tuple(x) for x in meta["layout"]] != list(_LAYOUT):
            raise ValueError(f"{d} holds an index of another format")

        def arr(name: str, mapped: bool = mmap) -> np.ndarray:
            return np.load(d / f"{name}.npy", mmap_mode="r" if mapped else None, allow_pickle=False)

        index = cls()
        index._main = _Main({n: arr(n) for n in _Main.FILES if (d / f"{n}.npy").exists()},
                                        meta["banks"])
        index._tomb = arr("tombstones", mapped=False)  # small and written by remove()
        index._dead = int(index._tomb.sum())
        index._dh, index._di = arr("delta_hashes", False), arr("delta_ids", False)
        index._dn = len(index._di)
        index._dlabels = {int(i): (b, r) for i, b, r in meta["delta_labels"]}
        return index


class _Main:
    """The immutable, periodically rebuilt part: arrays only, so it can live in mmap."""

    FILES = ("hashes", "ids", "id_order", "offsets", "rows", "label_bank", "label_ref_offsets", "label_ref_blob")

    def __init__(self, a: dict[str, np.ndarray], banks: list[str]) -> None:
        self.hashes, self.ids, self.id_order = a["hashes"], a["ids"], a["id_order"]
        self.offsets, self.rows = a["offsets"], a["rows"]
        self.n = len(self.ids)
        self.banks = banks
        kbits = _bucket_bits(self.n)
        self._base = _offset_base(kbits)
        self._drop = np.array([b - k for (_, _, b), k in zip(_LAYOUT, kbits, strict=True)], dtype=np.uint64)
        self._coarse = any(self._drop)
        if len(self.offsets) != self._base[-1] or len(self.rows) != (_M - 1) * self.n:
            raise ValueError("index arrays do not fit together")
        self.has_labels = "label_bank" in a
        self._labels = {k: a[k] for k in ("label_bank", "label_ref_offsets", "label_ref_blob") if k in a}

    @classmethod
    def empty(cls) -> _Main:
        return cls.build(np.zeros((0, 4), dtype="<u8"), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), None)

    @classmethod
    def build(cls, words: np.ndarray, ids: np.ndarray, keep: np.ndarray,
              labels: Sequence[tuple[str, str]] | None) -> _Main:
        if not (len(words) == len(ids) == len(keep)) or (labels is not None and len(labels) != len(ids)):
            raise ValueError("hashes, ids, quality and labels must have the same length")
        kept = np.flatnonzero(keep)
        n = len(kept)
        if n >= 2**32 - 1:
            raise ValueError("one index holds fewer than 2**32 hashes")
        # Rows sorted by substring 0: its buckets are then row ranges and need no table.
        sel = kept[np.argsort(_keys(words[kept], 0), kind="stable")]
        hashes = np.ascontiguousarray(words[sel])
        a: dict[str, np.ndarray] = {"hashes": hashes, "ids": ids[sel]}
        a["id_order"] = np.argsort(a["ids"], kind="stable").astype(np.uint32)
        kbits = _bucket_bits(n)
        base = _offset_base(kbits)
        offsets = np.zeros(int(base[-1]), dtype=np.uint32)
        rows = np.zeros(((_M - 1) * n,), dtype=np.uint32)
        for t, (_, _, b) in enumerate(_LAYOUT):
            keys = _keys(hashes, t) >> np.uint32(b - kbits[t])
            counts = np.bincount(keys, minlength=1 << kbits[t])
            offsets[base[t] + 1:base[t + 1]] = np.cumsum(counts)
            if t:
                rows[(t - 1) * n:t * n] = np.argsort(keys, kind="stable")
        a["offsets"], a["rows"] = offsets, rows
        banks: list[str] = []
        if labels is not None:
            banks = sorted({str(labels[i][0]) for i in sel.tolist()})
            code = {b: i for i, b in enumerate(banks)}
            refs = [str(labels[i][1]).encode() for i in sel.tolist()]
            a["label_bank"] = np.array([code[str(labels[i][0])] for i in sel.tolist()], dtype=np.uint32)
            a["label_ref_offsets"] = np.concatenate([[0], np.cumsum([len(r) for r in refs])]).astype(np.int64)
            a["label_ref_blob"] = np.frombuffer(b"".join(refs), dtype=np.uint8)
        return cls(a, banks)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"hashes": self.hashes, "ids": self.ids, "id_order": self.id_order, "offsets": self.offsets,
                "rows": self.rows, **self._labels}

    def rows_of(self, entry_id: int) -> np.ndarray:
        lo, hi = (int(np.searchsorted(self.ids, entry_id, side=s, sorter=self.id_order)) for s in ("left", "right"))
        return np.sort(np.asarray(self.id_order[lo:hi], dtype=np.int64))

    def label_at(self, row: int) -> tuple[str, str]:
        if not self.has_labels:
            return ("", "")
        lb = self._labels
        lo, hi = int(lb["label_ref_offsets"][row]), int(lb["label_ref_offsets"][row + 1])
        return self.banks[int(lb["label_bank"][row])], bytes(lb["label_ref_blob"][lo:hi]).decode()

    def search(self, q: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows within ``radius`` of ``q`` and their distances (tombstones not applied)."""
        if self.n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        sub = radius // _M
        if sub > _MAX_SUB_RADIUS:
            d = np.concatenate([_distances(self.hashes[s:s + (1 << 20)], q) for s in range(0, self.n, 1 << 20)])
            rows = np.flatnonzero(d <= radius)
            return rows, d[rows]
        table, flip = _probe_plan(sub)
        keys = (q[_WORD] >> _SHIFT) & _MASK
        at = self._base[table] + ((keys[table] ^ flip) >> self._drop[table]).astype(np.int64)
        if self._coarse:
            at = np.unique(at)  # probes that differ only in dropped bits share a bucket
            table = np.searchsorted(self._base, at, side="right") - 1
        p0 = int(np.searchsorted(at, self._base[1])) if not self._coarse else int(np.count_nonzero(table == 0))
        starts = self.offsets[at].astype(np.int64)
        lengths = self.offsets[at + 1].astype(np.int64) - starts
        rowbase = (table[p0:].astype(np.int64) - 1) * self.n
        cand = np.concatenate([
            _expand(starts[:p0], lengths[:p0]),  # table 0: rows are stored in its bucket order
            self.rows[_expand(starts[p0:] + rowbase, lengths[p0:])],
        ])
        d = _distances(self.hashes[cand], q)
        ok = d <= radius
        rows, first = np.unique(cand[ok], return_index=True)  # a near hash hits several substrings
        return rows, d[ok][first]


def _offset_base(kbits: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([(1 << k) + 1 for k in kbits])]).astype(np.int64)
