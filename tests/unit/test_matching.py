"""The matcher's index build + delta semantics, on a fake bank reader and a fake clock."""

from __future__ import annotations

import numpy as np

from mediaguard.analysis.matching import DELTA_SECONDS, BankInfo, BuiltIndex, IndexEntry, Matcher, Query, fetch, publish
from tests.fakes import Clock

A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def flip(hex_: str, bits: int) -> str:
    """``hex_`` with its lowest ``bits`` bits inverted."""
    return f"{int(hex_, 16) ^ ((1 << bits) - 1):064x}"


def far(seed: int) -> str:
    return np.random.default_rng(seed).bytes(32).hex()


class Reader:
    def __init__(self, banks: list[BankInfo], entries: list[IndexEntry]) -> None:
        self._banks, self.entries = banks, entries

    def banks(self) -> list[BankInfo]:
        return self._banks

    def active_entries(self):
        return [e for e in self.entries if e.active]

    def changed_since(self, since: float) -> list[IndexEntry]:
        return [e for e in self.entries if e.updated_at >= since]


def test_a_withdrawal_after_the_build_hides_the_indexed_entry_once_the_delta_refreshes():
    # GIVEN an index built with one block entry
    reader = Reader([BankInfo("ncii", "block")], [IndexEntry("ncii", "r1", "pdq", A, 100, updated_at=900.0)])
    clock = Clock(1000.0)
    matcher = Matcher(reader, BuiltIndex.build(reader.active_entries(), built_at=950.0), clock=clock)
    assert [m.ref for m in matcher.match(Query(frames=[(flip(A, 5), 100)]))] == ["r1"]
    # WHEN the entry is withdrawn after the build
    reader.entries = [IndexEntry("ncii", "r1", "pdq", None, None, active=False, updated_at=1001.0)]
    # THEN it still matches until the delta's refresh period has passed, and not after
    clock.now += DELTA_SECONDS / 2
    assert matcher.match(Query(frames=[(flip(A, 5), 100)]))
    clock.now += DELTA_SECONDS
    assert matcher.match(Query(frames=[(flip(A, 5), 100)])) == []


def test_thresholds_quality_and_rotations_are_applied_per_bank():
    # GIVEN a strict bank (10 bits) and a default one (31), holding hashes 20 bits from the query
    reader = Reader([BankInfo("strict", "flag", pdq_threshold=10), BankInfo("loose", "flag")],
                    [IndexEntry("strict", "s", "pdq", A, 100, updated_at=1.0),
                     IndexEntry("loose", "l", "pdq", A, 100, updated_at=1.0)])
    matcher = Matcher(reader, clock=Clock(1000.0))
    query = flip(A, 20)
    # THEN only the loose bank matches, and a low-quality query matches nothing
    assert [(m.bank, m.distance) for m in matcher.match(Query(frames=[(query, 100)]))] == [("loose", 20)]
    assert matcher.match(Query(frames=[(query, 40)])) == []
    # AND a match through a rotated variant is named as such
    rotated = Query(frames=[(far(1), 100)], dihedral=[far(1), far(2), query, far(3), far(4), far(5), far(6), far(7)])
    (match,) = matcher.match(rotated)
    assert (match.bank, match.signal) == ("loose", "pdq_dihedral")


def test_a_video_matches_a_banked_video_only_when_most_frames_match_both_ways():
    # GIVEN a banked video of five frames
    frames = [far(10 + i) for i in range(5)]
    reader = Reader([BankInfo("deepfakes", "flag")],
                    [IndexEntry("deepfakes", f"clip#{i}", "pdq", h, 100, group="clip", updated_at=1.0)
                     for i, h in enumerate(frames)])
    matcher = Matcher(reader, clock=Clock(1000.0))
    # WHEN a copy shows all five (re-encoded: a few bits off) THEN it is a vPDQ match on the group
    (match,) = matcher.match(Query(frames=[(flip(h, 3), 100) for h in frames], is_video=True))
    assert (match.ref, match.signal, match.frames_matched, match.reference_matched) == ("clip", "vpdq", 1.0, 1.0)
    # AND a clip sharing two of its five frames with unrelated footage is not
    partial = [(flip(h, 3), 100) for h in frames[:2]] + [(far(99 + i), 100) for i in range(3)]
    assert matcher.match(Query(frames=partial, is_video=True)) == []


