"""The signal registry: one contract every registered kind honours, and what each kind
adds on top of it (vPDQ's frame shares, the embedding's stored form).

A kind added to ``mediaguard.signals.REGISTRY`` is covered by :class:`TestSignalTypeContract`
without editing this file; hash kinds also run ``test_fingerprint.TestHexHashContract``.
"""

from __future__ import annotations

import importlib
import itertools
import json
import numbers
import subprocess
import sys

import numpy as np
import pytest

from mediaguard.adapters.tables import MediaItem
from mediaguard.models import Fingerprints
from mediaguard.signals import (
    REGISTRY,
    STILL_KINDS,
    EmbeddingSignal,
    PdqSignal,
    SignalType,
    VpdqSignal,
    item_fields,
    record_fields,
)

KINDS = list(REGISTRY.values())


@pytest.mark.parametrize("signal", KINDS, ids=list(REGISTRY))
class TestSignalTypeContract:
    """What every fingerprint kind promises."""

    def test_declares_name_content_types_threshold_and_examples(self, signal: type[SignalType]):
        assert REGISTRY[signal.name] is signal
        assert signal.name.isidentifier() and signal.name == signal.name.lower()
        assert signal.content_types and set(signal.content_types) <= {"photo", "video", "audio"}
        # The threshold is defined on the class, as a number (not a bool, not None)
        assert isinstance(signal.match_threshold, numbers.Real) and not isinstance(signal.match_threshold, bool)
        assert signal.match_threshold > 0
        assert len(signal.examples) >= 2

    def test_a_matched_kind_names_an_index_class_that_exists(self, signal):
        # GIVEN a kind WHEN it is matched THEN its index names a class with build/query; else none
        if not signal.matched:
            assert signal.index is None
            return
        module, _, name = signal.index.partition(":")
        index_class = getattr(importlib.import_module(module), name)
        assert callable(index_class.build) and callable(index_class.query)

    def test_examples_validate_as_themselves_and_validation_is_idempotent(self, signal):
        for example in signal.examples:
            assert signal.validate(example) == example
            assert signal.validate(signal.validate(example)) == example
            assert signal.validate(f"  {example}\n") == example

    @pytest.mark.parametrize("mangle", [
        pytest.param(lambda e: "", id="empty"),
        pytest.param(lambda e: "not a hash!", id="prose"),
        pytest.param(lambda e: e[:-1], id="truncated"),
        pytest.param(lambda e: e + "!", id="trailing-junk"),
    ])
    def test_malformed_string_forms_are_refused_by_validate_and_compare(self, signal, mangle):
        bad = mangle(signal.examples[0])
        with pytest.raises(ValueError):
            signal.validate(bad)
        with pytest.raises(ValueError):
            signal.compare(bad, signal.examples[0])

    def test_every_example_is_at_distance_zero_from_itself_and_matches(self, signal):
        for example in signal.examples:
            result = signal.compare(example, example)
            assert result.match and result.distance == 0
            assert signal.matches(example, example)

    def test_compare_is_symmetric_and_matches_agrees_with_it(self, signal):
        for a, b in itertools.combinations(signal.examples, 2):
            assert signal.compare(a, b) == signal.compare(b, a)
            assert signal.matches(a, b) == signal.compare(a, b).match
            assert signal.compare(a, b).distance >= 0

    def test_distinct_examples_do_not_match(self, signal):
        # The examples stand for different media: a threshold that matched them would match anything.
        for a, b in itertools.combinations(signal.examples, 2):
            assert not signal.compare(a, b).match, (a, b)

    def test_a_still_kind_records_exactly_its_declared_fields(self, signal, astronaut):
        if not signal.record_fields:  # computed elsewhere (classifier, frames stage)
            with pytest.raises(NotImplementedError):
                signal.record(astronaut)
            return
        # GIVEN a real photo WHEN the kind records it
        record = signal.record(astronaut)
        # THEN it fills every declared field, its own value is a valid string form, and the
        # fields written on the media item are among them
        assert set(record) == set(signal.record_fields)
        assert signal.validate(record[signal.name]) == record[signal.name]
        assert set(signal.item_fields) <= set(record)


# --- what the registry derives ---------------------------------------------------------


def test_fingerprints_carry_sha256_and_exactly_the_fields_the_still_kinds_record():
    assert set(Fingerprints.model_fields) == {"sha256", *record_fields()}
    assert {s.name for s in STILL_KINDS} == {"pdq", "phash", "dhash"}


def test_fingerprints_dump_in_the_order_payloads_always_had():
    assert list(Fingerprints.model_fields) == ["sha256", "pdq", "pdq_quality", "phash", "dhash", "pdq_dihedral"]


def test_the_media_item_has_an_attribute_for_every_fingerprint_field_it_records():
    # GIVEN the fields the sanitize stage writes on the item (signals.item_fields)
    # THEN the table model declares each of them (a new still kind fails here until it does)
    assert set(item_fields()) == {"pdq", "pdq_quality", "phash", "dhash"}
    assert set(item_fields()) <= set(MediaItem.get_attributes())


