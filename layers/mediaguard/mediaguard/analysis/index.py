"""A PDQ index for millions of hashes on one Lambda: multi-index hashing over flat arrays.

Why this shape (numbers from ``bench/index.py``; targets: 10M uniform hashes p50 <= 1 ms,
1M skewed hashes p95 <= 3 ms, at radius 31 on one core, <= 1 GB resident):

- **Multi-index hashing** (Norouzi et al., as in Meta's PDQ MIH). The 256 bits are cut
  into 12 disjoint substrings: each uint64 word gives one of 22 bits and two of 21 bits.
  Each substring ``t`` is probed to its own radius ``s_t`` with ``sum(s_t + 1) = r + 1``
  (the generalised pigeonhole, :func:`_sub_radii`): at r = 31 that is 8 substrings at 2
  bits and 4 at 1 instead of 12 at 2, chosen per query from the bucket sizes it meets.
  The entries of the probed buckets are verified with a vectorised popcount.
  12 substrings rather than 16 x 16 bits: far fewer candidates at 10M random hashes, and
  11 row tables instead of 16 (the 16 x 16 layout needs ~0.96 GB).
- **Skewed banks**: when biased bits would make some substrings lopsided, the build
  permutes the 256 bits so each substring carries a similar share of the entropy; the
  main index stores permuted hashes and permutes each query (distance is unchanged).
- **Flat arrays**, one ``.npy`` each, loaded with ``mmap_mode="r"``: load is a few
  ``open``/``mmap`` calls plus one cumsum, and the page cache holds the data.
  Rows are stored sorted by substring 0, so table 0 needs no row array.
  At 10M: hashes 320 MB + rows 440 MB + bucket offsets 134 MB are touched by queries;
  on disk the offsets are bucket sizes (25 MB of uint8) and ``id_order`` is not stored.
  ids (on disk beside them) are read only for hits. Hashes and ids alone already answer
  exactly (a linear scan), so a container can match before the tables have arrived.
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
from math import comb
from pathlib import Path

import numpy as np

from mediaguard.signals import PdqSignal

# 2: bucket sizes instead of offsets, id_order derived, optional bit permutation (meta "perm")
# and per-substring bucket loads (meta "load").
FORMAT_VERSION = 2
_READABLE = (1, 2)

# (word, shift, bits) of each substring: per 64-bit word one 22-bit and two 21-bit pieces.
_LAYOUT = tuple((w, s, b) for w in range(4) for s, b in ((0, 22), (22, 21), (43, 21)))
_M = len(_LAYOUT)
_WORD = np.array([w for w, _, _ in _LAYOUT], dtype=np.intp)
_SHIFT = np.array([s for _, s, _ in _LAYOUT], dtype=np.uint64)
_MASK = np.array([(1 << b) - 1 for _, _, b in _LAYOUT], dtype=np.uint64)
# Above this per-substring radius the probes outnumber what a linear scan reads.
_MAX_SUB_RADIUS = 3
_SPLIT_CACHE = 512

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
    # Column by column: ``(words ^ q).sum(axis=1)`` broadcasts a length-4 inner loop and
    # reduces over it, about 4x slower on the ~10k candidate rows of a query. uint16 holds
    # 256 (the distance of a complement), which uint8 would wrap to 0.
    d = np.add(np.bitwise_count(words[:, 0] ^ q[0]), np.bitwise_count(words[:, 1] ^ q[1]), dtype=np.uint16)
    d += np.bitwise_count(words[:, 2] ^ q[2])
    d += np.bitwise_count(words[:, 3] ^ q[3])
    return d


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


def _sub_radii(radius: int, load: Sequence[float]) -> tuple[int, ...]:
    """Per-substring search radii ``s_t`` with ``sum(s_t + 1) == radius + 1``.

    Pigeonhole, generalised (Norouzi et al. 2014, sec. 3): if every substring differed by
    more than its ``s_t`` bits, the whole hash would differ by at least ``sum(s_t + 1)``
    > radius. So one substring is within its own ``s_t`` and probing each to ``s_t`` is
    exact; ``s_t = -1`` means "not probed". The radii need not be equal: at r = 31 the
    uniform 12 x 2 wastes 4 of the 36 units, and with 8 x 2 + 4 x 1 the probes drop from
    2,872 to about 2,000. Units go greedily to the substring whose next ring of probes
    costs least, ``C(bits, s + 1) * (load + 1)``, ``load`` being the expected bucket size a
    query meets (sum of squared bucket sizes / n, measured at build): a substring of 22
    bits (half-full buckets) or one whose bits are less skewed takes the larger radius.
    The marginal costs grow with ``s``, so the greedy choice is the cheapest split.
    """
    sub = [-1] * _M
    for _ in range(radius + 1):
        t = min(range(_M), key=lambda i: (comb(_LAYOUT[i][2], sub[i] + 1) * (load[i] + 1.0), i))
        sub[t] += 1
    return tuple(sub)


_RINGS = np.array([[comb(b, k) for k in range(_MAX_SUB_RADIUS + 1)] for _, _, b in _LAYOUT], dtype=np.float64)


def _probe_plan(sub: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """For all probed substrings at once (in table order): each probe's substring and flip mask."""
    table, flip = [], []
    for t, (_, _, b) in enumerate(_LAYOUT):
        if sub[t] >= 0:
            f = _flips(b, sub[t])
            table.append(np.full(len(f), t, dtype=np.intp))
            flip.append(f)
    return np.concatenate(table), np.concatenate(flip)


