"""Near-duplicate decision: transformed copies of real photos match their source, and
nothing matches an unrelated photo.

Every picture goes the way an upload goes: JPEG bytes -> ``ingest.prepare`` (sanitize,
PDQ and its dihedral variants) -> ``classify.decode_for_models`` -> open_nsfw's
embedding. Sources are banked as references with :func:`neardup.reference_views`.
``python -m bench.embedding --calibrate`` replays these transforms on a larger corpus
and prints the margins.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.corpus import PHOTOS, TRANSFORMS, fit, photo, upload_features
from mediaguard.analysis.classify import open_nsfw
from mediaguard.analysis.embedding import EmbeddingIndex
from mediaguard.analysis.neardup import (
    PictureSignals,
    Verdict,
    cosine,
    decide,
    pdq_distance,
    reference_views,
)
from mediaguard.models import Fingerprints
from mediaguard.settings import Settings
from mediaguard.signals import EmbeddingSignal, PdqSignal

# Transforms that move PDQ far past 31 bits: only the embedding can carry them.
EMBEDDING_ONLY = ("crop", "off_centre_crop", "rotate_6")
DIHEDRAL = ("mirror", "rotate_90", "rotate_180", "rotate_270")

MIN_COSINE = EmbeddingSignal.match_threshold


@pytest.fixture(scope="module")
def corpus():
    """references: photo -> banked PictureSignals; queries: (photo, transform, PictureSignals), the
    untouched photo included as transform "original"."""
    settings = Settings()
    classifier = open_nsfw(threads=2)  # CI has two cores and runs the tests one by one
    # At most 640 px: what a phone shares after the app downsizes it, and cheap to transform.
    sources = {name: fit(photo(name), 640) for name in PHOTOS}
    items = [(name, "original", img) for name, img in sources.items()]
    items += [(name, t, fn(img)) for name, img in sources.items() for t, fn in TRANSFORMS.items()]
    prepared = upload_features([img for _, _, img in items], classifier, settings)
    frames = [frame for _, frame in prepared]
    # Batches of 16, as the classify stage runs them.
    embeddings = [f.embedding for i in range(0, len(frames), 16) for f in classifier.classify_batch(frames[i:i + 16])]
    queries = [(name, t, PictureSignals.of(fps, emb)) for (name, t, _), (fps, _), emb in zip(items, prepared, embeddings,
                                                                                        strict=True)]
    references = {}
    for (name, t, _), (fps, frame) in zip(items, prepared, strict=True):
        if t == "original":
            views = classifier.classify_batch(reference_views(frame))
            references[name] = PictureSignals.of(fps, np.stack([v.embedding for v in views]))
    return references, queries


@pytest.mark.parametrize("transform", ["original", *TRANSFORMS])
def test_every_copy_matches_its_source(corpus, transform):
    references, queries = corpus
    # GIVEN each photo banked, and its copy made with one transform
    for name, t, query in queries:
        if t != transform:
            continue
        # WHEN the copy is compared with its source
        verdict = decide(query, references[name])
        # THEN it matches
        assert verdict.matched, f"{name}/{t}: {verdict}"


def test_nothing_matches_an_unrelated_photo(corpus):
    references, queries = corpus
    # GIVEN every photo and every copy, against every other photo's banked reference
    false = [(name, t, other, decide(query, ref)) for name, t, query in queries
             for other, ref in references.items() if other != name]
    assert len(false) == len(queries) * (len(PHOTOS) - 1)
    # THEN none matches, by either signal
    assert [f for f in false if f[3].matched] == []


def test_each_signal_carries_the_transforms_it_is_built_for(corpus):
    references, queries = corpus
    for name, t, query in queries:
        verdict = decide(query, references[name])
        if references[name].pdq_quality < 50 or query.pdq_quality < 50:
            # GIVEN a picture too flat for PDQ THEN PDQ is not consulted and the embedding decides
            assert verdict.pdq_distance is None and verdict.signal == "embedding", (name, t)
        elif t in EMBEDDING_ONLY:
            # GIVEN a crop or a small rotation THEN PDQ is far off and the embedding matches
            assert verdict.pdq_distance > PdqSignal.match_threshold and verdict.signal == "embedding", (name, t, verdict)
        elif t in DIHEDRAL:
            # GIVEN a mirror or quarter turn THEN one of the query's other seven variants matches
            assert verdict.signal == "pdq_dihedral", (name, t, verdict)
        elif t in ("original", "jpeg_q25"):
            # (a 40 % resize is left out: at 256 px PDQ drifts past 31 bits on some photos,
            # retina by 36, and the embedding carries those)
            assert verdict.signal == "pdq", (name, t, verdict)


def test_the_reference_views_lift_crops_above_the_full_frame(corpus):
    # GIVEN the banked views WHEN a centre crop is compared with the full frame only and with all views
    references, queries = corpus
    for name, t, query in queries:
        if t == "crop" and references[name].pdq_quality >= 50:
            full_only = cosine(query, PictureSignals(embedding=references[name].embedding[0]))
            # THEN the crop-shaped view is the closer one
            assert cosine(query, references[name]) > full_only, name


# --- the decision rules on constructed features ----------------------------------------

ZERO = "0" * 64


def flipped(bits: int) -> str:
    """A PDQ hex at Hamming distance ``bits`` from ZERO."""
    return format((1 << bits) - 1, "064x")


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("bits,matched", [(0, True), (31, True), (32, False), (128, False)])
def test_pdq_matches_up_to_31_bits_inclusive(bits, matched):
    verdict = decide(PictureSignals(pdq=ZERO, pdq_quality=90), PictureSignals(pdq=flipped(bits), pdq_quality=90))
    assert verdict == Verdict(matched, "pdq" if matched else None, bits, None)


@pytest.mark.parametrize("query_q,ref_q", [(49, 100), (100, 49), (10, 10)])
def test_pdq_is_ignored_when_either_side_is_below_quality_50(query_q, ref_q):
    # GIVEN identical hashes, one of them from a flat picture
    verdict = decide(PictureSignals(pdq=ZERO, pdq_quality=query_q), PictureSignals(pdq=ZERO, pdq_quality=ref_q))
    # THEN PDQ says nothing (no distance recorded) and there is no match
    assert verdict == Verdict(False, None, None, None)


def test_an_unknown_quality_is_compared():
    assert decide(PictureSignals(pdq=ZERO), PictureSignals(pdq=flipped(3))).matched


def test_the_closest_dihedral_variant_decides_and_is_named():
    # GIVEN a query whose fourth variant is 5 bits from the reference, the others far
    variants = [flipped(200), flipped(150), flipped(90), flipped(5), flipped(60), flipped(100), flipped(40), flipped(70)]
    query = PictureSignals(pdq=variants[0], pdq_quality=80, pdq_dihedral=variants)
    verdict = decide(query, PictureSignals(pdq=ZERO, pdq_quality=80))
    assert verdict == Verdict(True, "pdq_dihedral", 5, None)
    assert pdq_distance(query, PictureSignals(pdq=ZERO, pdq_quality=80)) == (5, 3)


def test_reference_variants_are_searched_when_the_query_has_none():
    variants = [flipped(90), flipped(2), *[flipped(120)] * 6]
    verdict = decide(PictureSignals(pdq=ZERO, pdq_quality=80),
                     PictureSignals(pdq=variants[0], pdq_quality=80, pdq_dihedral=variants))
    assert verdict == Verdict(True, "pdq_dihedral", 2, None)


def test_embedding_matches_at_the_threshold_inclusive():
    # GIVEN embeddings exactly at, and just below, the threshold (hashes far apart)
    at = unit(MIN_COSINE, np.sqrt(1 - MIN_COSINE**2))
    below = unit(MIN_COSINE - 0.01, np.sqrt(1 - (MIN_COSINE - 0.01) ** 2))
    ref = PictureSignals(pdq=ZERO, pdq_quality=90, embedding=unit(1, 0))
    hit = decide(PictureSignals(pdq=flipped(100), pdq_quality=90, embedding=at), ref, min_cosine=MIN_COSINE - 1e-6)
    miss = decide(PictureSignals(pdq=flipped(100), pdq_quality=90, embedding=below), ref)
    # THEN the first matches by embedding and the second does not; both keep their measurements
    assert (hit.matched, hit.signal, hit.pdq_distance) == (True, "embedding", 100)
    assert hit.cosine == pytest.approx(MIN_COSINE, abs=1e-6)
    assert (miss.matched, miss.signal, miss.pdq_distance) == (False, None, 100)
    assert miss.cosine == pytest.approx(MIN_COSINE - 0.01, abs=1e-6)


def test_pdq_wins_when_both_signals_match():
    ref = PictureSignals(pdq=ZERO, pdq_quality=90, embedding=unit(1, 0))
    verdict = decide(PictureSignals(pdq=flipped(4), pdq_quality=90, embedding=unit(1, 0)), ref)
    assert verdict == Verdict(True, "pdq", 4, 1.0)


def test_a_reference_with_several_views_is_as_close_as_its_closest_view():
    ref = PictureSignals(embedding=np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0.6, 0.8)]))
    assert cosine(PictureSignals(embedding=unit(0, 0, 1)), ref) == pytest.approx(0.8)


def test_no_comparable_features_is_no_match():
    assert decide(PictureSignals(), PictureSignals(pdq=ZERO, embedding=unit(1, 0))) == Verdict(False, None, None, None)


def test_embeddings_of_different_models_are_refused():
    with pytest.raises(ValueError, match="different sizes"):
        cosine(PictureSignals(embedding=unit(1, 0)), PictureSignals(embedding=unit(1, 0, 0)))


def test_features_from_stored_fingerprints():
    variants = [flipped(i) for i in range(8)]
    fps = Fingerprints(sha256="a" * 64, pdq=variants[0], pdq_quality=77, phash="0" * 16, dhash="0" * 16,
                       pdq_dihedral=variants)
    f = PictureSignals.of(fps, unit(1, 0))
    assert (f.pdq, f.pdq_quality, list(f.pdq_dihedral)) == (variants[0], 77, variants)
    assert PictureSignals.of(None, unit(1, 0)).pdq is None


def test_reference_views_are_the_picture_and_its_centre_crops():
    img = photo("coffee")  # 600 x 400
    views = reference_views(img)
    assert [v.size for v in views] == [(600, 400), (480, 320), (384, 256)]
    # the crops are centred: the 80 % view is the picture's middle
    assert np.array_equal(np.asarray(views[1]), np.asarray(img)[40:360, 60:540])


# --- exact embedding search (mediaguard.analysis.embedding) ---------------------------------------


def random_unit(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    v = np.abs(np.random.default_rng(seed).standard_normal((n, dim))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, min_cosine: float, k: int):
    """The oracle: every row's cosine in float64, best per id, sorted by (-cosine, id)."""
    sims = vectors.astype(np.float64) @ (q / np.linalg.norm(q))
    best: dict[int, float] = {}
    for i, s in zip(ids.tolist(), sims.tolist(), strict=True):
        if s >= min_cosine:
            best[i] = max(best.get(i, -1.0), s)
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def assert_same_hits(got, want):
    assert [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([c for _, c in got], [c for _, c in want], atol=1e-5)


def test_query_returns_what_a_brute_force_scan_returns():
    # GIVEN 2,000 rows where ids repeat (three views per reference)
    vectors = random_unit(2000)
    ids = np.repeat(np.arange(700), 3)[:2000]
    index = EmbeddingIndex.build(vectors, ids)
    for seed in range(5):
        q = random_unit(1, seed=100 + seed)[0]
        # WHEN queried THEN each id appears once with its best row, best first, as the oracle says
        assert_same_hits(index.query(q, min_cosine=0.75, k=10), brute_force(vectors, ids, q, 0.75, 10))
    # and a query equal to a row finds that row's id at cosine 1
    assert index.query(vectors[42], min_cosine=0.999, k=1) == [(int(ids[42]), 1.0)]


def test_added_rows_are_found_and_removed_ids_are_not():
    vectors = random_unit(300)
    index = EmbeddingIndex.build(vectors[:200], np.arange(200))
    # GIVEN rows added after the build (not normalised: the index normalises them)
    assert index.add(vectors[200:] * 3.0, np.arange(200, 300)) == 100
    assert len(index) == 300
    assert index.query(vectors[250], min_cosine=0.999) == [(250, 1.0)]
    # WHEN an id from the build and one from the delta are removed
    assert index.remove(7) == 1 and index.remove(250) == 1 and index.remove(999) == 0
    # THEN neither is returned any more, and the rest still are
    assert index.query(vectors[7], min_cosine=0.999) == []
    assert index.query(vectors[250], min_cosine=0.999) == []
    assert index.query(vectors[251], min_cosine=0.999) == [(251, 1.0)]
    assert len(index) == 298


@pytest.mark.parametrize("dtype,mmap", [(np.float32, True), (np.float32, False), (np.float16, True)])
def test_a_saved_index_loads_with_the_same_answers(tmp_path, dtype, mmap):
    # GIVEN an index with a removal and an addition since its build, saved
    vectors = random_unit(500)
    index = EmbeddingIndex.build(vectors[:400], np.arange(400))
    index.add(vectors[400:], np.arange(400, 500))
    index.remove(3)
    index.save(tmp_path / "emb", dtype=dtype)
    # WHEN it is loaded (float32 files memory-mapped, float16 converted)
    loaded = EmbeddingIndex.load(tmp_path / "emb", mmap=mmap)
    # THEN it holds the live rows and answers every query as before (float16: within 1e-3)
    assert len(loaded) == 499
    assert isinstance(loaded._main, np.memmap) == (mmap and dtype == np.float32)
    for seed in range(5):
        q = random_unit(1, seed=200 + seed)[0]
        got, want = loaded.query(q, 0.7, k=500), index.query(q, 0.7, k=500)
        if dtype == np.float32:
            assert got == want
        else:
            assert {i for i, _ in got} ^ {i for i, _ in want} <= {i for i, c in want if abs(c - 0.7) < 1e-3}
    assert loaded.query(vectors[3], min_cosine=0.999) == []
    # and a mapped index still takes additions
    loaded.add(vectors[3:4], [3])
    assert loaded.query(vectors[3], min_cosine=0.999) == [(3, 1.0)]


def test_the_index_refuses_vectors_of_another_size():
    index = EmbeddingIndex.build(random_unit(10), np.arange(10))
    with pytest.raises(ValueError, match="dimensions"):
        index.add(random_unit(1, dim=32), [11])
    with pytest.raises(ValueError, match="dimensions"):
        index.query(random_unit(1, dim=32)[0], min_cosine=0.5)
    with pytest.raises(ValueError, match="one id per row"):
        EmbeddingIndex.build(random_unit(3), [1, 2])
