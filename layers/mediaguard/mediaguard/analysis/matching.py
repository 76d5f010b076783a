"""Bank matching at scale: a periodically built index plus a live delta.

The index build (a scheduled Lambda) writes every active PDQ and embedding entry
to flat arrays in the media bucket (``index/<stamp>/``) and publishes
``index/manifest.json`` last. The similarity stage maps the newest build from
local disk (``PdqIndex.load`` with mmap) and, at most every ``DELTA_SECONDS``,
asks the banks for what changed since that build: entries added since are
searched linearly beside the index, entries withdrawn or deleted since are
dropped from its answers. A new bank entry is therefore matchable within
``DELTA_SECONDS`` (plus DynamoDB's GSI propagation, typically under a second)
instead of after the next rebuild, and a withdrawal takes effect just as fast.

Matching rules (the thresholds live on the kinds in ``mediaguard.signals``): PDQ
distance <= the bank's threshold (``PdqSignal.match_threshold`` by default), hashes
below ``PdqSignal.min_quality`` ignored on both sides; the eight rotations/mirrors of
the query are searched too (``pdq_dihedral``); a video matches a banked video (vPDQ)
when at least ``VpdqSignal.match_threshold`` of the query's frames match the banked
video's frames and vice versa; embeddings match at cosine >= the bank's threshold
(``EmbeddingSignal.match_threshold`` unless the settings or the bank say otherwise), and
CLIP embeddings, a second cosine kind beside them, at ``ClipSignal.match_threshold`` (a
bank's ``embedding_threshold`` is a cosine of open_nsfw's space and does not apply);
an audio track matches a banked clip when, at the best alignment that sub-fingerprint
voting proposes, at least ``AudioSignal.match_threshold`` of the aligned Chromaprint
words are within ``AudioSignal.bit_threshold`` bits (``analysis.audio_index``).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mediaguard.analysis.audio_index import AudioIndex
from mediaguard.analysis.index import PdqIndex
from mediaguard.models import Match
from mediaguard.signals import AudioSignal, ClipSignal, EmbeddingSignal, PdqSignal, VpdqSignal

INDEX_PREFIX = "index/"
MANIFEST_KEY = f"{INDEX_PREFIX}manifest.json"
# How stale the delta may be. The issue asks for new entries matchable within 60 s;
# 30 s leaves room for GSI propagation and a Lambda that was busy when the entry landed.
DELTA_SECONDS = 30.0
# The kinds compared by cosine, each searched in its own matrix (their spaces differ).
COSINE_SIGNALS = (EmbeddingSignal.name, ClipSignal.name)


@dataclass(frozen=True)
class BankInfo:
    name: str
    kind: str  # block | flag | allow
    action: str | None = None
    pdq_threshold: int = PdqSignal.match_threshold
    embedding_threshold: float | None = None  # None: the system default


@dataclass(frozen=True)
class IndexEntry:
    """One bank entry as the matcher sees it."""

    bank: str
    ref: str
    signal: str  # a matched kind of ``signals.REGISTRY`` that banks store: "pdq" | "embedding" | "clip" | "audio"
    value: str | np.ndarray | None  # hex PDQ, a float vector, or AudioSignal's string; None once withdrawn
    quality: int | None = None
    group: str | None = None  # a banked video: its frames share a group
    active: bool = True
    updated_at: float = 0.0  # epoch seconds


class BankReader(Protocol):
    """What matching needs from the bank store (adapters wrap DynamoDB or local files)."""

    def banks(self) -> list[BankInfo]: ...

    def active_entries(self) -> Iterable[IndexEntry]: ...

    def changed_since(self, since: float) -> list[IndexEntry]:
        """Every entry added, changed, withdrawn or deleted at or after ``since`` (epoch s)."""


# --- the stored form -------------------------------------------------------------


@dataclass
class BuiltIndex:
    """An index build in memory: the PDQ multi-index, one matrix per cosine kind
    (open_nsfw's ``emb``, CLIP's ``clip``) and the audio index."""

    built_at: float
    pdq: PdqIndex
    pdq_entries: list[tuple[str, str, str | None]]  # id -> (bank, ref, group)
    emb: np.ndarray  # (N, D) L2-normalised: float32 in memory, EmbeddingSignal.stored_dtype on disk
    emb_entries: list[tuple[str, str, str | None]]
    group_sizes: dict[tuple[str, str], int] = field(default_factory=dict)  # (bank, group) -> frames
    clip: np.ndarray = field(default_factory=lambda: _normalised([]))  # (M, 512), stored like ``emb``
    clip_entries: list[tuple[str, str, str | None]] = field(default_factory=list)
    audio: AudioIndex = field(default_factory=AudioIndex)
    audio_entries: list[tuple[str, str, str | None]] = field(default_factory=list)

    @classmethod
    def build(cls, entries: Iterable[IndexEntry], built_at: float) -> BuiltIndex:
        pdq_hashes, pdq_quality, pdq_entries = [], [], []
        vectors: dict[str, list[np.ndarray]] = {s: [] for s in COSINE_SIGNALS}
        labels: dict[str, list[tuple[str, str, str | None]]] = {s: [] for s in COSINE_SIGNALS}
        clips, audio_entries = [], []
        sizes: dict[tuple[str, str], int] = defaultdict(int)
        for e in entries:
            if not e.active or e.value is None:
                continue
            if e.signal == "pdq":
                pdq_hashes.append(e.value)
                pdq_quality.append(e.quality)
                pdq_entries.append((e.bank, e.ref, e.group))
                if e.group:
                    sizes[(e.bank, e.group)] += 1
            elif e.signal in vectors:
                vectors[e.signal].append(np.asarray(e.value, dtype=EmbeddingSignal.dtype))
                labels[e.signal].append((e.bank, e.ref, e.group))
            elif e.signal == "audio":
                clips.append(AudioSignal.words(str(e.value)))
                audio_entries.append((e.bank, e.ref, e.group))
        pdq = PdqIndex.build(pdq_hashes, ids=np.arange(len(pdq_hashes)), quality=pdq_quality) if pdq_hashes \
            else PdqIndex()
        return cls(built_at, pdq, pdq_entries, _normalised(vectors["embedding"]), labels["embedding"], dict(sizes),
                   clip=_normalised(vectors["clip"]), clip_entries=labels["clip"],
                   audio=AudioIndex.build(clips), audio_entries=audio_entries)

    def __post_init__(self) -> None:
        self.emb = np.asarray(self.emb, dtype=EmbeddingSignal.dtype)
        self.clip = np.asarray(self.clip, dtype=ClipSignal.dtype)

    def cosine_rows(self, signal: str) -> tuple[np.ndarray, list[tuple[str, str, str | None]]]:
        """The matrix and its (bank, ref, group) rows for one cosine kind."""
        return (self.clip, self.clip_entries) if signal == ClipSignal.name else (self.emb, self.emb_entries)

    def save(self, directory: Path) -> list[str]:
        """Write the build as flat files; returns their names (the manifest lists them)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.pdq.save(directory / "pdq")
        np.save(directory / "embeddings.npy", self.emb.astype(EmbeddingSignal.stored_dtype), allow_pickle=False)
        np.save(directory / "clip.npy", self.clip.astype(ClipSignal.stored_dtype), allow_pickle=False)
        self.audio.save(directory / "audio")
        (directory / "entries.json").write_text(json.dumps({
            "pdq": self.pdq_entries, "embedding": self.emb_entries, "clip": self.clip_entries,
            "audio": self.audio_entries,
            "groups": [[b, g, n] for (b, g), n in self.group_sizes.items()],
        }))
        return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())

    @classmethod
    def load(cls, directory: Path, built_at: float) -> BuiltIndex:
        entries = json.loads((directory / "entries.json").read_text())
        pdq = PdqIndex.load(directory / "pdq", mmap=True)
        # Stored as float16 (half the bytes to download); converted once here, not per query.
        emb = np.load(directory / "embeddings.npy", allow_pickle=False).astype(EmbeddingSignal.dtype)
        # A build published before CLIP entries existed has no clip.npy, and one published
        # before audio existed no audio directory and no "audio" list: each holds none.
        clip = np.load(directory / "clip.npy", allow_pickle=False).astype(ClipSignal.dtype) \
            if (directory / "clip.npy").exists() else _normalised([])
        return cls(built_at, pdq, [tuple(x) for x in entries["pdq"]], emb,
                   [tuple(x) for x in entries["embedding"]], {(b, g): n for b, g, n in entries["groups"]},
                   clip=clip, clip_entries=[tuple(x) for x in entries.get("clip", [])],
                   audio=AudioIndex.load(directory / "audio"),
                   audio_entries=[tuple(x) for x in entries.get("audio", [])])