# --- bit permutation (skewed banks) ---------------------------------------------------
# Multi-index hashing assumes each substring spreads the bank over its buckets. Biased bits
# (a bit that is 1 in 90 % of hashes) break that: a substring made of them sends most
# hashes to a few buckets and every query into those buckets. The build measures each
# bit's collision entropy and, when some substring is far below its width, permutes the
# 256 bits so each substring gets a similar share of the entropy (longest-processing-time
# greedy). Hamming distance is invariant under a bit permutation, so the main index
# stores permuted hashes and permutes each query the same way; the delta stays as given.

_PERMUTE_BELOW = 0.9  # leave the layout alone while every substring keeps 90 % of its bits' entropy
_SAMPLE = 200_000
_BYTE_ROW = np.arange(32)


def _bit_lut(dest_of_src: np.ndarray) -> np.ndarray:
    """``lut[j, v]``: the uint64 [4] words that source byte ``j`` of value ``v`` contributes
    when source bit ``s`` moves to bit ``dest_of_src[s]`` (bit ``s`` = bit ``s % 64`` of
    word ``s // 64``, little-endian)."""
    lut = np.zeros((32, 256, 4), dtype=np.uint64)
    values = np.arange(256)
    for src in range(256):
        dest = int(dest_of_src[src])
        on = (values >> (src % 8)) & 1 == 1
        lut[src // 8, on, dest // 64] |= np.uint64(1 << (dest % 64))
    return lut


def _apply_lut(words: np.ndarray, lut: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    out = np.zeros_like(words)
    for start in range(0, len(words), chunk):
        part = np.ascontiguousarray(words[start:start + chunk]).view(np.uint8)
        acc = out[start:start + chunk]
        for j in range(32):
            acc |= np.take(lut[j], part[:, j], axis=0)
    return out


def _collision_pairs(words: np.ndarray) -> int:
    """Pairs of hashes that share a bucket, summed over the 12 full-width substrings."""
    total = 0
    for t in range(_M):
        c = np.bincount(_keys(words, t)).astype(np.int64)
        total += int((c * (c - 1)).sum())
    return total


def _choose_permutation(sample: np.ndarray) -> np.ndarray | None:
    """From a sample of the bank, a bit order (``perm[p]`` = source bit stored at position ``p``) that balances the
    substrings' entropy, or None when the given order is already balanced or not better."""
    if len(sample) < 1000:
        return None
    sample = np.ascontiguousarray(sample)
    p = np.unpackbits(sample.view(np.uint8), axis=1, bitorder="little").mean(axis=0)
    h = -np.log2(np.maximum(p * p + (1 - p) * (1 - p), 1e-12))  # Renyi-2 entropy per bit
    if min(h[64 * w + s:64 * w + s + b].sum() / b for w, s, b in _LAYOUT) >= _PERMUTE_BELOW:
        return None
    groups: list[list[int]] = [[] for _ in range(_M)]
    fill = [0.0] * _M
    for bit in np.argsort(-h, kind="stable").tolist():
        t = min((i for i in range(_M) if len(groups[i]) < _LAYOUT[i][2]), key=lambda i: (fill[i], i))
        groups[t].append(bit)
        fill[t] += float(h[bit])
    perm = np.zeros(256, dtype=np.int64)
    for t, (w, s, _) in enumerate(_LAYOUT):
        perm[64 * w + s:64 * w + s + len(groups[t])] = groups[t]
    permuted = _apply_lut(sample, _bit_lut(np.argsort(perm)))
    return perm if _collision_pairs(permuted) < _collision_pairs(sample) else None


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
        words = np.concatenate([m.words()[live], self._dh[:self._dn]])
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
                "banks": self._main.banks, "delta_labels": [[i, *v] for i, v in self._dlabels.items()],
                "perm": None if self._main.perm is None else self._main.perm.tolist(),
                "load": list(self._main.load)}
        tmp = d / ".meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, d / "meta.json")

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> PdqIndex:
        """Open a saved index. With ``mmap`` the big arrays stay in the page cache and load
        takes milliseconds; without it they are read into memory now."""
        d = Path(directory)
        meta = json.loads((d / "meta.json").read_text())
        if meta["format"] not in _READABLE or [tuple(x) for x in meta["layout"]] != list(_LAYOUT):
            raise ValueError(f"{d} holds an index of another format")

        def arr(name: str, mapped: bool = mmap) -> np.ndarray:
            return np.load(d / f"{name}.npy", mmap_mode="r" if mapped else None, allow_pickle=False)

        index = cls()
        # Format 1 (offsets and id_order stored, no permutation) is still read, so a
        # similarity container keeps matching with the last published build until the
        # next scheduled build replaces it.
        names = _Main.FILES + (("offsets", "id_order") if meta["format"] == 1 else ())
        index._main = _Main({n: arr(n) for n in names if (d / f"{n}.npy").exists()}, meta["banks"],
                            meta.get("perm"), meta.get("load"))
        index._tomb = arr("tombstones", mapped=False)  # small and written by remove()
        index._dead = int(index._tomb.sum())
        index._dh, index._di = arr("delta_hashes", False), arr("delta_ids", False)
        index._dn = len(index._di)
        index._dlabels = {int(i): (b, r) for i, b, r in meta["delta_labels"]}
        return index


class _Main:
    """The immutable, periodically rebuilt part: arrays only, so it can live in mmap.

    On disk (format 2) only what cannot be derived cheaply is stored: the bucket sizes
    (``counts``, uint8 at millions of hashes) instead of their running sums, which ``load``
    rebuilds with one cumsum; ``id_order`` (for ``remove``/``label``) is sorted on first
    use. Without ``counts``/``rows`` (a download still under way) the part answers by an
    exact linear scan of ``hashes``.
    """

    FILES = ("hashes", "ids", "counts", "rows", "label_bank", "label_ref_offsets", "label_ref_blob")

    def __init__(self, a: dict[str, np.ndarray], banks: list[str], perm: np.ndarray | None = None,
                 load: Sequence[float] | None = None) -> None:
        self.hashes, self.ids = a["hashes"], a["ids"]
        self.n = len(self.ids)
        self.banks = banks
        kbits = _bucket_bits(self.n)
        self._base = _offset_base(kbits)
        self._drop = np.array([b - k for (_, _, b), k in zip(_LAYOUT, kbits, strict=True)], dtype=np.uint64)
        self._coarse = any(self._drop)
        self.has_tables = "rows" in a and ("offsets" in a or "counts" in a)
        self.offsets = a.get("offsets")
        if self.has_tables and self.offsets is None:
            self.offsets = _offsets_from_counts(a["counts"], self._base)
        self.rows = a.get("rows")
        if self.has_tables and (len(self.offsets) != self._base[-1] or len(self.rows) != (_M - 1) * self.n):
            raise ValueError("index arrays do not fit together")
        self._id_order = a.get("id_order")
        self.perm = None if perm is None else np.asarray(perm, dtype=np.int64)
        self._lut = None if self.perm is None else _bit_lut(np.argsort(self.perm))
        if load is None and self.has_tables:
            load = [float((c.astype(np.int64) ** 2).sum()) / max(1, self.n) for c in self._bucket_counts()]
        self.load = tuple(load) if load is not None else (0.0,) * _M
        self._load = np.array(self.load, dtype=np.float64)
        self._plans: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        self._split_plans: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        # Plain ndarray views of the (possibly memory-mapped) arrays: np.take and fancy
        # indexing on an np.memmap go through the subclass machinery on every call.
        self._h = np.asarray(self.hashes)
        self._rows = None if self.rows is None else np.asarray(self.rows)
        self._off = None if self.offsets is None else np.asarray(self.offsets)
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
        perm = _choose_permutation(words[kept[::max(1, n // _SAMPLE)]])
        stored = words if perm is None else _apply_lut(words, _bit_lut(np.argsort(perm)))
        # Rows sorted by substring 0: its buckets are then row ranges and need no table.
        sel = kept[np.argsort(_keys(stored[kept], 0), kind="stable")]
        hashes = np.ascontiguousarray(stored[sel])
        a: dict[str, np.ndarray] = {"hashes": hashes, "ids": ids[sel]}
        kbits = _bucket_bits(n)
        counts, load = [], []
        rows = np.zeros(((_M - 1) * n,), dtype=np.uint32)
        for t, (_, _, b) in enumerate(_LAYOUT):
            keys = _keys(hashes, t) >> np.uint32(b - kbits[t])
            c = np.bincount(keys, minlength=1 << kbits[t])
            counts.append(c)
            load.append(float((c.astype(np.int64) ** 2).sum()) / max(1, n))
            if t:
                rows[(t - 1) * n:t * n] = np.argsort(keys, kind="stable")
        a["counts"] = _narrow(np.concatenate(counts))
        a["rows"] = rows
        banks: list[str] = []
        if labels is not None:
            banks = sorted({str(labels[i][0]) for i in sel.tolist()})
            code = {b: i for i, b in enumerate(banks)}
            refs = [str(labels[i][1]).encode() for i in sel.tolist()]
            a["label_bank"] = np.array([code[str(labels[i][0])] for i in sel.tolist()], dtype=np.uint32)
            a["label_ref_offsets"] = np.concatenate([[0], np.cumsum([len(r) for r in refs])]).astype(np.int64)
            a["label_ref_blob"] = np.frombuffer(b"".join(refs), dtype=np.uint8)
        main = cls(a, banks, perm, load)
        main._counts = a["counts"]
        return main

    def _bucket_counts(self) -> list[np.ndarray]:
        return [np.diff(np.asarray(self.offsets[self._base[t]:self._base[t + 1]])) for t in range(_M)]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"hashes": self.hashes, "ids": self.ids, **self._labels}
        if self.has_tables:
            counts = getattr(self, "_counts", None)
            if counts is None:
                counts = _narrow(np.concatenate(self._bucket_counts()))
            out |= {"counts": counts, "rows": self.rows}
        return out

    def words(self) -> np.ndarray:
        """The stored hashes in their original bit order (for a rebuild)."""
        h = np.asarray(self.hashes)
        return h if self.perm is None else _apply_lut(h, _bit_lut(self.perm))

    def permute(self, q: np.ndarray) -> np.ndarray:
        if self._lut is None:
            return q
        return np.bitwise_or.reduce(self._lut[_BYTE_ROW, q.view(np.uint8)], axis=0)

    @property
    def id_order(self) -> np.ndarray:
        if self._id_order is None:  # derived, not stored: only remove() and label() need it
            self._id_order = np.argsort(np.asarray(self.ids), kind="stable").astype(np.uint32)
        return self._id_order

    def rows_of(self, entry_id: int) -> np.ndarray:
        lo, hi = (int(np.searchsorted(self.ids, entry_id, side=s, sorter=self.id_order)) for s in ("left", "right"))
        return np.sort(np.asarray(self.id_order[lo:hi], dtype=np.int64))

    def label_at(self, row: int) -> tuple[str, str]:
        if not self.has_labels:
            return ("", "")
        lb = self._labels
        lo, hi = int(lb["label_ref_offsets"][row]), int(lb["label_ref_offsets"][row + 1])
        return self.banks[int(lb["label_bank"][row])], bytes(lb["label_ref_blob"][lo:hi]).decode()

    def _plan(self, radius: int) -> tuple[np.ndarray, np.ndarray] | None:
        if radius not in self._plans:
            sub = _sub_radii(radius, self.load)
            self._plans[radius] = None if max(sub) > _MAX_SUB_RADIUS else _probe_plan(sub)
        return self._plans[radius]

    def _query_plan(self, keys: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Sub-radii chosen for this query: the build-time loads say how full buckets are on
        average; the query's own 12 buckets say how full they are where it lands (in a
        skewed bank a query in a dense region meets far more than the average). The r + 1
        cheapest rings of probes (cost = probes in the ring x expected bucket size) are the
        smallest r + 1 entries of a 12 x (max + 1) table whose rows increase, so one
        argpartition gives the same split as the greedy in :func:`_sub_radii`."""
        at0 = self._base[:-1] + keys.astype(np.int64)
        own = np.take(self._off, at0 + 1).astype(np.float64) - np.take(self._off, at0)
        cost = (_RINGS * (0.5 * (own + self._load) + 1.0)[:, None]).ravel()
        pick = np.argpartition(cost, radius)[:radius + 1] if radius + 1 < len(cost) else np.arange(len(cost))
        sub = tuple((np.bincount(pick // (_MAX_SUB_RADIUS + 1), minlength=_M) - 1).tolist())
        plan = self._split_plans.get(sub)
        if plan is None:  # a few hundred distinct splits occur (351 in 600 skewed queries)
            if len(self._split_plans) >= _SPLIT_CACHE:
                self._split_plans.clear()  # ~32 KB each: bounded at ~16 MB
            plan = self._split_plans[sub] = _probe_plan(sub)
        return plan

    def search(self, q: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows within ``radius`` of ``q`` and their distances (tombstones not applied)."""
        if self.n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        q = self.permute(q)
        plan = self._plan(radius) if self.has_tables else None
        if plan is None:
            d = np.concatenate([_distances(self._h[s:s + (1 << 20)], q) for s in range(0, self.n, 1 << 20)])
            rows = np.flatnonzero(d <= radius)
            return rows, d[rows]
        table, flip = plan
        keys = (q[_WORD] >> _SHIFT) & _MASK
        if not self._coarse:
            table, flip = self._query_plan(keys, radius)
        at = self._base[table] + ((keys[table] ^ flip) >> self._drop[table]).astype(np.int64)
        if self._coarse:
            at = np.unique(at)  # probes that differ only in dropped bits share a bucket
            table = np.searchsorted(self._base, at, side="right") - 1
        p0 = int(np.searchsorted(at, self._base[1]))  # table 0's probes come first
        starts = np.take(self._off, at).astype(np.int64)
        lengths = np.take(self._off, at + 1).astype(np.int64) - starts
        rowbase = (table[p0:].astype(np.int64) - 1) * self.n
        cand = np.concatenate([
            _expand(starts[:p0], lengths[:p0]),  # table 0: rows are stored in its bucket order
            np.take(self._rows, _expand(starts[p0:] + rowbase, lengths[p0:])),
        ])
        # np.take, not fancy indexing: on a 2-D array it copies each 32-byte row as one
        # item, about 4x faster on ~10k random rows (the gather is most of a query).
        d = _distances(np.take(self._h, cand, axis=0), q)
        ok = np.flatnonzero(d <= radius)
        if len(ok) < 2:
            return cand[ok], d[ok]
        rows, first = np.unique(cand[ok], return_index=True)  # a near hash hits several substrings
        return rows, d[ok][first]


def _narrow(counts: np.ndarray) -> np.ndarray:
    """Bucket sizes in the smallest unsigned type that holds them (uint8 for a uniform 10M bank)."""
    top = int(counts.max(initial=0))
    return counts.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)


def _offset_base(kbits: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([(1 << k) + 1 for k in kbits])]).astype(np.int64)


def _offsets_from_counts(counts: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The bucket start offsets (one table after another, each ``2**bits + 1`` long) from
    the stored bucket sizes: one running sum per table, ~30 ms at 10M hashes on a quiet core."""
    offsets = np.zeros(int(base[-1]), dtype=np.uint32)
    at = 0
    for t in range(_M):
        size = int(base[t + 1] - base[t]) - 1
        # add.accumulate rather than cumsum: ~2.5x faster from uint8 into uint32 here
        np.add.accumulate(counts[at:at + size], dtype=np.uint32, out=offsets[base[t] + 1:base[t + 1]])
        at += size
    if at != len(counts):
        raise ValueError("index arrays do not fit together")
    return offsets
