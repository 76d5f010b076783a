"""The PDQ multi-index against an exact linear scan, on random hashes plus planted near copies."""

from __future__ import annotations

import numpy as np
import pytest

from mediaguard.analysis.index import PdqIndex, brute_force, to_words

N = 20_000
PLANTED = (0, 5, 15, 31, 32, 40)  # distances from the query hash; 31 must match, 32 must not


def _flip(words: np.ndarray, distance: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(words.view(np.uint8).copy())
    bits[rng.choice(256, distance, replace=False)] ^= 1
    return np.packbits(bits).view("<u8")


@pytest.fixture(scope="module")
def corpus():
    """20k random hashes (ids 0..N-1), then for each of 5 query hashes one planted copy per
    distance in PLANTED (ids 100_000 + 10 * query + k)."""
    rng = np.random.default_rng(4)
    hashes = rng.integers(0, 2**64, size=(N, 4), dtype=np.uint64)
    ids = np.arange(N, dtype=np.int64)
    queries, planted, planted_ids = [], [], []
    for qi in range(5):
        q = rng.integers(0, 2**64, size=4, dtype=np.uint64)
        queries.append(q.tobytes().hex())
        for k, d in enumerate(PLANTED):
            planted.append(_flip(q, d, rng))
            planted_ids.append(100_000 + 10 * qi + k)
    # Also query with hashes that sit in the index itself, and their near copies.
    for row in (3, 17_000):
        queries.append(hashes[row].tobytes().hex())
        planted.append(_flip(hashes[row], 20, rng))
        planted_ids.append(200_000 + row)
    all_hashes = np.concatenate([hashes, np.array(planted, dtype=np.uint64)])
    all_ids = np.concatenate([ids, np.array(planted_ids, dtype=np.int64)])
    return all_hashes, all_ids, queries


@pytest.fixture(scope="module")
def index(corpus):
    hashes, ids, _ = corpus
    return PdqIndex.build(hashes, ids)


def test_index_returns_exactly_what_a_linear_scan_returns(corpus, index):
    hashes, ids, queries = corpus
    for q in queries:
        assert index.query(q) == brute_force(hashes, ids, q)


def test_radius_31_finds_the_copy_at_31_and_not_at_32(corpus, index):
    _, _, queries = corpus
    found = dict(index.query(queries[0]))
    assert [found.get(100_000 + k) for k in range(len(PLANTED))] == [0, 5, 15, 31, None, None]


@pytest.mark.parametrize("radius", [0, 10, 40, 50])
def test_other_radii_match_a_linear_scan(corpus, index, radius):
    hashes, ids, queries = corpus
    for q in queries[:3]:
        assert index.query(q, radius=radius) == brute_force(hashes, ids, q, radius=radius)


def test_results_are_sorted_by_distance(corpus, index):
    result = index.query(corpus[2][1], radius=40)
    assert result == sorted(result, key=lambda r: (r[1], r[0]))
    assert [d for _, d in result] == [0, 5, 15, 31, 32, 40]


def test_hex_bytes_and_arrays_are_the_same_hash(corpus, index):
    hashes, ids, queries = corpus
    as_bytes = [bytes.fromhex(h) for h in (hashes[i].tobytes().hex() for i in range(50))]
    assert np.array_equal(to_words(as_bytes), hashes[:50])
    assert np.array_equal(to_words(hashes[:50].view(np.uint8)), hashes[:50])
    assert index.query(bytes.fromhex(queries[0])) == index.query(queries[0])
    with pytest.raises(ValueError):
        to_words(["abc"])


def test_save_and_mmap_load_give_identical_results(corpus, index, tmp_path):
    _, _, queries = corpus
    index.save(tmp_path / "idx")
    loaded = PdqIndex.load(tmp_path / "idx", mmap=True)
    assert isinstance(loaded._main.hashes, np.memmap)
    assert len(loaded) == len(index)
    for q in queries:
        assert loaded.query(q) == index.query(q)
    in_memory = PdqIndex.load(tmp_path / "idx", mmap=False)
    assert in_memory.query(queries[1]) == index.query(queries[1])


def test_added_entries_match_before_rebuild_and_after_it(corpus):
    hashes, ids, queries = corpus
    rng = np.random.default_rng(9)
    index = PdqIndex.build(hashes, ids)
    q = to_words(queries[3])[0]
    GIVEN_new = _flip(q, 12, rng)
    assert 900_555 not in dict(index.query(queries[3]))
    # WHEN a bank entry arrives between rebuilds
    assert index.add([GIVEN_new.tobytes()], ids=[900_555], labels=[("ncii", "case-1")]) == 1
    # THEN it matches at once, and still after the delta is folded in
    assert dict(index.query(queries[3]))[900_555] == 12
    assert index.label(900_555) == ("ncii", "case-1")
    index.rebuild()
    assert index.delta_size == 0
    assert dict(index.query(queries[3]))[900_555] == 12
    assert index.query(queries[3]) == brute_force(
        np.concatenate([hashes, GIVEN_new[None]]), np.concatenate([ids, [900_555]]), queries[3])


def test_removed_entries_are_not_returned_even_after_a_reload(corpus, tmp_path):
    hashes, ids, queries = corpus
    index = PdqIndex.build(hashes, ids)
    index.add([queries[4]], ids=[900_777])
    before = dict(index.query(queries[4]))
    assert before[900_777] == 0 and before[100_040] == 0
    # WHEN both a main entry and a delta entry are withdrawn
    assert index.remove(100_040) == 1
    assert index.remove(900_777) == 1
    assert index.remove(900_777) == 0
    # THEN neither comes back, from memory, from disk or after a rebuild
    after = dict(index.query(queries[4]))
    assert 100_040 not in after and 900_777 not in after
    assert set(after) == set(before) - {100_040, 900_777}
    index.save(tmp_path / "idx")
    assert PdqIndex.load(tmp_path / "idx").query(queries[4]) == index.query(queries[4])
    n = len(index)
    index.rebuild()
    assert len(index) == n
    assert index.query(queries[4]) == PdqIndex.load(tmp_path / "idx").query(queries[4])


def test_low_quality_hashes_are_not_indexed(corpus):
    hashes, ids, queries = corpus
    quality = np.full(len(ids), 90)
    quality[ids == 100_000] = 49  # the exact copy of query 0
    quality[ids == 100_001] = 50  # distance 5: exactly at the floor, kept
    index = PdqIndex.build(hashes, ids, quality=quality)
    found = dict(index.query(queries[0]))
    assert 100_000 not in found and found[100_001] == 5
    assert index.add([queries[0]], ids=[900_009], quality=[10]) == 0
    assert index.add([queries[0]], ids=[900_010], quality=[None]) == 1  # unknown quality is kept
    assert 900_009 not in dict(index.query(queries[0]))


def test_labels_map_ids_back_to_bank_and_ref(tmp_path):
    rng = np.random.default_rng(2)
    hashes = rng.integers(0, 2**64, size=(100, 4), dtype=np.uint64)
    labels = [("ncii" if i % 2 else "deepfakes", f"ref-{i}-é") for i in range(100)]
    index = PdqIndex.build(hashes, ids=np.arange(100) + 1000, labels=labels)
    index.save(tmp_path / "idx")
    loaded = PdqIndex.load(tmp_path / "idx")
    assert [loaded.label(1000 + i) for i in (0, 1, 99)] == [labels[0], labels[1], labels[99]]
    assert loaded.label(5) is None
    loaded.remove(1001)
    assert loaded.label(1001) is None


def test_an_empty_index_answers_from_its_delta():
    index = PdqIndex()
    assert index.query("00" * 32) == []
    index.add(["00" * 32], ids=[1])
    assert index.query("00" * 32) == [(1, 0)]


def test_full_width_buckets_used_at_millions_of_hashes_match_a_linear_scan(corpus, monkeypatch):
    # GIVEN the bucket layout a 10M index gets (all 21/22 bits address a bucket), on the small corpus
    import mediaguard.analysis.index as index_module

    monkeypatch.setattr(index_module, "_bucket_bits", lambda n: tuple(b for _, _, b in index_module._LAYOUT))
    hashes, ids, queries = corpus
    index = PdqIndex.build(hashes, ids)
    assert not index._main._coarse
    # THEN it answers exactly like the scan
    for q in queries:
        for radius in (31, 40):
            assert index.query(q, radius=radius) == brute_force(hashes, ids, q, radius=radius)


def _skewed(n: int, rng: np.random.Generator) -> np.ndarray:
    """Hashes whose bit i is 1 with probability p_i ~ U(0.1, 0.9): the 'biased bits' of bench.index."""
    p = rng.uniform(0.1, 0.9, 256)
    bits = (rng.random((n, 256)) < p).astype(np.uint8)
    return np.packbits(bits, axis=1, bitorder="little").view("<u8")


@pytest.fixture(scope="module")
def skewed():
    rng = np.random.default_rng(11)
    hashes = _skewed(20_000, rng)
    queries = [_flip(hashes[i], d, rng) for i, d in ((5, 0), (600, 7), (9_000, 19), (15_000, 31), (19_999, 33))]
    queries += list(_skewed(3, rng))  # fresh draws from the same skewed distribution
    return hashes, np.arange(len(hashes), dtype=np.int64) + 7, [q.tobytes() for q in queries]


@pytest.mark.parametrize("full_width", [False, True])
def test_a_skewed_bank_is_permuted_and_still_answers_exactly(skewed, monkeypatch, full_width):
    # GIVEN hashes with strongly biased bits (the layout's substrings would be lopsided)
    import mediaguard.analysis.index as index_module

    if full_width:  # the bucket layout a 10M bank gets, where each query picks its own sub-radii
        monkeypatch.setattr(index_module, "_bucket_bits", lambda n: tuple(b for _, _, b in index_module._LAYOUT))
    hashes, ids, queries = skewed
    # WHEN they are indexed
    index = PdqIndex.build(hashes, ids)
    # THEN the build rebalances the bits, and every answer is still the linear scan's
    assert index._main.perm is not None
    for q in queries:
        for radius in (0, 31, 40):
            assert index.query(q, radius=radius) == brute_force(hashes, ids, q, radius=radius)
    assert index.query(queries[3])[0][1] == 31


def test_a_permuted_index_survives_save_load_and_rebuild(skewed, tmp_path):
    hashes, ids, queries = skewed
    index = PdqIndex.build(hashes, ids)
    index.add([queries[1]], ids=[1])
    index.save(tmp_path / "idx")
    loaded = PdqIndex.load(tmp_path / "idx")
    expected = brute_force(np.concatenate([hashes, to_words(queries[1])]), np.concatenate([ids, [1]]), queries[1])
    assert loaded.query(queries[1]) == expected
    loaded.rebuild()  # un-permutes the stored hashes before building afresh
    assert loaded.query(queries[1]) == expected and loaded.delta_size == 0


def test_hashes_and_ids_alone_answer_exactly_while_the_tables_still_download(corpus, index, tmp_path):
    # GIVEN a saved index whose bucket tables have not arrived yet
    hashes, ids, queries = corpus
    index.save(tmp_path / "idx")
    for name in ("counts.npy", "rows.npy"):
        (tmp_path / "idx" / name).unlink()
    # WHEN it is loaded as it is
    partial = PdqIndex.load(tmp_path / "idx")
    # THEN it answers by a linear scan, with the same results
    assert not partial._main.has_tables
    for q in queries:
        assert partial.query(q) == index.query(q)


def test_an_index_saved_in_format_1_is_still_read(corpus, index, tmp_path):
    # GIVEN the previous on-disk form: bucket offsets and id_order stored, no permutation
    import json

    from mediaguard.analysis.index import _Main

    hashes, ids, queries = corpus
    index.save(tmp_path / "idx")
    d = tmp_path / "idx"
    main = index._main
    np.save(d / "offsets.npy", np.asarray(main.offsets))
    np.save(d / "id_order.npy", np.argsort(np.asarray(main.ids), kind="stable").astype(np.uint32))
    (d / "counts.npy").unlink()
    meta = json.loads((d / "meta.json").read_text())
    meta["format"] = 1
    del meta["perm"], meta["load"]
    (d / "meta.json").write_text(json.dumps(meta))
    # WHEN a container that runs this version loads it
    old = PdqIndex.load(d)
    # THEN it matches as before and can still withdraw entries
    assert isinstance(old._main, _Main) and old._main.has_tables
    for q in queries:
        assert old.query(q) == index.query(q)
    assert old.remove(100_000) == 1