def _normalised(vectors: list[np.ndarray]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, 0), dtype=EmbeddingSignal.dtype)
    m = np.stack(vectors).astype(EmbeddingSignal.dtype)
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return m


# --- queries ------------------------------------------------------------------------


@dataclass
class Query:
    """What one upload brings: its frames' PDQs (a still has one frame, with its eight
    dihedral variants) and one embedding per frame of each cosine kind."""

    frames: list[tuple[str, int]]  # (pdq hex, quality) per frame
    dihedral: list[str] = field(default_factory=list)  # stills: 8 variants, index 0 == the PDQ
    embeddings: np.ndarray | None = None  # (frames, D): open_nsfw
    is_video: bool = False
    clip: np.ndarray | None = None  # (frames, 512): the detect stage's CLIP
    audio: str | None = None  # the first audio track's fingerprint (AudioSignal's string form)


class Matcher:
    """The matching state of one process: the newest build plus the delta."""

    def __init__(self, reader: BankReader, build: BuiltIndex | None = None,
                 clock: Callable[[], float] = time.time, default_cosine: float | None = None) -> None:
        self.reader = reader
        self.build = build or BuiltIndex.build([], 0.0)
        self.clock = clock
        self.default_cosine = default_cosine if default_cosine is not None else EmbeddingSignal.match_threshold
        self.clip_cosine = ClipSignal.match_threshold
        self._refreshed = float("-inf")
        self._banks: dict[str, BankInfo] = {}
        self._delta = BuiltIndex.build([], 0.0)
        self._stale: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def use_build(self, build: BuiltIndex) -> None:
        with self._lock:
            self.build = build
            self._refreshed = float("-inf")

    def refresh(self, force: bool = False) -> None:
        """Re-read bank settings and the delta if it is older than ``DELTA_SECONDS``."""
        now = self.clock()
        if not force and now - self._refreshed < DELTA_SECONDS:
            return
        with self._lock:
            changed = self.reader.changed_since(self.build.built_at)
            self._banks = {b.name: b for b in self.reader.banks()}
            # Whatever changed since the build is answered by the delta alone: a withdrawn
            # entry disappears, an edited one is searched in its new form.
            self._stale = {(e.bank, e.ref) for e in changed}
            self._delta = BuiltIndex.build(changed, now)
            self._delta.group_sizes = _merged_sizes(self.build.group_sizes, changed)
            self._refreshed = now

    @property
    def banks_checked(self) -> int:
        return len(self._banks)

    @property
    def delta_size(self) -> int:
        return (len(self._delta.pdq_entries) + len(self._delta.emb_entries) + len(self._delta.clip_entries)
                + len(self._delta.audio_entries))

    def match(self, query: Query) -> list[Match]:
        self.refresh()
        best: dict[tuple[str, str], Match] = {}

        def keep(m: Match) -> None:
            key = (m.bank, m.ref)
            if key not in best or _rank(m) < _rank(best[key]):
                best[key] = m

        radius = max([b.pdq_threshold for b in self._banks.values()], default=PdqSignal.match_threshold)
        if query.is_video:
            for m in self._video_matches(query, radius):
                keep(m)
        else:
            # A still: its PDQ and (when computed) its seven rotations/mirrors, one quality.
            variants = (query.dihedral or [query.frames[0][0]]) if query.frames else []
            quality = query.frames[0][1] if query.frames else 0
            if quality >= PdqSignal.min_quality:
                for i, pdq in enumerate(variants):
                    for bank, ref, group, distance in self._pdq_hits(pdq, radius):
                        info = self._banks.get(bank)
                        if info and distance <= info.pdq_threshold:
                            keep(Match(bank=bank, kind=info.kind, ref=group or ref, signal="pdq" if i == 0 else
                                       "pdq_dihedral", distance=distance, action=info.action))
        for signal, vectors in ((EmbeddingSignal.name, query.embeddings), (ClipSignal.name, query.clip)):
            if vectors is not None and len(vectors):
                for m in self._embedding_matches(vectors, signal):
                    keep(m)
        if query.audio:
            for m in self._audio_matches(AudioSignal.words(query.audio)):
                keep(m)
        return sorted(best.values(), key=lambda m: (_rank(m), m.bank, m.ref))

    # --- internals -------------------------------------------------------------------

    def _sources(self):
        return ((self.build, True), (self._delta, False))

    def _pdq_hits(self, pdq: str, radius: int) -> list[tuple[str, str, str | None, int]]:
        hits = []
        for built, is_main in self._sources():
            for entry_id, distance in built.pdq.query(pdq, radius):
                bank, ref, group = built.pdq_entries[entry_id]
                if is_main and (bank, ref) in self._stale:
                    continue
                hits.append((bank, ref, group, distance))
        return hits

    def _video_matches(self, query: Query, radius: int) -> list[Match]:
        # (position in query.frames, pdq): the position is what the item view marks in its strip.
        usable = [(j, pdq) for j, (pdq, q) in enumerate(query.frames) if q >= PdqSignal.min_quality]
        if not usable:
            return []
        # (bank, group) -> per query frame: the best distance; and which banked frames were hit.
        per_group: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        refs_hit: dict[tuple[str, str], set[str]] = defaultdict(set)
        stills: dict[tuple[str, str], tuple[int, int]] = {}  # (distance, frame position)
        for i, pdq in usable:
            for bank, ref, group, distance in self._pdq_hits(pdq, radius):
                info = self._banks.get(bank)
                if not info or distance > info.pdq_threshold:
                    continue
                if group:
                    frames = per_group[(bank, group)]
                    frames[i] = min(distance, frames.get(i, distance))
                    refs_hit[(bank, group)].add(ref)
                else:  # a banked still seen in one of the frames
                    stills[(bank, ref)] = min((distance, i), stills.get((bank, ref), (distance, i)))
        sizes = self._delta.group_sizes
        out = []
        for (bank, group), frames in per_group.items():
            share = len(frames) / len(usable)
            ref_share = len(refs_hit[(bank, group)]) / max(1, sizes.get((bank, group), 1))
            if VpdqSignal.shares_match(share, ref_share):
                info = self._banks[bank]
                out.append(Match(bank=bank, kind=info.kind, ref=group, signal="vpdq",
                                 distance=int(statistics.median(frames.values())), action=info.action,
                                 frames_matched=round(share, 3), reference_matched=round(min(1.0, ref_share), 3),
                                 frame=min(frames, key=lambda k: (frames[k], k))))
        for (bank, ref), (distance, frame) in stills.items():
            info = self._banks[bank]
            out.append(Match(bank=bank, kind=info.kind, ref=ref, signal="pdq", distance=distance, action=info.action,
                             frame=frame))
        return out

    def _embedding_matches(self, vectors: np.ndarray, signal: str = EmbeddingSignal.name) -> list[Match]:
        q = np.asarray(vectors, dtype=EmbeddingSignal.dtype)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        out = []
        for built, is_main in self._sources():
            matrix, labels = built.cosine_rows(signal)
            if not len(labels):
                continue
            if matrix.shape[1] != q.shape[1]:
                raise ValueError(f"{signal} query has {q.shape[1]} dimensions, the index {matrix.shape[1]}")
            # Exact search: (N, D) @ (D, F), all frames in one product. bench/embedding.py: p50
            # 4.3 ms at 10k rows, 34 ms at 100k, 329 ms at 1M on one core; past ~100k, faiss.
            sims = (matrix @ q.T).max(axis=1)
            for row in np.flatnonzero(sims >= min(self._thresholds(signal))).tolist():
                bank, ref, group = labels[row]
                info = self._banks.get(bank)
                if info is None or (is_main and (bank, ref) in self._stale):
                    continue
                if sims[row] >= self._threshold(info, signal):
                    out.append(Match(bank=bank, kind=info.kind, ref=group or ref, signal=signal,
                                     distance=round(float(1.0 - sims[row]), 4), action=info.action))
        return out

    def _audio_matches(self, words: np.ndarray) -> list[Match]:
        out = []
        for built, is_main in self._sources():
            for row, alignment in built.audio.query(words):
                bank, ref, group = built.audio_entries[row]
                info = self._banks.get(bank)
                if info is None or (is_main and (bank, ref) in self._stale):
                    continue
                # distance: the unmatched share of aligned words; frames_matched: the share matched.
                out.append(Match(bank=bank, kind=info.kind, ref=group or ref, signal="audio",
                                 distance=round(1.0 - alignment.share, 4), action=info.action,
                                 frames_matched=round(alignment.share, 3)))
        return out

    def _threshold(self, info: BankInfo, signal: str) -> float:
        if signal == ClipSignal.name:
            return self.clip_cosine
        return info.embedding_threshold or self.default_cosine

    def _thresholds(self, signal: str = EmbeddingSignal.name) -> list[float]:
        return [self._threshold(b, signal) for b in self._banks.values()] or [
            self.clip_cosine if signal == ClipSignal.name else self.default_cosine]


