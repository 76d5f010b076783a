"""Every accepted format, round-tripped through sanitize: what is served decodes in a
browser format, carries no EXIF/XMP/GPS/comment, stands upright, keeps its colour
profile and (for animations) every frame with its timing. Plus the frame, side and
polyglot guards, from bytes the tests build out of a real photo."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from mediaguard import errors
from mediaguard.ingress.media import (
    GIF,
    HEIF,
    JPEG,
    PNG,
    SERVED_KINDS,
    STILL_KINDS,
    TIFF,
    WEBP,
    check_declared,
    check_frames,
    sniff,
)
from mediaguard.ingress.sanitize import sanitize

pillow_heif.register_heif_opener()  # the tests encode HEIF; the code under test registers its own

MAX_PIXELS = 50_000_000
SECRETS = (b"MAKE-SECRET-PhoneCo", b"XMP-SECRET-Jane", b"COMMENT-SECRET", b"TEXT-SECRET", b"2026:11:23")
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description dc:creator="XMP-SECRET-Jane"/></rdf:RDF></x:xmpmeta>'


def clean(data: bytes, **limits):
    return sanitize(data, sniff(data), max_pixels=limits.pop("max_pixels", MAX_PIXELS), **limits)


def secret_exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "MAKE-SECRET-PhoneCo"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 12.5)
    gps[ExifTags.GPS.GPSDateStamp] = "2026:11:23"
    return exif.tobytes()


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def with_metadata(img: Image.Image, fmt: str, icc: bytes, orientation: int | None = None) -> bytes:
    """``img`` as ``fmt`` carrying EXIF with GPS (and an orientation), XMP, text and the ICC profile,
    each in the way that format stores it."""
    exif = secret_exif(orientation)
    if fmt == "JPEG":
        return encode(img, "JPEG", quality=92, exif=exif, xmp=XMP, icc_profile=icc, comment=b"COMMENT-SECRET")
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "TEXT-SECRET")
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        return encode(img, "PNG", pnginfo=info, exif=exif, icc_profile=icc)
    if fmt == "WEBP":
        return encode(img, "WEBP", quality=90, exif=exif, xmp=XMP, icc_profile=icc)
    if fmt == "TIFF":
        # TIFF tags live in IFD0 beside the EXIF and GPS IFDs: add ImageDescription (270) and XMP (700).
        tags = Image.Exif()
        tags.load(exif)
        tags[270], tags[700] = "TEXT-SECRET", XMP
        # Uncompressed: Pillow's own writer keeps the GPS IFD (libtiff's drops it), and raw pixel
        # bytes are the worst case for false polyglot matches.
        return encode(img, "TIFF", exif=tags, icc_profile=icc)
    if fmt == "HEIF":
        return encode(img, "HEIF", quality=90, exif=exif, xmp=XMP, icc_profile=icc)
    if fmt == "GIF":
        return encode(img.quantize(128), "GIF", comment=b"COMMENT-SECRET")
    raise AssertionError(fmt)


@pytest.fixture
def landscape(astronaut) -> Image.Image:
    """A 320x240 crop of a real photo."""
    return astronaut.crop((96, 0, 416, 240))


# --- sniffing -----------------------------------------------------------------------------


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 16


@pytest.mark.parametrize(
    "data,kind",
    [
        pytest.param(ftyp(b"heic", b"mif1", b"heic"), HEIF, id="heic"),
        pytest.param(ftyp(b"mif1", b"heic"), HEIF, id="mif1-major"),
        pytest.param(ftyp(b"heix", b"mif1"), HEIF, id="heix-10bit"),
        pytest.param(ftyp(b"msf1", b"hevc"), HEIF, id="sequence"),
        pytest.param(b"II*\x00\x08\x00\x00\x00", TIFF, id="tiff-little-endian"),
        pytest.param(b"MM\x00*\x00\x00\x00\x08", TIFF, id="tiff-big-endian"),
    ],
)
def test_sniff_knows_heif_brands_and_tiff_byte_orders(data, kind):
    assert sniff(data) is kind


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(ftyp(b"avif", b"mif1", b"miaf"), id="avif"),
        pytest.param(ftyp(b"mif1", b"avif"), id="avif-behind-mif1"),
        pytest.param(ftyp(b"isom", b"mp41"), id="mp4"),
        pytest.param(ftyp(b"qt  "), id="mov"),
        pytest.param(b"II+\x00\x08\x00\x00\x00" + b"\x00" * 8, id="bigtiff"),
        pytest.param(b"\x00\x00\x00\x18ftypheic", id="ftyp-cut-short"),
    ],
)
def test_sniff_refuses_avif_video_bigtiff_and_cut_boxes(data):
    with pytest.raises(errors.UnsupportedMediaError):
        sniff(data)


def test_heic_may_be_declared_as_heic_or_heif_but_not_as_jpeg():
    for declared in ("image/heic", "image/heif", "image/HEIF; charset=binary"):
        check_declared(HEIF, declared)
    with pytest.raises(errors.ContentTypeMismatchError):
        check_declared(HEIF, "image/jpeg")


# --- round trip per format --------------------------------------------------------------------

# sniffed format -> what is served
SERVED = {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP, "GIF": GIF, "TIFF": PNG, "HEIF": JPEG}


@pytest.mark.parametrize("fmt", list(SERVED))
def test_each_format_is_served_decodable_private_and_colour_managed(landscape, srgb_icc, fmt):
    # GIVEN a real photo in `fmt` carrying EXIF with GPS, XMP, text/comments and an ICC profile
    data = with_metadata(landscape, fmt, srgb_icc)
    assert sniff(data) in STILL_KINDS
    # WHEN sanitized
    result = clean(data)
    # THEN what is served is a browser format that decodes to the same picture
    assert result.kind is SERVED[fmt] and result.kind in SERVED_KINDS
    assert sniff(result.data) is result.kind
    out = decoded(result.data)
    assert out.format == result.kind.pillow_format
    assert out.size == (result.width, result.height) == (320, 240)
    diff = np.abs(np.asarray(out.convert("RGB"), int) - np.asarray(decoded(data).convert("RGB"), int))
    assert diff.mean() < 4
    # AND no EXIF, GPS, XMP, text chunk or comment survives, in any form
    assert [s for s in SECRETS if s in result.data] == []
    assert not out.getexif() and not out.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert {"exif", "xmp", "comment", "XML:com.adobe.xmp", "Comment"}.isdisjoint(out.info)
    # AND the colour profile is kept, byte for byte (GIF has none to keep)
    if fmt != "GIF":
        assert out.info.get("icc_profile") == srgb_icc
    assert result.removed, "the removed list names what went"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "HEIF"])
def test_exif_orientation_is_applied_before_the_exif_goes(landscape, srgb_icc, fmt):
    # GIVEN a 320x240 photo whose EXIF says "turn 90 degrees clockwise to display" (HEIF
    # stores that as an irot transform, which libheif applies on decode)
    data = with_metadata(landscape, fmt, srgb_icc, orientation=6)
    # WHEN sanitized
    result = clean(data)
    # THEN it is served upright, 240x320, turned clockwise, with no orientation tag left
    out = decoded(result.data)
    assert out.size == (result.width, result.height) == (240, 320)
    assert ExifTags.Base.Orientation not in out.getexif()
    expected = np.rot90(np.asarray(landscape, int), k=-1)
    assert np.abs(np.asarray(out.convert("RGB"), int) - expected).mean() < 6


def test_png_sanitize_stays_lossless_when_upright(landscape, srgb_icc):
    data = with_metadata(landscape, "PNG", srgb_icc)
    result = clean(data)
    assert result.method == "png-chunks"
    assert np.array_equal(np.asarray(decoded(result.data)), np.asarray(landscape))


def test_tiff_is_served_as_lossless_png_of_its_first_page(landscape, srgb_icc):
    # GIVEN a two-page TIFF: the photo, then a second page
    data = encode(landscape, "TIFF", save_all=True, append_images=[landscape.rotate(90)], icc_profile=srgb_icc,
                  tiffinfo={271: "MAKE-SECRET-PhoneCo"})
    # WHEN sanitized
    result = clean(data)
    # THEN page one is served as PNG, pixel for pixel, and the dropped page is listed
    assert result.kind is PNG
    assert np.array_equal(np.asarray(decoded(result.data).convert("RGB")), np.asarray(landscape))
    assert "pages-dropped:1" in result.removed and "make" in result.removed
    assert b"MAKE-SECRET" not in result.data


@pytest.mark.parametrize("mode", ["I;16", "CMYK", "LA"])
def test_tiff_modes_png_cannot_hold_are_converted(landscape, mode):
    img = landscape.convert("L").convert("I;16") if mode == "I;16" else landscape.convert(mode)
    result = clean(encode(img, "TIFF"))
    out = decoded(result.data)
    assert result.kind is PNG and out.size == (320, 240)
    assert out.mode in ("I;16", "I", "RGB", "LA", "RGBA")



@pytest.mark.parametrize(("fmt", "widen"), [
    ("PNG", lambda g: Image.fromarray(g.astype(np.uint16) * 257)),
    ("TIFF", lambda g: Image.fromarray(g.astype(np.uint16) * 257)),
    ("TIFF", lambda g: Image.fromarray(g.astype(np.float32) / 255)),
    ("TIFF", lambda g: Image.fromarray(g.astype(np.float32))),
], ids=["png-16", "tiff-16", "tiff-float-0..1", "tiff-float-0..255"])
def test_a_deep_grey_copy_fingerprints_like_the_8_bit_picture(landscape, fmt, widen):
    # GIVEN a grey photo and a copy of it widened to 16 bits or to float (Pillow's own
    # conversion clipped these at 255: a white picture, PDQ quality 0, no bank match)
    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    grey = np.asarray(landscape.convert("L"))
    original = prepare(encode(Image.fromarray(grey), "PNG"), "image/png", Settings())
    # WHEN the copy is prepared as an upload
    copy = prepare(encode(widen(grey), fmt), f"image/{fmt.lower()}", Settings())
    # THEN it hashes as the picture it shows, with full quality
    assert copy.fingerprints.pdq == original.fingerprints.pdq
    assert copy.fingerprints.pdq_quality == original.fingerprints.pdq_quality > 0
    # AND the served copy shows that picture (16 bits stay 16 bits; float becomes 8-bit grey)
    served = np.asarray(decoded(copy.sanitized.data), dtype=np.float64)
    assert np.abs(served / (257 if served.max() > 255 else 1) - grey).max() <= 1



def test_making_a_deep_grey_picture_8_bit_holds_one_block_of_rows_not_float_copies():
    import tracemalloc

    from mediaguard.ingress.media import to_8bit

    # GIVEN a 4000 x 4000 16-bit grey picture (a whole-picture float64 copy is 128 MB, and
    # the first version made five: 2.1 GB for a 64 MP upload of 582 KB)
    deep = Image.fromarray(np.tile(np.arange(4000, dtype=np.uint16) * 16, (4000, 1)))
    # WHEN it is made 8-bit, numpy's allocations traced (allocation sizes, not timing)
    tracemalloc.start()
    out = to_8bit(deep)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # THEN it held the result (16 MB, and Pillow's copy of it) and a block of rows: less than
    # one whole-picture float32 copy (64 MB); and the result is the picture
    assert peak < 56 * 1024 * 1024, peak
    assert np.asarray(out)[0, :3].tolist() == [0, 0, 0] and np.asarray(out)[0, -1] == round(3999 * 16 / 257)

def test_deep_grey_values_outside_the_usual_ranges_are_stretched_not_clipped():
    from mediaguard.ingress.media import to_8bit

    # GIVEN 32-bit values past 16 bits, and float with negative values
    wide = Image.fromarray(np.array([[0, 1 << 20], [1 << 19, 1 << 18]], dtype=np.int32))
    signed = Image.fromarray(np.array([[-1.0, 0.0], [1.0, 3.0]], dtype=np.float32))
    # WHEN made 8-bit THEN their own range spans 0..255, in order
    assert np.asarray(to_8bit(wide)).tolist() == [[0, 255], [128, 64]]
    assert np.asarray(to_8bit(signed)).tolist() == [[0, 64], [128, 255]]

def test_heif_with_alpha_is_served_as_png(landscape):
    rgba = landscape.convert("RGBA")
    rgba.putalpha(128)
    result = clean(encode(rgba, "HEIF", quality=90, exif=secret_exif()))
    assert result.kind is PNG and decoded(result.data).mode == "RGBA"
    assert b"MAKE-SECRET" not in result.data


def test_heif_burst_serves_the_primary_image_and_lists_the_rest(landscape):
    data = encode(landscape, "HEIF", save_all=True, append_images=[landscape.rotate(180)], quality=80)
    result = clean(data)
    assert result.kind is JPEG and "images-dropped:1" in result.removed


# --- animations --------------------------------------------------------------------------


def timings(data: bytes) -> tuple[int, list[int], int | None]:
    with Image.open(io.BytesIO(data)) as img:
        durations = []
        for index in range(img.n_frames):
            img.seek(index)
            img.load()  # WebP reports a frame's duration once it is loaded
            durations.append(img.info.get("duration"))
        return img.n_frames, durations, img.info.get("loop")


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_keeps_every_frame_its_duration_and_loop(astronaut, fmt):
    # GIVEN a 4-frame animation with uneven durations that plays 3 times, plus metadata
    frames = [astronaut.crop((x, 64, x + 96, 160)) for x in (0, 96, 192, 288)]
    if fmt == "GIF":
        frames = [f.quantize(64) for f in frames]
        extra = {"comment": b"COMMENT-SECRET"}
    else:
        extra = {"exif": secret_exif(), "xmp": XMP, "lossless": True}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=[40, 400, 80, 120], loop=3,
                  **extra)
    # WHEN sanitized
    result = clean(data)
    # THEN the animation plays exactly as before and the metadata is gone
    assert timings(result.data) == timings(data) == (4, [40, 400, 80, 120], 3)
    assert [s for s in SECRETS if s in result.data] == []
    if fmt == "WEBP":
        # a lossless WebP stays lossless: every frame is pixel-identical
        with Image.open(io.BytesIO(result.data)) as out, Image.open(io.BytesIO(data)) as src:
            for index in range(4):
                out.seek(index)
                src.seek(index)
                assert np.array_equal(np.asarray(out.convert("RGB")), np.asarray(src.convert("RGB")))


# --- frame, pixel and side limits --------------------------------------------------------------


def tiny_gif(frames: int) -> bytes:
    """``frames`` 1x1 frames: about 30 bytes each, so a 10,000-frame GIF is ~300 KB."""
    images = [Image.new("P", (1, 1), i % 2) for i in range(frames)]
    for img in images:
        img.putpalette([0, 0, 0, 255, 255, 255])
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=20, optimize=False)


def test_ten_thousand_frame_gif_is_refused_without_decoding(capsys):
    # GIVEN a 10,000-frame GIF of 1x1 frames
    data = tiny_gif(10_000)
    # WHEN sanitized under a 500-frame limit
    start = time.perf_counter()
    with pytest.raises(errors.TooManyFramesError) as raised:
        clean(data, max_frames=500)
    elapsed_ms = (time.perf_counter() - start) * 1000
    # THEN it is refused from the block structure alone, in milliseconds (Pillow's own
    # n_frames walks all 10,000 frames in ~70 ms; decoding them would take far longer)
    assert raised.value.reason == "too_many_frames"
    assert elapsed_ms < 50, elapsed_ms
    with capsys.disabled():
        print(f"\n10,000-frame GIF ({len(data)} B) refused in {elapsed_ms:.2f} ms")


def test_frames_at_the_limit_pass():
    assert clean(tiny_gif(20), max_frames=20).kind is GIF
    with pytest.raises(errors.TooManyFramesError):
        clean(tiny_gif(21), max_frames=20)


def test_total_pixels_across_frames_are_limited(astronaut):
    # GIVEN 8 frames of 96x96 (73,728 px together), each well under the per-frame limit
    frames = [astronaut.crop((x, 0, x + 96, 96)).quantize(16) for x in range(0, 384, 48)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    # THEN a 50,000-pixel total refuses it as a bomb, and a 100,000-pixel total lets it through
    with pytest.raises(errors.DecompressionBombError) as raised:
        clean(data, max_total_pixels=50_000)
    assert raised.value.reason == "decompression_bomb"
    assert clean(data, max_total_pixels=100_000).kind is GIF


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_webp_and_apng_frame_counts_are_limited_from_the_container(astronaut, fmt):
    frames = [astronaut.crop((x, 0, x + 32, 32)) for x in range(0, 320, 32)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50)
    assert check_frames(data, sniff(data), max_pixels=MAX_PIXELS, max_frames=10, max_total_pixels=10**8).count == 10
    with pytest.raises(errors.TooManyFramesError):
        clean(data, max_frames=9)


def test_tiff_page_count_is_limited(landscape):
    small = landscape.resize((8, 8))
    data = encode(small, "TIFF", save_all=True, append_images=[small] * 30)
    with pytest.raises(errors.TooManyFramesError):
        clean(data, max_frames=30)


def test_tiff_page_chain_that_loops_is_corrupt(landscape):
    data = bytearray(encode(landscape.resize((8, 8)), "TIFF"))
    (first,) = struct.unpack("<I", data[4:8])
    (entries,) = struct.unpack("<H", data[first : first + 2])
    next_pointer = first + 2 + 12 * entries
    data[next_pointer : next_pointer + 4] = struct.pack("<I", first)  # the page points at itself
    with pytest.raises(errors.CorruptMediaError):
        clean(bytes(data))


def test_a_very_long_side_is_refused_even_within_the_pixel_limit():
    # GIVEN a 40,000 x 1 PNG: 40,000 pixels, far under max_pixels
    data = encode(Image.new("L", (40_000, 1)), "PNG")
    # THEN the side limit refuses it with its own reason
    with pytest.raises(errors.DimensionsTooLargeError) as raised:
        clean(data, max_side=32_768)
    assert raised.value.reason == "dimensions_too_large"


def test_gif_frame_larger_than_its_screen_is_checked(astronaut):
    # GIVEN a GIF whose logical screen says 16x16 but whose frame descriptor says 2000x2000
    data = bytearray(encode(Image.new("P", (2000, 2000), 0), "GIF"))
    data[6:10] = struct.pack("<HH", 16, 16)
    with pytest.raises(errors.DecompressionBombError):
        clean(bytes(data), max_pixels=1_000_000)


# --- polyglots -----------------------------------------------------------------------------


def zip_archive() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload.php", "<?php system($_GET['c']); ?>")
    return buf.getvalue()


def png_with_text(img: Image.Image, key: str, text: str, compressed: bool) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, text, zip=compressed)
    return encode(img, "PNG", pnginfo=info)


def png_with_broken_itxt(img: Image.Image, text: bytes) -> bytes:
    """A PNG whose compressed iTXt lacks the translated-keyword terminator: no text by the
    spec, but a lenient reader inflates what follows the language tag. ``text`` must
    deflate to a stream with no NUL byte, or the chunk would read as well-formed."""
    compressed = zlib.compress(text)
    assert b"\x00" not in compressed
    body = b"Comment\x00\x01\x00en\x00" + compressed
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    data = encode(img, "PNG")
    return data[:33] + chunk + data[33:]


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda img: encode(img, "JPEG") + zip_archive(), id="jpeg+zip"),
        pytest.param(lambda img: encode(img, "PNG") + b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF", id="png+pdf"),
        pytest.param(lambda img: encode(img, "JPEG", comment=b"<?php echo shell_exec($_GET['c']); ?>"),
                     id="php-in-jpeg-comment"),
        pytest.param(lambda img: encode(img, "WEBP", xmp=b"<x:xmpmeta><script>alert(1)</script></x:xmpmeta>"),
                     id="script-in-webp-xmp"),
        pytest.param(lambda img: png_with_text(img, "Comment", "<html><body onload=alert(1)>", True),
                     id="html-in-compressed-png-text"),
        pytest.param(lambda img: png_with_broken_itxt(img, b"<script>hw</script>"),
                     id="script-in-malformed-compressed-itxt"),
        pytest.param(lambda img: encode(img, "JPEG") + b"\x7fELF\x02\x01\x01" + b"\x00" * 64, id="jpeg+elf"),
        pytest.param(lambda img: encode(img.quantize(16), "GIF") + b"<script>alert(1)</script>", id="gif+html"),
        pytest.param(lambda img: encode(img, "TIFF") + zip_archive(), id="tiff+zip"),
    ],
)
def test_polyglots_are_refused(astronaut, build):
    data = build(astronaut.resize((64, 64)))
    with pytest.raises(errors.PolyglotError) as raised:
        clean(data)
    assert raised.value.reason == "polyglot"


def test_gif_javascript_polyglot_is_refused():
    # GIVEN the classic GIF/JS polyglot: the screen width bytes open a JS comment ("/*" is
    # 10,799 px) and the bytes after the trailer close it and run code
    data = bytearray(encode(Image.new("P", (4, 4), 0), "GIF"))
    data[6:8] = b"/*"
    data += b"*/=1;alert(document.domain);"
    with pytest.raises(errors.PolyglotError):
        clean(bytes(data))


@pytest.mark.parametrize(
    "trailer",
    [
        pytest.param(b"\x00" * 512, id="zero-padding"),
        pytest.param(struct.pack(">I", 24) + b"ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 8,
                     id="motion-photo-mp4"),
    ],
)
def test_benign_trailers_are_stripped_not_refused(astronaut, trailer):
    # GIVEN a JPEG followed by padding or a motion photo's MP4, as phones write them
    data = encode(astronaut.resize((64, 64)), "JPEG") + trailer
    # WHEN sanitized THEN the trailer is stripped and listed, the photo accepted
    result = clean(data)
    assert result.removed == [f"trailing-data:{len(trailer)}B"]
    assert trailer not in result.data


def test_every_new_rejection_has_its_own_reason():
    reasons = {cls.reason for cls in errors.REJECTION_ERRORS}
    assert {"too_many_frames", "dimensions_too_large", "polyglot"} <= reasons
    assert len(reasons) == len(errors.REJECTION_ERRORS)


def test_zero_width_png_is_corrupt(landscape):
    png = encode(landscape, "PNG")
    ihdr = struct.pack(">II", 0, 240) + png[24:29]
    data = png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]
    with pytest.raises(errors.CorruptMediaError):
        clean(data)
