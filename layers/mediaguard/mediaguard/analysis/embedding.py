"""Exact cosine search over L2-normalised embeddings, in numpy: the index of
``signals.EmbeddingSignal`` (whose class attributes hold the threshold and dtypes).

Why exact and why float32 in memory (``python -m bench.embedding``: one core, 1024-d
rows, p50 of 50 queries on a shared 2-core x86_64):

=========  ========  ===========  =====================================
rows       MB        query p50    float16 rows converted per query, p50
=========  ========  ===========  =====================================
10,000     41        4.3 ms       33 ms
100,000    410       34 ms        317 ms
1,000,000  4,096     329 ms       -
=========  ========  ===========  =====================================

- A query is one matrix-vector product over every row: BLAS streams the matrix once, so
  the time grows with its bytes. Exact search meets ~5 ms p50 up to about 10k rows; a
  reference banked with three views (``neardup.reference_views``) is three rows, so
  that is ~3,000 references. A video's frames are cheaper searched together, in one
  matrix-matrix product: at 100k rows, 64 frames took 249 ms against 30 ms for one.
- float16 halves the bytes, but numpy has no float16 BLAS: converting the rows per query
  is 8-9x slower than float32. So float16 is a storage format only
  (``save(dtype=np.float16)`` halves a download), converted once at ``load``; float32
  files are memory-mapped (load in milliseconds, pages read on first use).
- Past ~10k rows an approximate index (faiss HNSW or IVF) or a learned projection to
  fewer dimensions is the next step; neither is added until a bank that size exists.

Several rows may share an id (the views of one reference): a query returns each id
once, with its best cosine.

    >>> idx = EmbeddingIndex.build(np.eye(3, dtype=np.float32), ids=[10, 11, 12])
    >>> idx.query(np.array([0.8, 0.6, 0.0]), min_cosine=0.5)
    [(10, 0.8), (11, 0.6)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mediaguard.signals import EmbeddingSignal

FORMAT_VERSION = 1


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, 2-D); all-zero rows stay zero."""
    v = np.atleast_2d(np.asarray(vectors, dtype=EmbeddingSignal.dtype))
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