def _rank(m: Match) -> tuple[int, float]:
    # Exact hashes first (their distances are bits), then audio (an unmatched share of aligned
    # words), then embeddings (a cosine distance).
    return (2 if m.signal in COSINE_SIGNALS else 1 if m.signal == "audio" else 0, float(m.distance))


def _merged_sizes(base: dict[tuple[str, str], int], changed: list[IndexEntry]) -> dict[tuple[str, str], int]:
    sizes = dict(base)
    for e in changed:
        if e.signal == "pdq" and e.group:
            key = (e.bank, e.group)
            # A frame added since the build grows its group; a withdrawn one shrinks it.
            sizes[key] = max(0, sizes.get(key, 0) + (1 if e.active and e.value is not None else -1))
    return sizes


# --- publishing and loading builds ------------------------------------------------------


def publish(build: BuiltIndex, put: Callable[[str, bytes], None]) -> dict:
    """Write a build under ``index/<stamp>/`` and then the manifest that points at it."""
    stamp = f"{build.built_at:.3f}"
    with tempfile.TemporaryDirectory(prefix="mg-index-") as tmp:
        files = build.save(Path(tmp))
        for name in files:
            put(f"{INDEX_PREFIX}{stamp}/{name}", (Path(tmp) / name).read_bytes())
    manifest = {"built_at": build.built_at, "prefix": f"{INDEX_PREFIX}{stamp}/", "files": files,
                "pdq_entries": len(build.pdq_entries), "embedding_entries": len(build.emb_entries),
                "clip_entries": len(build.clip_entries), "audio_entries": len(build.audio_entries)}
    put(MANIFEST_KEY, json.dumps(manifest).encode())
    return manifest


def fetch(manifest: dict, download: Callable[[str, Path], None], root: Path) -> BuiltIndex:
    """Download a published build to local disk (Lambda's /tmp) and map it."""
    directory = root / f"{manifest['built_at']:.3f}"
    if not (directory / "entries.json").exists():
        for name in manifest["files"]:
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            download(manifest["prefix"] + name, target)
    return BuiltIndex.load(directory, float(manifest["built_at"]))
