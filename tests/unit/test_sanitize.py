"""Metadata removal: what must go, what must stay, and that pixels do not move."""

from __future__ import annotations

import hashlib
import io
import re
import struct

import numpy as np
import pytest
from PIL import ExifTags, Image

from mediaguard.errors import CorruptMediaError, DecompressionBombError
from mediaguard.formats import jpeg
from mediaguard.ingress.media import GIF, JPEG, PNG, WEBP, sniff
from mediaguard.ingress.sanitize import sanitize

MAX_PIXELS = 50_000_000


def clean(data: bytes, max_pixels: int = MAX_PIXELS):
    return sanitize(data, sniff(data), max_pixels=max_pixels)


def leaked(sample, out: bytes) -> list[str]:
    return [name for name, needle in sample.leaks.items() if needle in out]


def decoded_info(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as img:
        return dict(img.info)


def exif_of(data: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(data)) as img:
        return img.getexif()


# --- JPEG ---------------------------------------------------------------------


def test_jpeg_private_segments_and_trailer_are_removed_and_listed(jpeg_with_metadata):
    # GIVEN a JPEG with EXIF+GPS, XMP, a comment, an APP11 box and bytes after EOI
    # WHEN it is sanitized
    result = clean(jpeg_with_metadata.data)
    # THEN each of them is reported as removed and none of their bytes remain
    assert set(result.removed) == {"exif", "xmp", "comment", "c2pa-jumbf", f"trailing-data:{jpeg_with_metadata.trailing}B"}
    assert leaked(jpeg_with_metadata, result.data) == []
    assert result.method == "jpeg-segments"
    assert result.kind is JPEG
    assert (result.width, result.height) == (512, 512)


def test_jpeg_output_has_no_exif_and_no_gps(jpeg_with_metadata):
    # GIVEN a JPEG whose EXIF carries a GPS IFD
    assert exif_of(jpeg_with_metadata.data).get_ifd(ExifTags.IFD.GPSInfo)
    # WHEN it is sanitized
    out = clean(jpeg_with_metadata.data).data
    # THEN a decoder finds neither EXIF nor GPS, and no Exif header is left anywhere
    assert b"Exif" not in out
    assert not exif_of(out)
    assert not exif_of(out).get_ifd(ExifTags.IFD.GPSInfo)
    assert {"exif", "xmp", "comment"}.isdisjoint(decoded_info(out))


def test_jpeg_keeps_icc_profile_and_jfif_header(jpeg_with_metadata, srgb_icc, media_bytes):
    # GIVEN a JPEG with JFIF APP0 and an ICC profile among its private segments
    # WHEN it is sanitized
    out = clean(jpeg_with_metadata.data).data
    # THEN the only application segments left are the JFIF header and the ICC profile, intact
    app_segments = [(m, p) for m, p in media_bytes.jpeg_segments(out) if 0xE0 <= m <= 0xEF or m == 0xFE]
    assert [m for m, _ in app_segments] == [0xE0, 0xE2]
    assert app_segments[0][1].startswith(b"JFIF\x00")
    assert app_segments[1][1].startswith(b"ICC_PROFILE\x00")
    assert decoded_info(out)["icc_profile"] == srgb_icc


def test_jpeg_pixels_are_bit_identical(jpeg_with_metadata, media_bytes):
    result = clean(jpeg_with_metadata.data)
    assert np.array_equal(media_bytes.pixels(result.data), media_bytes.pixels(jpeg_with_metadata.data))


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"progressive": True}, id="progressive"),
        pytest.param({"restart_marker_blocks": 1}, id="restart-markers-every-mcu"),
        pytest.param({"subsampling": 0, "quality": 100}, id="4:4:4-q100"),
    ],
)
def test_jpeg_segment_walk_survives_scan_structure(astronaut, media_bytes, options):
    # GIVEN JPEGs whose entropy data holds multiple scans, restart markers, or many 0xFF00 stuffings
    original = media_bytes.encode(astronaut, "JPEG", **options)
    data = media_bytes.insert_after_soi(original, media_bytes.jpeg_segment(0xFE, b"secret comment"))
    # WHEN sanitized
    result = clean(data)
    # THEN only the comment goes and the picture is untouched
    assert result.removed == ["comment"]
    assert b"secret comment" not in result.data
    assert np.array_equal(media_bytes.pixels(result.data), media_bytes.pixels(original))


