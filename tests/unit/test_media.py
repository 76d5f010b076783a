"""Sniffing, declared-type and size checks, and guarded decoding of still images."""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mediaguard import errors
from mediaguard.ingress.media import GIF, JPEG, PNG, WEBP, check_declared, check_size, load_rgb, open_image, sniff
from mediaguard.settings import Settings

SMALL = (64, 48)
DEFAULT_MAX_PIXELS = Settings().max_pixels


@pytest.fixture
def photo(astronaut) -> Image.Image:
    return astronaut.resize(SMALL)


@pytest.fixture
def encoded(photo, media_bytes) -> dict[str, bytes]:
    """The same small real photo in each supported format."""
    return {
        "jpeg": media_bytes.encode(photo, "JPEG"),
        "png": media_bytes.encode(photo, "PNG"),
        "webp": media_bytes.encode(photo, "WEBP"),
        "gif": media_bytes.encode(photo.quantize(64), "GIF"),
    }


def with_png_dimensions(png: bytes, width: int, height: int) -> bytes:
    """``png`` with IHDR claiming ``width`` x ``height`` and a valid CRC; the pixel data stays small."""
    assert png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + png[24:29]
    return png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]


def with_jpeg_dimensions(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its baseline SOF0 claiming ``width`` x ``height`` (JPEG has no checksums)."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]


# --- sniff ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kind",
    [("jpeg", JPEG), ("png", PNG), ("webp", WEBP), ("gif", GIF)],
)
def test_sniff_names_the_kind_from_the_bytes(encoded, name, kind):
    # GIVEN a real image of each supported kind WHEN sniffed THEN the kind comes from its magic bytes
    assert sniff(encoded[name]) is kind
    assert kind.name == name


def test_sniff_ignores_what_the_file_claims_to_be(encoded):
    # GIVEN PNG bytes declared as JPEG WHEN sniffed THEN the bytes win
    assert sniff(encoded["png"]) is PNG
    with pytest.raises(errors.ContentTypeMismatchError):
        check_declared(sniff(encoded["png"]), "image/jpeg")


def test_sniff_refuses_an_empty_upload():
    with pytest.raises(errors.EmptyMediaError):
        sniff(b"")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(random.Random(0).randbytes(4096), id="random-bytes"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", id="pdf"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", id="riff-wave"),
        pytest.param(b"GIF88a\x01\x00\x01\x00", id="gif-bad-version"),
        pytest.param(b"\xff\xd8", id="jpeg-soi-only"),
        pytest.param(b"\x00\x00\x00\x18ftypheic", id="heic"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
    ],
)
def test_sniff_refuses_anything_else(data):
    with pytest.raises(errors.UnsupportedMediaError):
        sniff(data)


# --- declared type and size ----------------------------------------------------------


@pytest.mark.parametrize(
    "declared",
    [None, "", "image/png", "IMAGE/PNG", "image/png; charset=binary", "application/octet-stream"],
)
def test_declared_type_that_agrees_or_says_nothing_passes(declared):
    check_declared(PNG, declared)  # THEN no error


@pytest.mark.parametrize("declared", ["image/jpeg", "image/gif", "text/html", "image/svg+xml", "image/pngx"])
def test_declared_type_that_disagrees_is_refused(declared):
    with pytest.raises(errors.ContentTypeMismatchError):
        check_declared(PNG, declared)



@pytest.mark.parametrize("declared", ["image/jpg", "image/pjpeg"])
def test_the_jpeg_types_older_clients_send_are_accepted_for_jpeg_bytes(declared):
    check_declared(JPEG, declared)  # THEN no error (the upload API grants them too)


@pytest.mark.parametrize("declared", ["video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp"])
def test_any_iso_video_declaration_is_accepted_for_mp4_or_quicktime_bytes(declared):
    from mediaguard.api.uploads import accepted_content_types, max_bytes_for
    from mediaguard.ingress.kinds import MOV, MP4

    # GIVEN a declaration of the MP4/QuickTime family (a renamed .mov, a .m4v, a phone's .3gp)
    # THEN the upload API grants it under the video size limit, and either format's bytes agree
    assert declared in accepted_content_types()
    assert max_bytes_for(declared, Settings()) == Settings().max_video_bytes
    for fmt in (MP4, MOV):
        assert declared in (fmt.content_type, *fmt.aliases)


