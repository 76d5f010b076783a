"""Fingerprints of a still: the contract every hash kind honours on top of the shared one
(``test_signals.TestSignalTypeContract``), pinned values that guard stored hashes
against library upgrades, and bit-identity with imagehash."""

from __future__ import annotations

import io
import itertools
import os

import imagehash
import numpy as np
import pdqhash
import pytest
import skimage.data
from PIL import Image

from mediaguard.ingress.fingerprint import fingerprint
from mediaguard.models import Fingerprints
from mediaguard.signals import REGISTRY, DHashSignal, HexHashSignal, PdqSignal, PHashSignal, lanczos, pdqnative
from mediaguard.signals.base import bits_to_hex

SKIMAGE_DATA_DIR = os.path.dirname(skimage.data.__file__)
# chessboard_*.png are synthetic: every low-frequency DCT coefficient is exactly zero,
# so both our pHash and imagehash's end up thresholding floating-point rounding noise
# against its median, and agreement there would be luck, not correctness.
CORPUS = sorted(
    name for name in os.listdir(SKIMAGE_DATA_DIR) if name.endswith((".png", ".jpg")) and not name.startswith("chessboard_")
)
# Photographs of different scenes (the motorcycle stereo pair is left out: its two
# views are near-duplicates by design).
UNRELATED_PHOTOS = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "coins.png",
    "moon.png",
    "hubble_deep_field.jpg",
)
# Natural photographs for the robustness check. High-frequency textures and
# synthetic charts (brick, gravel, page, color) are left out on purpose: PDQ is
# known to move by 30-60 bits on them under a 2x downscale.
ROBUSTNESS_PHOTOS = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "horse.png",
)

# Pinned with Pillow 13.0, numpy 2.5, pdqhash 0.2.8 on skimage.data.astronaut() as RGB.
# If one of these changes, every stored fingerprint in every bank is invalidated:
# do not update them without a re-hashing plan.
ASTRONAUT_PDQ = "2d6b1af3a956c529e79ca3d2526fa834d4196c81cedd04de0a26b855fc99b724"
ASTRONAUT_PDQ_QUALITY = 100
ASTRONAUT_PHASH = "c2924c5532bddfc8"
ASTRONAUT_DHASH = "cd8dd91d897293a7"
# The eight dihedral variants (pdqhash's order), pinned alongside: banks store them too.
ASTRONAUT_PDQ_DIHEDRAL = [
    ASTRONAUT_PDQ,
    "3da7e51dad47bd78e16e670c4e2943fe4c7219cbf30992499ab254c2e6182d19",
    "783ab059fc236f83b2c90978073a029e814cc62b9ba8ae745f7352ffa9cc1d8e",
    "68f24fb3701217d2a41bcda6197cc9541927b361865c38e3cfa77a68b24d87b3",
    "0d6be50ca85632d6c79c5c29506f57c9d4199376c6ddfb210a2607aafc9948db",
    "783a4fa6fc23907cb2c9f687073afd61814c39d49b88518b5f73ed00a9cce271",
    "3da71ae2ad474287e16e98f34e29bc014c72e634d3096db69ab22b3de618d2e6",
    "68f2b04cf812e82db43b32591b7c16ab19274c9ea67cc71ccfe70197b34d784c",
]
# What each variant stands for, as the PIL operation that turns the original into it.
DIHEDRAL_ORDER = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


def load_photo(name: str) -> Image.Image:
    with Image.open(os.path.join(SKIMAGE_DATA_DIR, name)) as img:
        return img.convert("RGB")


HASH_KINDS = {name: s for name, s in REGISTRY.items() if issubclass(s, HexHashSignal)}


def flip_bits(signal: type[HexHashSignal], value: str, count: int) -> str:
    """``value`` with its ``count`` most significant bits inverted."""
    mask = ((1 << count) - 1) << (signal.bits - count)
    return format(int(value, 16) ^ mask, f"0{signal.bits // 4}x")