def test_fingerprints_item_fields_are_what_the_item_records():
    fps = Fingerprints(sha256="a" * 64, pdq=PdqSignal.examples[0], pdq_quality=90, phash="c3973c6b9c3c3c63",
                       dhash="0e2e6c6c6c2c0c0c")
    assert fps.item_fields() == {"pdq": PdqSignal.examples[0], "pdq_quality": 90, "phash": "c3973c6b9c3c3c63",
                                 "dhash": "0e2e6c6c6c2c0c0c"}


def test_only_what_banks_can_hold_is_matched():
    # pHash/dHash are recorded, not matched (signals' docstring says why)
    assert {s.name for s in KINDS if s.matched} == {"pdq", "vpdq", "embedding", "clip", "audio"}


# --- vPDQ ------------------------------------------------------------------------------


def flip(hex_: str, bits: int) -> str:
    return f"{int(hex_, 16) ^ ((1 << bits) - 1):064x}"


FRAMES = [(np.random.default_rng(seed).bytes(32).hex(), 90) for seed in range(10)]


def test_a_reencoded_video_matches_when_enough_frames_match_both_ways():
    # GIVEN ten banked frames and a copy whose frames moved a few bits, two of them replaced
    copy = [(flip(h, 5), q) for h, q in FRAMES[:8]] + [(flip(FRAMES[0][0], 200), 90), (flip(FRAMES[1][0], 190), 90)]
    # WHEN the two are compared in their string form
    result = VpdqSignal.compare(VpdqSignal.format(copy), VpdqSignal.format(FRAMES))
    # THEN 8 of 10 frames on each side is exactly the 0.8 share required
    assert VpdqSignal.shares(copy, FRAMES) == (0.8, 0.8)
    assert result.match and result.distance == pytest.approx(0.2)


def test_a_video_sharing_too_few_frames_does_not_match():
    clip = FRAMES[:7] + [(flip(h, 128), q) for h, q in FRAMES[7:]]
    assert VpdqSignal.shares(clip, FRAMES) == (0.7, 0.7)
    assert not VpdqSignal.compare(VpdqSignal.format(clip), VpdqSignal.format(FRAMES)).match


def test_vpdq_frames_below_pdq_quality_floor_are_ignored():
    flat = [(h, PdqSignal.min_quality - 1) for h, _ in FRAMES]
    assert VpdqSignal.shares(flat, FRAMES) == (0.0, 0.0)


@pytest.mark.parametrize("frames", [
    pytest.param([{"hash": "00" * 32}], id="no-quality"),
    pytest.param([{"hash": "00" * 32, "quality": 101}], id="quality-over-100"),
    pytest.param([{"hash": "00" * 31, "quality": 50}], id="short-hash"),
    pytest.param([{"hash": "00" * 32, "quality": 50, "frame_number": -1}], id="negative-frame"),
    pytest.param([], id="no-frames"),
    pytest.param({"hash": "00" * 32, "quality": 50}, id="not-a-list"),
])
def test_vpdq_string_forms_with_invalid_frames_are_refused(frames):
    with pytest.raises(ValueError):
        VpdqSignal.validate(json.dumps(frames))


def test_vpdq_validate_canonicalises_key_order_and_fills_frame_numbers():
    loose = json.dumps([{"quality": 90, "hash": FRAMES[0][0].upper()}, {"hash": FRAMES[1][0], "quality": 80}])
    assert VpdqSignal.validate(loose) == VpdqSignal.format([(FRAMES[0][0], 90), (FRAMES[1][0], 80)])


# --- embeddings ------------------------------------------------------------------------


def test_an_embedding_is_stored_as_normalised_little_endian_float16():
    v = np.random.default_rng(1).normal(size=EmbeddingSignal.dimension)
    back = EmbeddingSignal.decode(EmbeddingSignal.encode(v))
    assert back.dtype == EmbeddingSignal.dtype and back.shape == (EmbeddingSignal.dimension,)
    assert float(np.dot(back, v / np.linalg.norm(v))) > 0.999


def test_embeddings_match_at_the_cosine_threshold_and_not_below():
    # GIVEN unit vectors at cosine 0.95 and 0.85 from a reference (threshold 0.90)
    ref = EmbeddingSignal.encode([1.0, 0.0])
    near = EmbeddingSignal.encode([0.95, np.sqrt(1 - 0.95**2)])
    far = EmbeddingSignal.encode([0.85, np.sqrt(1 - 0.85**2)])
    # THEN the first matches and the second does not; a bank's own threshold is honoured
    assert EmbeddingSignal.compare(near, ref).match and not EmbeddingSignal.compare(far, ref).match
    assert EmbeddingSignal.compare(far, ref, threshold=0.8).match


def test_embeddings_of_different_sizes_are_not_compared():
    with pytest.raises(ValueError, match="different sizes"):
        EmbeddingSignal.compare(EmbeddingSignal.encode([1.0, 0.0]), EmbeddingSignal.encode([1.0, 0.0, 0.0]))


def test_the_registry_sits_below_every_area_and_leaves_pdqhash_unloaded():
    # GIVEN a fresh interpreter WHEN it imports the registry
    code = ("import sys, mediaguard.signals; "
            "print(sorted(m for m in sys.modules if m.startswith(('mediaguard', 'pdqhash'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # THEN nothing of the areas above it (nor the compiled PDQ extension) came along
    assert all(m == "mediaguard" or m.startswith("mediaguard.signals") for m in json.loads(loaded.replace("'", '"')))