def reference_scan_ends(data: bytes) -> list[int]:
    # The straightforward definition the numpy search must equal: after each SOS header,
    # the first 0xFF followed by neither 0x00, 0xFF nor a restart marker.
    ends, pos = [], 0
    while (sos := data.find(b"\xff\xda", pos)) >= 0:
        header_end = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
        pos = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])").search(data, header_end).start()
        ends.append(pos)
    return ends


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"progressive": True}, id="progressive"),
        pytest.param({"restart_marker_blocks": 1}, id="restart-markers"),
        pytest.param({"subsampling": 0, "quality": 100}, id="scan-longer-than-the-first-windows"),
    ],
)
def test_jpeg_scan_ends_equal_the_reference_definition(media_bytes, options):
    # GIVEN a noisy 1024x1024 JPEG (its scan spans several search windows) with fill bytes
    # (0xFF 0xFF ...) before its EOI
    rng = np.random.default_rng(3)
    original = media_bytes.encode(Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)),
                                  "JPEG", **options)
    data = original[:-2] + b"\xff\xff\xff" + original[-2:]
    # WHEN the segment walk finds each scan's end
    ends = [seg.end for seg in jpeg.segments(data) if seg.marker == 0xDA]
    # THEN every end is where the reference definition puts it, and the file still ends in EOI
    assert ends == reference_scan_ends(data)
    assert [seg.marker for seg in jpeg.segments(data)][-1] == 0xD9


@pytest.mark.parametrize("at", [0, 65_534, 65_535, 65_536, 65_536 + 131_071, 65_536 + 131_072])
def test_a_marker_on_a_search_window_edge_ends_the_scan_there(at):
    # GIVEN entropy-coded bytes full of stuffed 0xFF00 and restart markers, a fill byte, then
    # EOI, with the marker's 0xFF on or next to the edge of the growing search windows
    stuffing = (b"\x12\xff\x00\x34\xff\xd3" * (at // 6 + 1))[:at]
    stuffing = stuffing[:-1] + b"\x00" if stuffing.endswith(b"\xff") else stuffing
    data = b"\xff\xda" + stuffing + b"\xff\xd9"
    # WHEN the scan end is searched from just after the SOS marker
    # THEN it is the first 0xFF of the real marker, as the reference definition says
    assert jpeg._scan_end(data, 2) == 2 + at == re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])").search(data, 2).start()
    # AND a scan cut before its marker is refused
    with pytest.raises(CorruptMediaError):
        jpeg._scan_end(data[:-2] + b"\xff", 2)


def test_a_jpeg_with_nothing_to_strip_is_returned_without_a_copy(astronaut, media_bytes):
    original = jpeg.strip_metadata(media_bytes.encode(astronaut, "JPEG")).data
    assert jpeg.strip_metadata(original).data is original


def test_cmyk_jpeg_keeps_its_adobe_marker(astronaut, media_bytes):
    # GIVEN a CMYK JPEG, which decoders can only read correctly with its Adobe APP14 marker
    original = media_bytes.encode(astronaut.convert("CMYK"), "JPEG")
    assert 0xEE in [m for m, _ in media_bytes.jpeg_segments(original)]
    data = media_bytes.insert_after_soi(original, media_bytes.jpeg_segment(0xFE, b"secret comment"))
    # WHEN sanitized
    result = clean(data)
    # THEN the Adobe marker is kept and the pixels decode identically
    assert any(m == 0xEE and p.startswith(b"Adobe") for m, p in media_bytes.jpeg_segments(result.data))
    assert np.array_equal(media_bytes.pixels(result.data), media_bytes.pixels(original))


def test_sanitizing_twice_changes_nothing_more(jpeg_with_metadata):
    once = clean(jpeg_with_metadata.data)
    twice = clean(once.data)
    assert twice.removed == []
    assert twice.data == once.data
    assert twice.sha256 == once.sha256 == hashlib.sha256(once.data).hexdigest()