class EmbeddingIndex:
    """L2-normalised float32 rows keyed by int64 ids, searched exactly by cosine.

    ``build`` or ``load`` the main matrix (``load`` memory-maps float32 files), ``add``
    rows between rebuilds (an in-memory delta, scanned the same way) and ``remove`` ids
    (rows tombstoned); ``save`` writes the live rows compacted.

        >>> idx = EmbeddingIndex.build([[1, 0], [0, 1]], ids=[1, 2])
        >>> idx.add([[1, 1]], ids=[3])
        1
        >>> idx.remove(1), [i for i, _ in idx.query([1, 0.1], min_cosine=0.5)]
        (1, [3])
    """

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = dim
        self._main = np.zeros((0, dim), dtype=np.float32)
        self._main_ids = np.zeros(0, dtype=np.int64)
        self._tomb = np.zeros(0, dtype=bool)
        self._delta = np.zeros((0, dim), dtype=np.float32)  # capacity grows by doubling
        self._delta_ids = np.zeros(0, dtype=np.int64)
        self._dn = 0

    # --- building -------------------------------------------------------------------

    @classmethod
    def build(cls, vectors, ids: Sequence[int] | np.ndarray) -> EmbeddingIndex:
        """A fresh index over ``vectors`` (N, D), normalised here, one int id per row."""
        v = normalise(vectors)
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) != len(v):
            raise ValueError("one id per row")
        index = cls(v.shape[1])
        index._main, index._main_ids = np.ascontiguousarray(v), ids.copy()
        index._tomb = np.zeros(len(ids), dtype=bool)
        return index

    def add(self, vectors, ids: Sequence[int] | np.ndarray) -> int:
        """Make rows searchable now (normalised here); returns how many were added."""
        v = normalise(vectors)
        ids = np.asarray(ids, dtype=np.int64)
        if v.shape[1] != self.dim:
            raise ValueError(f"vectors have {v.shape[1]} dimensions, the index {self.dim}")
        if len(ids) != len(v):
            raise ValueError("one id per row")
        need = self._dn + len(v)
        if need > len(self._delta_ids):
            cap = max(64, need, 2 * len(self._delta_ids))
            delta, delta_ids = np.zeros((cap, self.dim), dtype=np.float32), np.zeros(cap, dtype=np.int64)
            delta[:self._dn], delta_ids[:self._dn] = self._delta[:self._dn], self._delta_ids[:self._dn]
            self._delta, self._delta_ids = delta, delta_ids
        self._delta[self._dn:need], self._delta_ids[self._dn:need] = v, ids
        self._dn = need
        return len(v)

    def remove(self, entry_id: int) -> int:
        """Withdraw every row with this id; returns how many rows."""
        main_rows = np.flatnonzero((self._main_ids == entry_id) & ~self._tomb)
        self._tomb[main_rows] = True
        keep = np.flatnonzero(self._delta_ids[:self._dn] != entry_id)
        dropped = self._dn - len(keep)
        if dropped:
            self._delta[:len(keep)], self._delta_ids[:len(keep)] = self._delta[keep], self._delta_ids[keep]
            self._dn = len(keep)
        return len(main_rows) + dropped

    # --- searching ------------------------------------------------------------------

    def query(self, vector, min_cosine: float, k: int = 10) -> list[tuple[int, float]]:
        """Up to ``k`` ``(id, cosine)`` with cosine >= ``min_cosine``, best first (ties by id).

        ``vector`` is normalised here. Each id appears once, with its best row.
        """
        q = normalise(vector)
        if q.shape != (1, self.dim):
            raise ValueError(f"a query is one vector of {self.dim} dimensions")
        q = q[0]
        ids, sims = [], []
        if len(self._main_ids):
            s = self._main @ q
            hit = np.flatnonzero(s >= min_cosine)
            hit = hit[~self._tomb[hit]]
            ids.append(self._main_ids[hit])
            sims.append(s[hit])
        if self._dn:
            s = self._delta[:self._dn] @ q
            hit = np.flatnonzero(s >= min_cosine)
            ids.append(self._delta_ids[hit])
            sims.append(s[hit])
        if not ids:
            return []
        all_ids, all_sims = np.concatenate(ids), np.concatenate(sims)
        if not len(all_ids):
            return []
        # Best row per id: sort by (id, -cosine) and keep each id's first row.
        order = np.lexsort((-all_sims, all_ids))
        all_ids, all_sims = all_ids[order], all_sims[order]
        first = np.concatenate([[True], all_ids[1:] != all_ids[:-1]])
        all_ids, all_sims = all_ids[first], all_sims[first]
        best = np.lexsort((all_ids, -all_sims))[:k]
        return [(int(i), round(float(c), 6)) for i, c in zip(all_ids[best], all_sims[best], strict=True)]

    def __len__(self) -> int:
        """Live rows."""
        return int(len(self._main_ids) - self._tomb.sum()) + self._dn

    # --- storage --------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, dtype=np.float32) -> None:
        """Write the live rows as ``vectors.npy`` + ``ids.npy``, then ``meta.json`` last.

        ``dtype=np.float16`` halves the file (cosines move by < 1e-3) but ``load`` then
        converts it in memory instead of mapping it. Publish to a fresh directory: files
        are replaced one by one, and a process may have the old ones mapped.
        """
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError("embeddings are saved as float32 or float16")
        live = ~self._tomb
        vectors = np.concatenate([np.asarray(self._main)[live], self._delta[:self._dn]]).astype(dtype)
        ids = np.concatenate([self._main_ids[live], self._delta_ids[:self._dn]])
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name, arr in (("vectors", vectors), ("ids", ids)):
            tmp = d / f".{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)
            os.replace(tmp, d / f"{name}.npy")
        tmp = d / ".meta.json.tmp"
        tmp.write_text(json.dumps({"format": FORMAT_VERSION, "dim": self.dim, "count": len(ids),
                                   "dtype": np.dtype(dtype).name}))
        os.replace(tmp, d / "meta.json")

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> EmbeddingIndex:
        """Open a saved index; float32 rows are memory-mapped when ``mmap`` is true."""
        d = Path(directory)
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{d} holds an embedding index of another format")
        stored = np.load(d / "vectors.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        if stored.ndim != 2 or stored.shape[1] != meta["dim"]:
            raise ValueError(f"{d}: vectors do not have {meta['dim']} columns")
        index = cls(int(meta["dim"]))
        index._main = stored if stored.dtype == np.float32 else np.ascontiguousarray(stored, dtype=np.float32)
        index._main_ids = np.load(d / "ids.npy", allow_pickle=False)
        if len(index._main_ids) != len(index._main):
            raise ValueError(f"{d}: ids and vectors differ in length")
        index._tomb = np.zeros(len(index._main_ids), dtype=bool)
        return index
