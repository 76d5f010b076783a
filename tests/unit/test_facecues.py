"""Face-manipulation cues: synthetic face swaps score above their own unswapped sources,
and any box on any picture gives finite cues.

Swaps are made by ``bench/swaps.py`` from photos scikit-image ships: a donor face (another
photo's face, a 25 px Labeled-Faces-in-the-Wild crop, or the target's own face re-rendered
at 64 px) resized into the target's face box, colour-matched, blended through a feathered
ellipse and saved again as JPEG. The control is the same target through the same saves.
``python -m bench.facecues`` measures the same cues on 1,584 swaps and 486 controls.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from bench.swaps import FACES, Recipe, make
from mediaguard.analysis.facecues import face_cues

# Targets: two human faces and a face-sized box on a colour photo without one.
TARGETS = (("astronaut", FACES["astronaut"]), ("camera", FACES["camera"]), ("rocket", (230, 170, 110, 130)))
DONORS = ("self:64", "lfw:0", "lfw:1", "other")


def _pairs(quality: int) -> list[tuple[Recipe, dict, dict]]:
    out = []
    for target, box in TARGETS:
        for donor in DONORS:
            if donor == "other":
                donor = "camera" if target == "astronaut" else "astronaut"
            recipe = Recipe(target, box, donor, "feather", prejpeg=90, quality=quality)
            out.append((recipe, face_cues(*make(recipe, swap=True)), face_cues(*make(recipe, swap=False))))
    return out


@pytest.fixture(scope="module")
def pairs() -> list[tuple[Recipe, dict, dict]]:
    return _pairs(95) + _pairs(80)


def test_every_swap_scores_above_its_unswapped_source(pairs):
    # GIVEN 24 swaps (3 targets x 4 donors, final JPEG at 95 and 80) and their unswapped sources
    # WHEN each face box is scored
    gaps = [swap["score"] - source["score"] for _, swap, source in pairs]
    # THEN every swap scores above its own source: the smallest gap measured was 0.20 (the
    # astronaut's full-resolution face into the cameraman photo at q95); 0.1 leaves room for a
    # Pillow/numpy change without hiding a regression to chance
    assert min(gaps) > 0.1, [(p[0].target, p[0].donor, p[0].quality, round(g, 3)) for p, g in zip(pairs, gaps, strict=True)]


def test_real_faces_score_low_and_most_swaps_high(pairs):
    # GIVEN the same swaps and sources
    sources = [source["score"] for _, _, source in pairs]
    swaps = [swap["score"] for _, swap, _ in pairs]
    # THEN the real faces sit near the bottom of the scale (measured 0.04-0.18) and the median
    # swap well above the midpoint (measured 0.91)
    assert max(sources) < 0.3
    assert np.median(swaps) > 0.6


def test_the_face_lacks_the_fine_detail_of_its_surroundings_after_a_swap(pairs):
    # GIVEN the same swaps and sources
    noise = [swap["noise_mismatch"] - source["noise_mismatch"] for _, swap, source in pairs]
    colour = [swap["colour_mismatch"] - source["colour_mismatch"] for r, swap, source in pairs if r.target != "camera"]
    # THEN on average the face loses fine-scale detail against its ring (measured mean +0.56)
    # and, on colour photos, its colour channels agree less (measured mean +0.30)
    assert np.mean(noise) > 0.25
    assert np.mean(colour) > 0.1
    # AND the unswapped grey cameraman photo has no colour cue at all (its swaps may: a colour
    # donor leaves a faint tint after colour matching)
    assert all(source["colour_mismatch"] == 0.0 for r, _, source in pairs if r.target == "camera")


@pytest.mark.parametrize("box", [
    (0, 0, 120, 140),  # at the top-left corner: most of the ring is off the picture
    (440, 400, 120, 140),  # past the bottom-right edge
    (250, 100, 6, 7),  # a face too small to measure
    (-50, -50, 2000, 2000),  # bigger than the picture
    (600, 600, 50, 50),  # wholly outside
    (10.5, 20.25, 99.9, 120.1),  # float box, as a detector gives it
])
def test_any_box_gives_finite_cues(box):
    # GIVEN the astronaut photo and a box at an edge, tiny, huge, outside, or in floats
    img = make(Recipe("astronaut", FACES["astronaut"], quality=80), swap=False)[0]
    # WHEN it is scored
    cues = face_cues(img, box)
    # THEN no error, every value is finite and the score is in [0, 1]
    assert set(cues) == {"noise_mismatch", "colour_mismatch", "score"}
    assert all(math.isfinite(v) for v in cues.values())
    assert 0.0 <= cues["score"] <= 1.0


def test_a_tiny_face_or_flat_picture_carries_no_evidence():
    # GIVEN a flat grey picture and a real photo with a 6 px box
    grey = Image.new("RGB", (320, 240), (128, 128, 128))
    photo = make(Recipe("astronaut", FACES["astronaut"]), swap=False)[0]
    # WHEN they are scored
    flat, tiny = face_cues(grey, (100, 60, 120, 140)), face_cues(photo, (250, 100, 6, 7))
    # THEN both cues are 0: nothing differs, or too few pixels to say
    for cues in (flat, tiny):
        assert cues["noise_mismatch"] == 0.0 and cues["colour_mismatch"] == 0.0
        assert cues["score"] < 0.3