@pytest.mark.parametrize("orientation", [None, 1])
def test_upright_jpeg_is_rewritten_losslessly(astronaut, media_bytes, orientation):
    data = media_bytes.encode(astronaut, "JPEG", exif=media_bytes.exif_with_gps(orientation))
    result = clean(data)
    assert result.method == "jpeg-segments"
    assert result.removed == ["exif"]
    assert np.array_equal(media_bytes.pixels(result.data), media_bytes.pixels(data))


def test_exif_rotation_is_applied_before_the_exif_goes(rotated_jpeg, srgb_icc, media_bytes):
    # GIVEN a 320x240 JPEG whose EXIF orientation (6) says "turn 90 degrees clockwise"
    # WHEN it is sanitized
    result = clean(rotated_jpeg.data)
    # THEN it is re-encoded upright (240x320), so it displays the same without EXIF
    assert result.method == "reencode"
    assert (result.width, result.height) == (240, 320)
    with Image.open(io.BytesIO(result.data)) as img:
        assert img.format == "JPEG" and img.size == (240, 320)
    assert "exif" in result.removed and "orientation=6 (applied)" in result.removed
    assert leaked(rotated_jpeg, result.data) == []
    assert ExifTags.Base.Orientation not in exif_of(result.data)
    assert decoded_info(result.data)["icc_profile"] == srgb_icc
    # AND the picture was turned clockwise, not counter-clockwise
    source = media_bytes.pixels(rotated_jpeg.data).astype(int)
    output = media_bytes.pixels(result.data).astype(int)
    clockwise_error = np.abs(np.rot90(source, k=-1) - output).mean()
    counter_clockwise_error = np.abs(np.rot90(source, k=1) - output).mean()
    assert clockwise_error < 3 < counter_clockwise_error


# --- PNG ----------------------------------------------------------------------


def test_png_text_exif_and_trailer_are_removed_and_listed(png_with_metadata, media_bytes):
    # GIVEN a PNG with tEXt, zTXt, iTXt, eXIf chunks and bytes after IEND
    # WHEN it is sanitized
    result = clean(png_with_metadata.data)
    # THEN those chunks are listed as removed and none of their bytes remain
    assert result.removed == ["tEXt", "zTXt", "iTXt", "eXIf", f"trailing-data:{png_with_metadata.trailing}B"]
    assert leaked(png_with_metadata, result.data) == []
    assert result.method == "png-chunks"
    assert result.kind is PNG
    assert (result.width, result.height) == (256, 256)
    assert {"tEXt", "zTXt", "iTXt", "eXIf"}.isdisjoint(c.decode() for c in media_bytes.png_chunks(result.data))


def test_png_keeps_icc_and_pixels(png_with_metadata, srgb_icc, media_bytes):
    result = clean(png_with_metadata.data)
    chunks = media_bytes.png_chunks(result.data)
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"iCCP" in chunks
    assert decoded_info(result.data)["icc_profile"] == srgb_icc
    assert np.array_equal(media_bytes.pixels(result.data), media_bytes.pixels(png_with_metadata.data))
    assert result.data.endswith(media_bytes.png_chunk(b"IEND", b""))


def test_png_sanitizing_twice_changes_nothing_more(png_with_metadata):
    once = clean(png_with_metadata.data)
    twice = clean(once.data)
    assert twice.removed == [] and twice.data == once.data


# --- WebP and GIF (re-encoded) ------------------------------------------------------


def test_webp_is_reencoded_without_exif_or_xmp(webp_with_metadata, srgb_icc, media_bytes):
    # GIVEN a WebP carrying EXIF with GPS, XMP and an ICC profile
    # WHEN it is sanitized
    result = clean(webp_with_metadata.data)
    # THEN it is re-encoded as WebP with the metadata gone and the colour profile kept
    assert result.method == "reencode"
    assert sniff(result.data) is WEBP
    assert set(result.removed) == {"exif", "xmp"}
    assert leaked(webp_with_metadata, result.data) == []
    info = decoded_info(result.data)
    assert "exif" not in info and "xmp" not in info
    assert info["icc_profile"] == srgb_icc
    assert (result.width, result.height) == (256, 256)
    # AND the picture is visually the same (WebP is lossy, so not bit-identical)
    diff = np.abs(media_bytes.pixels(result.data).astype(int) - media_bytes.pixels(webp_with_metadata.data))
    assert diff.mean() < 3