def test_embeddings_match_at_the_bank_threshold_and_report_cosine_distance():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=64).astype(np.float32)
    near = ref + 0.1 * rng.normal(size=64).astype(np.float32)
    reader = Reader([BankInfo("known", "flag", embedding_threshold=0.95)],
                    [IndexEntry("known", "k", "embedding", ref, updated_at=1.0)])
    matcher = Matcher(reader, clock=Clock(1000.0), default_cosine=0.9)
    (match,) = matcher.match(Query(frames=[], embeddings=near[None, :]))
    cos = float(ref @ near / np.linalg.norm(ref) / np.linalg.norm(near))
    assert match.signal == "embedding" and abs(match.distance - (1 - cos)) < 2e-3
    assert matcher.match(Query(frames=[], embeddings=rng.normal(size=(1, 64)))) == []


def test_a_published_build_round_trips_through_the_stored_form(tmp_path):
    # GIVEN a build with hashes and embeddings, published as files (S3 on AWS)
    vec = np.ones(8, dtype=np.float32)
    build = BuiltIndex.build([IndexEntry("b", "r", "pdq", A, 100), IndexEntry("b", "e", "embedding", vec)], 5.0)
    stored: dict[str, bytes] = {}
    manifest = publish(build, stored.__setitem__)
    assert "index/manifest.json" in stored and manifest["pdq_entries"] == 1

    def download(key, path):
        path.write_bytes(stored[key])

    # WHEN another process fetches it
    loaded = fetch(manifest, download, tmp_path)
    # THEN it answers like the original
    assert loaded.pdq.query(A) == [(0, 0)] and loaded.pdq_entries == [("b", "r", None)]
    assert loaded.emb.shape == (1, 8) and abs(float(loaded.emb[0] @ (vec / np.linalg.norm(vec))) - 1) < 1e-3


# --- CLIP embeddings beside open_nsfw's -------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _at_cosine(ref: np.ndarray, cos: float, seed: int) -> np.ndarray:
    """A unit vector at exactly ``cos`` from unit ``ref``."""
    other = np.random.default_rng(seed).normal(size=ref.size).astype(np.float32)
    other = _unit(other - (other @ ref) * ref)
    return _unit(cos * ref + np.sqrt(1 - cos * cos) * other)


def test_clip_entries_match_at_the_clip_threshold_not_the_embedding_one():
    from mediaguard.signals import ClipSignal, EmbeddingSignal

    rng = np.random.default_rng(3)
    clip_ref, nsfw_ref = _unit(rng.normal(size=512)), _unit(rng.normal(size=1024))
    # GIVEN a flag bank entry with both embeddings, and a bank threshold for open_nsfw's only
    reader = Reader([BankInfo("known", "flag", embedding_threshold=0.99)],
                    [IndexEntry("known", "k", "embedding", nsfw_ref, updated_at=1.0),
                     IndexEntry("known", "k", "clip", clip_ref, updated_at=1.0)])
    matcher = Matcher(reader, clock=Clock(1000.0))
    just_in = ClipSignal.match_threshold + 0.005
    # WHEN a query is just inside CLIP's threshold and far outside open_nsfw's
    query = Query(frames=[], embeddings=_at_cosine(nsfw_ref, EmbeddingSignal.match_threshold - 0.2, 1)[None],
                  clip=_at_cosine(clip_ref, just_in, 2)[None])
    # THEN it matches by clip, at the cosine distance (the bank's open_nsfw threshold does not apply)
    (match,) = matcher.match(query)
    assert (match.ref, match.signal) == ("k", "clip") and abs(match.distance - (1 - just_in)) < 2e-3
    # AND just outside CLIP's threshold nothing matches
    query.clip = _at_cosine(clip_ref, ClipSignal.match_threshold - 0.005, 2)[None]
    assert matcher.match(query) == []