def test_every_50_mp_phone_mode_is_within_the_default_pixel_limit_and_108_mp_is_not():
    from mediaguard.ingress.media import check_dimensions

    # GIVEN the default limits, a Pixel's "50 MP" photo (8160 x 6144 = 50.1 MP) and a 108 MP one
    limits = {"max_pixels": Settings().max_pixels, "max_side": Settings().max_side}
    # THEN the first passes (a 50 MP cap refused it as a decompression bomb), the second is refused
    check_dimensions(8160, 6144, **limits)
    with pytest.raises(errors.DecompressionBombError):
        check_dimensions(12000, 9000, **limits)


def test_a_blurred_derivative_of_a_large_picture_is_made_at_most_2048_px_long(photo, media_bytes):
    from mediaguard.decisions.enforcement import BLUR_MAX_SIDE, blur_image

    # GIVEN a 4000 x 3000 PNG (a PNG has no draft decode: blurring it whole cost 854 MB at 64 MP)
    big = photo.resize((4000, 3000))
    # WHEN blurred for a "blur" action
    blurred = Image.open(io.BytesIO(blur_image(media_bytes.encode(big, "PNG"), Settings().max_pixels)))
    # THEN the derivative is at most 2048 px long, in the picture's proportions
    assert blurred.size == (BLUR_MAX_SIDE, 1536)

def test_size_at_the_limit_passes_and_one_byte_over_is_refused():
    data = b"\x00" * 1000
    check_size(data, 1000)
    with pytest.raises(errors.MediaTooLargeError):
        check_size(data, 999)


# --- open_image ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jpeg", "png", "webp", "gif"])
def test_open_image_returns_the_image_within_the_limit(encoded, name):
    img = open_image(encoded[name], max_pixels=SMALL[0] * SMALL[1])
    assert img.size == SMALL


@pytest.mark.parametrize(
    "width,height",
    [
        pytest.param(20_000, 20_000, id="400MP-beyond-pillow-own-limit"),
        pytest.param(10_000, 10_000, id="100MP-in-pillow-warning-band"),
        pytest.param(9_000, 8_000, id="72MP-below-pillow-limit-above-ours"),
    ],
)
def test_png_header_claiming_too_many_pixels_is_a_bomb(encoded, width, height):
    # GIVEN a 64x48 PNG whose header (with a valid CRC) claims a much larger image
    bomb = with_png_dimensions(encoded["png"], width, height)
    # WHEN opened under the deployed 64 MP limit
    # THEN it is refused as a bomb from the header alone; had any pixel been decoded, the
    # 64x48 worth of data would have run out and surfaced as a corrupt (truncated) image
    with pytest.raises(errors.DecompressionBombError):
        open_image(bomb, max_pixels=DEFAULT_MAX_PIXELS)


def test_jpeg_header_claiming_too_many_pixels_is_a_bomb(encoded):
    bomb = with_jpeg_dimensions(encoded["jpeg"], 60_000, 60_000)
    with pytest.raises(errors.DecompressionBombError):
        open_image(bomb, max_pixels=50_000_000)


def test_pixel_limit_is_inclusive(encoded):
    pixels = SMALL[0] * SMALL[1]
    assert open_image(encoded["png"], max_pixels=pixels).size == SMALL
    with pytest.raises(errors.DecompressionBombError):
        open_image(encoded["png"], max_pixels=pixels - 1)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda png: png[:20], id="header-cut-short"),
        pytest.param(lambda png: with_png_dimensions(png, 0, 48), id="zero-width"),
        pytest.param(lambda png: png[:29] + b"\x00\x00\x00\x00" + png[33:], id="bad-ihdr-crc"),
    ],
)
def test_unreadable_header_is_corrupt(encoded, mangle):
    with pytest.raises(errors.CorruptMediaError):
        open_image(mangle(encoded["png"]), max_pixels=50_000_000)


# --- load_rgb --------------------------------------------------------------------------


def test_load_rgb_decodes_to_rgb(encoded, photo):
    rgb = load_rgb(open_image(encoded["png"], max_pixels=10_000))
    assert rgb.mode == "RGB"
    assert np.array_equal(np.asarray(rgb), np.asarray(photo))