def test_gif_is_reencoded_without_its_comment(gif_with_comment, media_bytes):
    result = clean(gif_with_comment.data)
    assert result.method == "reencode"
    assert sniff(result.data) is GIF
    assert result.removed == ["comment"]
    assert leaked(gif_with_comment, result.data) == []
    assert "comment" not in decoded_info(result.data)
    assert np.array_equal(media_bytes.pixels(result.data), media_bytes.pixels(gif_with_comment.data))


def frame_timings(data: bytes) -> tuple[list[int], int | None]:
    with Image.open(io.BytesIO(data)) as img:
        durations = []
        for index in range(img.n_frames):
            img.seek(index)
            img.load()
            durations.append(img.info.get("duration"))
        return durations, img.info.get("loop")


def test_animated_gif_keeps_frames_and_timing_but_not_the_comment(animated_gif_with_comment):
    result = clean(animated_gif_with_comment.data)
    assert "comment" in result.removed
    assert leaked(animated_gif_with_comment, result.data) == []
    assert frame_timings(result.data) == frame_timings(animated_gif_with_comment.data) == ([100, 500, 50], 2)


def test_animated_webp_keeps_frame_timing_and_loop_count(astronaut, media_bytes):
    # GIVEN an animated WebP with per-frame durations that plays twice, plus EXIF
    frames = [astronaut.crop((x, 0, x + 64, 64)) for x in (0, 64, 128)]
    data = media_bytes.encode(
        frames[0],
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 500, 50],
        loop=2,
        exif=media_bytes.exif_with_gps(),
    )
    assert frame_timings(data) == ([100, 500, 50], 2)
    # WHEN it is sanitized
    result = clean(data)
    # THEN the EXIF is gone and the animation plays exactly as before
    assert result.removed == ["exif"]
    assert frame_timings(result.data) == ([100, 500, 50], 2)


def gif_descriptor_offsets(data: bytes) -> list[int]:
    """Offsets of the image descriptors (0x2C) of a GIF, found by walking its blocks."""
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    offsets = []
    while data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:
            assert data[pos] == 0x2C
            offsets.append(pos)
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1  # + LZW min code size
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    return offsets


def test_animated_gif_with_an_oversized_later_frame_is_a_bomb(media_bytes):
    # GIVEN a two-frame GIF whose screen and first frame say 16x16 but whose second frame
    # is a valid 2000x2000 (4 MP) image: 8 KB on disk
    side = 2000
    first = Image.new("P", (side, side), 0)
    second = Image.new("P", (side, side), 1)
    for frame in (first, second):
        frame.putpalette([0, 0, 0, 255, 255, 255])
    data = bytearray(media_bytes.encode(first, "GIF", save_all=True, append_images=[second], optimize=False))
    first_descriptor = gif_descriptor_offsets(bytes(data))[0]
    data[6:10] = struct.pack("<HH", 16, 16)
    data[first_descriptor + 5 : first_descriptor + 9] = struct.pack("<HH", 16, 16)
    # WHEN it is sanitized with a 1 MP limit
    # THEN it is refused as a decompression bomb instead of decoding 4 MP
    with pytest.raises(DecompressionBombError):
        clean(bytes(data), max_pixels=1_000_000)


# --- corrupt input ----------------------------------------------------------------


def test_truncated_jpeg_is_corrupt(jpeg_with_metadata):
    data = jpeg_with_metadata.data
    with pytest.raises(CorruptMediaError) as raised:
        clean(data[: len(data) // 2])
    assert raised.value.reason == "corrupt_media"


def test_jpeg_without_end_marker_is_corrupt(astronaut, media_bytes):
    data = media_bytes.encode(astronaut, "JPEG")
    with pytest.raises(CorruptMediaError):
        clean(data[:-2])


def test_truncated_rotated_jpeg_is_corrupt(rotated_jpeg):
    with pytest.raises(CorruptMediaError):
        clean(rotated_jpeg.data[: len(rotated_jpeg.data) // 2])


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_png_is_corrupt(png_with_metadata, keep):
    data = png_with_metadata.data[: -png_with_metadata.trailing]  # a PNG that ends right after IEND
    with pytest.raises(CorruptMediaError) as raised:
        clean(data[: int(len(data) * keep)])
    assert raised.value.reason == "corrupt_media"