def test_index_build_and_delta_carry_clip_entries(tmp_path):
    rng = np.random.default_rng(4)
    old, new = _unit(rng.normal(size=512)), _unit(rng.normal(size=512))
    # GIVEN a published build holding one CLIP entry, fetched by another process
    reader = Reader([BankInfo("ncii", "block")], [IndexEntry("ncii", "old", "clip", old, updated_at=900.0)])
    stored: dict[str, bytes] = {}
    manifest = publish(BuiltIndex.build(reader.active_entries(), 950.0), stored.__setitem__)
    assert manifest["clip_entries"] == 1 and manifest["embedding_entries"] == 0
    build = fetch(manifest, lambda key, path: path.write_bytes(stored[key]), tmp_path)
    assert build.clip.shape == (1, 512) and build.clip_entries == [("ncii", "old", None)]
    clock = Clock(1000.0)
    matcher = Matcher(reader, build, clock=clock)
    # WHEN a second CLIP entry is banked after the build and the first is withdrawn
    reader.entries = [IndexEntry("ncii", "old", "clip", None, active=False, updated_at=1001.0),
                      IndexEntry("ncii", "new", "clip", new, updated_at=1001.0)]
    clock.now += DELTA_SECONDS + 1
    # THEN the delta answers for both: the new entry matches, the withdrawn one no longer does
    assert [(m.ref, m.signal) for m in matcher.match(Query(frames=[], clip=new[None]))] == [("new", "clip")]
    assert matcher.match(Query(frames=[], clip=old[None])) == []
    assert matcher.delta_size == 1


def test_a_build_published_before_clip_existed_still_loads(tmp_path):
    # GIVEN a build's files as they were before CLIP entries (no clip.npy, no "clip" list)
    build = BuiltIndex.build([IndexEntry("b", "r", "pdq", A, 100)], 5.0)
    files = build.save(tmp_path)
    (tmp_path / "clip.npy").unlink()
    import json
    entries = json.loads((tmp_path / "entries.json").read_text())
    del entries["clip"]
    (tmp_path / "entries.json").write_text(json.dumps(entries))
    assert "clip.npy" in files
    # WHEN it is loaded THEN it holds no CLIP entries and a CLIP query matches nothing
    loaded = BuiltIndex.load(tmp_path, 5.0)
    assert loaded.clip_entries == [] and loaded.pdq_entries == [("b", "r", None)]
    matcher = Matcher(Reader([BankInfo("b", "flag")], []), loaded, clock=Clock(1000.0))
    assert matcher.match(Query(frames=[], clip=_unit(np.ones(512))[None])) == []


def test_a_video_match_names_the_frame_that_matched_best_counting_skipped_frames():
    # GIVEN a banked video of four frames and a copy whose first frame is too poor to use
    frames = [far(20 + i) for i in range(4)]
    reader = Reader([BankInfo("deepfakes", "flag")],
                    [IndexEntry("deepfakes", f"v#{i}", "pdq", h, 100, group="v", updated_at=1.0)
                     for i, h in enumerate(frames)])
    matcher = Matcher(reader, clock=Clock(1000.0))
    # (frame 2 is the exact copy; the others are a few bits off)
    query = [(far(7), 10)] + [(flip(h, 0 if i == 1 else 4), 100) for i, h in enumerate(frames)]
    (match,) = matcher.match(Query(frames=query, is_video=True))
    # THEN the match points at frame 2 of the upload: its position among all analysed frames
    assert (match.signal, match.frame) == ("vpdq", 2)
    # AND a still's match names no frame
    (still,) = matcher.match(Query(frames=[(frames[0], 100)]))
    assert still.frame is None