def jpeg_q80_half_size(img: Image.Image) -> Image.Image:
    small = img.resize((img.width // 2, img.height // 2), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=80)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize("signal", list(HASH_KINDS.values()), ids=list(HASH_KINDS))
class TestHexHashContract:
    """What every hex hash kind promises; a new one is covered by registering it."""

    def test_declares_a_usable_shape(self, signal):
        # GIVEN a registered kind
        # THEN its declarations are consistent with how it is registered and compared
        assert REGISTRY[signal.name] is signal
        assert signal.bits > 0 and signal.bits % 4 == 0
        assert 0 <= signal.match_threshold < signal.bits
        assert signal.content_types
        assert len(signal.examples) >= 1

    def test_examples_validate_as_themselves(self, signal):
        for example in signal.examples:
            assert signal.validate(example) == example

    def test_validate_canonicalises_case_and_whitespace(self, signal):
        example = signal.examples[0]
        assert signal.validate(example.upper()) == example
        assert signal.validate(f"  {example.upper()}\n") == example

    @pytest.mark.parametrize(
        "mangle",
        [
            pytest.param(lambda h: h[:-1], id="one-char-short"),
            pytest.param(lambda h: h + "0", id="one-char-long"),
            pytest.param(lambda h: h + h, id="double-length"),
            pytest.param(lambda h: "g" + h[1:], id="non-hex-char"),
            pytest.param(lambda h: "0x" + h[2:], id="0x-prefix"),
            pytest.param(lambda h: h[:4] + " " + h[5:], id="inner-space"),
            pytest.param(lambda h: "", id="empty"),
        ],
    )
    def test_validate_rejects_malformed_hashes(self, signal, mangle):
        # GIVEN a string that is not exactly bits/4 hex characters
        bad = mangle(signal.examples[0])
        # WHEN it is validated or compared THEN it is refused
        with pytest.raises(ValueError):
            signal.validate(bad)
        with pytest.raises(ValueError):
            signal.distance(bad, signal.examples[0])

    def test_distance_to_itself_is_zero(self, signal):
        example = signal.examples[0]
        assert signal.distance(example, example) == 0
        assert signal.distance(example, example.upper()) == 0
        assert signal.matches(example, example)

    @pytest.mark.parametrize("flipped", [1, 7, 33])
    def test_distance_counts_differing_bits_and_is_symmetric(self, signal, flipped):
        a = signal.examples[0]
        b = flip_bits(signal, a, flipped)
        assert signal.distance(a, b) == flipped
        assert signal.distance(b, a) == flipped

    def test_matches_is_inclusive_at_the_threshold(self, signal):
        # GIVEN hashes exactly at, and one bit past, the match threshold
        a = signal.examples[0]
        at = flip_bits(signal, a, signal.match_threshold)
        past = flip_bits(signal, a, signal.match_threshold + 1)
        # THEN the first matches and the second does not, in both directions
        assert signal.matches(a, at) and signal.matches(at, a)
        assert not signal.matches(a, past) and not signal.matches(past, a)

    def test_hash_image_returns_a_valid_hash_of_the_declared_length(self, signal, astronaut):
        value, quality = signal.hash_image(astronaut)
        assert len(value) * 4 == signal.bits
        assert signal.validate(value) == value
        assert quality is None or (isinstance(quality, int) and 0 <= quality <= 100)

    def test_hashing_is_deterministic(self, signal, astronaut):
        # GIVEN the same photo hashed twice, once from an independent copy
        first = signal.hash_image(astronaut)
        second = signal.hash_image(astronaut.copy())
        # THEN the results are identical
        assert first == second

    def test_different_photos_get_different_hashes(self, signal, astronaut):
        assert signal.hash_image(astronaut)[0] != signal.hash_image(load_photo("coffee.png"))[0]


# --- pinned values ------------------------------------------------------------


def test_astronaut_hashes_equal_the_pinned_values(astronaut):
    # GIVEN the astronaut photo WHEN every kind hashes it
    # THEN the stored fingerprints are exactly what they were when pinned
    assert PdqSignal.hash_image(astronaut) == (ASTRONAUT_PDQ, ASTRONAUT_PDQ_QUALITY)
    assert PHashSignal.hash_image(astronaut) == (ASTRONAUT_PHASH, None)
    assert DHashSignal.hash_image(astronaut) == (ASTRONAUT_DHASH, None)


def test_fingerprint_returns_every_registered_kind_the_pdq_quality_and_its_dihedral_variants(astronaut):
    assert fingerprint(astronaut) == {
        "pdq": ASTRONAUT_PDQ,
        "pdq_quality": ASTRONAUT_PDQ_QUALITY,
        "pdq_dihedral": ASTRONAUT_PDQ_DIHEDRAL,
        "phash": ASTRONAUT_PHASH,
        "dhash": ASTRONAUT_DHASH,
    }


# --- dihedral PDQ -------------------------------------------------------------------


def test_dihedral_variants_equal_the_pinned_values_and_start_with_the_pdq(astronaut):
    variants, quality = PdqSignal.hash_dihedral(astronaut)
    assert variants == ASTRONAUT_PDQ_DIHEDRAL
    assert (variants[0], quality) == PdqSignal.hash_image(astronaut)


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png", "rocket.jpg"])
@pytest.mark.parametrize("index", range(1, 8))
def test_each_dihedral_variant_is_the_hash_of_that_rotation_or_mirror(name, index):
    # GIVEN a real photo turned or mirrored by the operation variant ``index`` stands for
    original = load_photo(name)
    turned = original.transpose(DIHEDRAL_ORDER[index])
    # WHEN the original's variants are compared with the turned copy's own PDQ
    variants, _ = PdqSignal.hash_dihedral(original)
    copy_pdq, _ = PdqSignal.hash_image(turned)
    distances = [PdqSignal.distance(v, copy_pdq) for v in variants]
    # THEN that variant is the nearest and within the match threshold; the plain PDQ is not
    assert min(distances) == distances[index] <= PdqSignal.match_threshold, distances
    assert distances[0] > PdqSignal.match_threshold


def test_stored_fingerprints_without_dihedral_variants_still_validate():
    # GIVEN a payload written before pdq_dihedral existed
    old = {"sha256": "a" * 64, "pdq": ASTRONAUT_PDQ, "pdq_quality": 100, "phash": ASTRONAUT_PHASH,
           "dhash": ASTRONAUT_DHASH}
    # THEN it loads, with no variants
    assert Fingerprints.model_validate(old).pdq_dihedral == []


@pytest.mark.parametrize(
    "variants",
    [
        pytest.param(ASTRONAUT_PDQ_DIHEDRAL[:7], id="seven"),
        pytest.param(ASTRONAUT_PDQ_DIHEDRAL[1:] + ASTRONAUT_PDQ_DIHEDRAL[:1], id="pdq-not-first"),
    ],
)
def test_fingerprints_refuse_dihedral_variants_that_do_not_fit_the_pdq(variants):
    with pytest.raises(ValueError, match="pdq_dihedral"):
        Fingerprints(sha256="a" * 64, pdq=ASTRONAUT_PDQ, pdq_quality=100, phash=ASTRONAUT_PHASH,
                     dhash=ASTRONAUT_DHASH, pdq_dihedral=variants)


# --- bit-identity with imagehash -------------------------------------------------


def test_reference_corpus_is_not_empty():
    # The parametrised identity tests below would pass vacuously on an empty corpus.
    assert len(CORPUS) >= 20, CORPUS


@pytest.mark.parametrize("name", CORPUS)
def test_phash_and_dhash_are_bit_identical_to_imagehash(name):
    # GIVEN a photo from scikit-image's bundled data, decoded to RGB
    img = load_photo(name)
    # WHEN our numpy implementations and imagehash both hash it
    # THEN the hex strings are identical, so hashes from either side interoperate
    assert PHashSignal.hash_image(img)[0] == str(imagehash.phash(img))
    assert DHashSignal.hash_image(img)[0] == str(imagehash.dhash(img))


# --- the fast paths equal the libraries they replace --------------------------------

# Odd sizes on purpose: one pixel, one row, prime sides, tall and wide strips, and the
# height-shrinks-most shapes for which Pillow 13 runs its vertical pass first.
ODD_SHAPES = [(1, 1), (1, 500), (500, 1), (3, 5), (8, 9), (9, 8), (31, 33), (32, 32), (40, 7), (7, 40),
              (100, 100), (513, 777), (750, 1000), (1000, 750), (1000, 512), (2000, 64), (64, 2000), (3000, 513)]


def noise_and_smooth(shape: tuple[int, int], seed: int, channels: int | None = None) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    full = shape if channels is None else (*shape, channels)
    noise = rng.integers(0, 256, full, dtype=np.uint8)
    # A photo-like image too: smooth gradients hash near the median, where rounding shows.
    small = Image.fromarray(noise).resize((max(1, shape[1] // 8), max(1, shape[0] // 8)))
    return [noise, np.asarray(small.resize((shape[1], shape[0]), Image.Resampling.BICUBIC))]


def test_pillow_float_luma_equals_pdqhash_luma_for_every_colour():
    # GIVEN all 16.7 M RGB colours, in chunks
    for red in range(0, 256, 32):
        r, g, b = np.meshgrid(np.arange(red, red + 32, dtype=np.uint8), np.arange(256, dtype=np.uint8),
                              np.arange(256, dtype=np.uint8), indexing="ij")
        rgb = np.ascontiguousarray(np.stack([r, g, b], -1).reshape(32 * 256, 256, 3))
        # WHEN pdqhash's Python luma and Pillow's RGB->F conversion (what pdqnative feeds the C++) run
        theirs = (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype("float32")
        ours = np.asarray(Image.fromarray(rgb).convert("F"))
        # THEN every value is the same float32
        assert np.array_equal(theirs, ours)


def test_native_pdq_is_found_in_the_pinned_pdqhash():
    # The fallback exists for a future pdqhash; the pinned one must take the fast path.
    assert pdqnative.available()


@pytest.mark.parametrize("shape", ODD_SHAPES, ids=str)
def test_native_pdq_equals_pdqhash_bit_for_bit(shape):
    for pixels in noise_and_smooth(shape, seed=sum(shape), channels=3):
        img = Image.fromarray(pixels)
        # WHEN pdqhash's own API and our ctypes call of the same C++ hash one image
        vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(pixels))
        single, single_quality = pdqhash.compute(np.ascontiguousarray(pixels))
        # THEN the eight variants, the single hash and the qualities are identical
        assert pdqnative.hash_dihedral(img) == ([bits_to_hex(v) for v in vectors], quality)
        assert pdqnative.hash_image(img) == (bits_to_hex(single), single_quality)


def test_native_pdq_equals_pdqhash_on_photos():
    for name in UNRELATED_PHOTOS:
        img = load_photo(name)
        vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(np.asarray(img)))
        assert pdqnative.hash_dihedral(img) == ([bits_to_hex(v) for v in vectors], quality), name


@pytest.mark.parametrize("shape", ODD_SHAPES, ids=str)
@pytest.mark.parametrize("size", [(32, 32), (9, 8)], ids=["phash", "dhash"])
def test_matrix_lanczos_equals_pillow_bit_for_bit(shape, size):
    for grey in noise_and_smooth(shape, seed=sum(shape)):
        expected = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.LANCZOS))
        assert np.array_equal(lanczos.resize(grey, size), expected)


# --- robustness and discrimination -------------------------------------------------


@pytest.mark.parametrize("name", ROBUSTNESS_PHOTOS)
@pytest.mark.parametrize("signal", [PdqSignal, PHashSignal], ids=["pdq", "phash"])
def test_half_size_jpeg_copy_still_matches_the_original(signal, name):
    # GIVEN a real photo and a copy resized to half and re-encoded as JPEG q=80
    original = load_photo(name)
    copy = jpeg_q80_half_size(original)
    # WHEN both are hashed
    a, b = signal.hash_image(original)[0], signal.hash_image(copy)[0]
    # THEN the copy is still within the match threshold
    assert signal.matches(a, b), f"{name}: distance {signal.distance(a, b)} > {signal.match_threshold}"


@pytest.mark.parametrize("first,second", list(itertools.combinations(UNRELATED_PHOTOS, 2)))
def test_unrelated_photos_do_not_match_under_pdq(first, second):
    a = PdqSignal.hash_image(load_photo(first))[0]
    b = PdqSignal.hash_image(load_photo(second))[0]
    assert PdqSignal.distance(a, b) > PdqSignal.match_threshold
    assert not PdqSignal.matches(a, b)


def test_an_upload_is_fingerprinted_with_its_dihedral_variants(astronaut_jpeg):
    # GIVEN an uploaded JPEG WHEN it goes through the ingest path
    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    fps = prepare(astronaut_jpeg, "image/jpeg", Settings(), forensics=False).fingerprints
    # THEN the eight variants come with it, the first being the PDQ it is matched by
    assert len(fps.pdq_dihedral) == 8 and fps.pdq_dihedral[0] == fps.pdq
    assert len(set(fps.pdq_dihedral)) == 8