def test_load_rgb_draft_decodes_a_jpeg_smaller_but_not_below_min_side(astronaut, media_bytes):
    # GIVEN a 512x512 JPEG WHEN decoded for a consumer that needs at least 128 px a side
    rgb = load_rgb(open_image(media_bytes.encode(astronaut, "JPEG"), max_pixels=10**6), min_side=128)
    # THEN the DCT-scaled decode is smaller than full size but no side is below 128
    assert rgb.mode == "RGB"
    assert min(rgb.size) >= 128
    assert rgb.size != astronaut.size


def test_load_rgb_composites_transparency_onto_white(media_bytes):
    # GIVEN a red RGBA image whose top half is fully transparent
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[4:, :, 3] = 255
    data = media_bytes.encode(Image.fromarray(rgba, "RGBA"), "PNG")
    # WHEN decoded to RGB
    rgb = np.asarray(load_rgb(open_image(data, max_pixels=64)))
    # THEN the transparent half is white (as it displays) and the opaque half stays red
    assert (rgb[:4] == 255).all()
    assert (rgb[4:] == (255, 0, 0)).all()


def test_load_rgb_composites_palette_transparency_onto_white(media_bytes):
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0])
    data = media_bytes.encode(img, "PNG", transparency=1)
    assert load_rgb(open_image(data, max_pixels=16)).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("mode,key", [("RGB", (0, 0, 0)), ("L", 0)])
def test_load_rgb_composites_colour_key_transparency_onto_white(media_bytes, mode, key):
    # GIVEN a PNG whose tRNS chunk makes every pixel of colour `key` transparent
    data = media_bytes.encode(Image.new(mode, (4, 4), key), "PNG", transparency=key)
    # WHEN decoded for hashing THEN it looks as it displays: white, not black
    assert load_rgb(open_image(data, max_pixels=16)).getpixel((0, 0)) == (255, 255, 255)


def test_open_image_is_lazy_and_load_rgb_reports_truncated_pixels(astronaut, media_bytes):
    # GIVEN the first half of a JPEG: intact header, missing pixels
    data = media_bytes.encode(astronaut, "JPEG")
    # WHEN opened THEN nothing is decoded yet, so it opens fine
    img = open_image(data[: len(data) // 2], max_pixels=10**6)
    assert img.size == astronaut.size
    # AND decoding it reports corrupt media, not a raw Pillow error
    with pytest.raises(errors.CorruptMediaError):
        load_rgb(img)


# --- the error family ------------------------------------------------------------------------


def test_every_rejection_has_its_own_reason_code(encoded):
    # GIVEN one upload that trips each check
    cases = {
        errors.EmptyMediaError: lambda: sniff(b""),
        errors.UnsupportedMediaError: lambda: sniff(b"%PDF-1.7\n"),
        errors.ContentTypeMismatchError: lambda: check_declared(PNG, "image/jpeg"),
        errors.MediaTooLargeError: lambda: check_size(b"\x00" * 11, 10),
        errors.DecompressionBombError: lambda: open_image(with_png_dimensions(encoded["png"], 20_000, 20_000), 10**6),
        errors.CorruptMediaError: lambda: open_image(encoded["png"][:20], 10**6),
    }
    reasons = {}
    for expected, trip in cases.items():
        # WHEN it is checked
        with pytest.raises(errors.MediaRejectedError) as raised:
            trip()
        # THEN it raises exactly that rejection, whose reason no other rejection shares
        assert type(raised.value) is expected
        reasons[expected] = raised.value.reason
    assert len(set(reasons.values())) == len(cases), reasons
    assert "rejected" not in reasons.values() and "internal_error" not in reasons.values()


def test_rejection_classes_are_a_family_with_distinct_reasons():
    assert all(issubclass(cls, errors.MediaRejectedError) for cls in errors.REJECTION_ERRORS)
    assert issubclass(errors.MediaRejectedError, errors.MediaguardError)
    reasons = [cls.reason for cls in errors.REJECTION_ERRORS]
    assert len(set(reasons)) == len(reasons), reasons


def test_reason_can_be_overridden_per_instance_without_touching_the_class():
    err = errors.MediaRejectedError("outside the upload prefix", reason="bad_key")
    assert err.reason == "bad_key"
    assert errors.MediaRejectedError("x").reason == "rejected"
    assert str(err) == "outside the upload prefix"
