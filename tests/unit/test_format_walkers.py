"""The container walkers of ``mediaguard.formats``, on files Pillow and pillow-heif
make: what each walk finds, what the lossless rewrites keep, and the typed error a
file cut short or built to mislead gets (strict walks) or does not get (tolerant
walks, which provenance relies on never to raise)."""

from __future__ import annotations

import io
import struct
import zlib
from itertools import pairwise

import numpy as np
import pillow_heif
import pytest
from PIL import Image, PngImagePlugin

from mediaguard.errors import CorruptMediaError
from mediaguard.formats import gif, isobmff, jpeg, png, tiff, webm, webp

pillow_heif.register_heif_opener()  # the tests encode HEIF


@pytest.fixture
def small(astronaut) -> Image.Image:
    return astronaut.resize((64, 48))


@pytest.fixture
def frames(astronaut) -> list[Image.Image]:
    return [astronaut.crop((x, 0, x + 40, 30)) for x in (0, 100, 200)]


# --- signatures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "module"),
    [("JPEG", jpeg), ("PNG", png), ("GIF", gif), ("WEBP", webp), ("TIFF", tiff)],
)
def test_each_format_recognises_its_own_files_and_no_other(small, media_bytes, fmt, module):
    # GIVEN the same picture in every format
    files = {name: media_bytes.encode(small, name) for name in ("JPEG", "PNG", "GIF", "WEBP", "TIFF")}
    # WHEN each module looks at every file THEN only its own matches
    assert [name for name, data in files.items() if module.matches(data)] == [fmt]


def test_bigtiff_is_recognised_so_it_can_be_refused_by_name():
    # GIVEN BigTIFF headers in both byte orders WHEN checked THEN they are BigTIFF, not TIFF
    for header in (b"II+\x00\x08\x00\x00\x00", b"MM\x00+\x00\x08\x00\x00"):
        assert tiff.is_bigtiff(header) and not tiff.matches(header)


# --- JPEG -----------------------------------------------------------------------


def test_jpeg_segments_cover_the_file_up_to_eoi(jpeg_with_metadata):
    # GIVEN a JPEG with metadata segments and bytes after EOI
    data = jpeg_with_metadata.data
    # WHEN walked
    segments = list(jpeg.segments(data))
    # THEN the segments tile the file from SOI to EOI, the scan included, and EOI comes last
    assert segments[0].start == 2 and segments[-1].marker == 0xD9
    assert all(a.end == b.start for a, b in pairwise(segments))
    assert segments[-1].end == len(data) - jpeg_with_metadata.trailing
    assert 0xDA in [s.marker for s in segments]


def test_jpeg_metadata_is_stripped_losslessly(jpeg_with_metadata, media_bytes):
    # GIVEN a JPEG with EXIF, XMP, a comment, a C2PA box, an ICC profile and a trailer
    data = jpeg_with_metadata.data
    # WHEN its metadata is stripped
    stripped = jpeg.strip_metadata(data)
    # THEN the named blocks and the trailer are gone, the ICC profile stays, pixels are identical
    assert [name for name, _ in stripped.removed] == ["xmp", "comment", "c2pa-jumbf", "exif"]
    assert stripped.trailing == data[len(data) - jpeg_with_metadata.trailing :]
    assert not any(leak in stripped.data for leak in jpeg_with_metadata.leaks.values())
    assert b"ICC_PROFILE\x00" in stripped.data
    assert np.array_equal(media_bytes.pixels(stripped.data), media_bytes.pixels(data))


@pytest.mark.parametrize(
    ("marker", "payload", "name"),
    [
        (0xE0, b"JFIF\x00\x01\x02", None),
        (0xE0, b"JFXX\x00\x10", "jfif-extension-thumbnail"),
        (0xE1, b"Exif\x00\x00MM", "exif"),
        (0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta", "xmp"),
        (0xE1, b"http://ns.adobe.com/xmp/extension/\x00", "xmp"),
        (0xE1, b"other", "app1"),
        (0xE2, b"ICC_PROFILE\x00\x01\x01", None),
        (0xE2, b"MPF\x00II*", "mpf"),
        (0xE2, b"FPXR\x00", "app2"),
        (0xEB, b"JP\x00\x01", "c2pa-jumbf"),
        (0xED, b"Photoshop 3.0\x00", "iptc"),
        (0xEE, b"Adobe\x00d", None),
        (0xEE, b"Other", "app14"),
        (0xE5, b"", "app5"),
        (0xFE, b"a comment", "comment"),
        (0xDB, b"\x00" * 65, None),
    ],
)
def test_jpeg_segment_names(marker, payload, name):
    # GIVEN a segment WHEN named THEN decoders' segments are kept (None) and metadata is named
    assert jpeg.metadata_name(marker, payload) == name


@pytest.mark.parametrize("cut", [3, 4, 20, 600, -200, -3])
def test_a_cut_jpeg_is_corrupt_for_the_strict_walk_and_readable_for_the_tolerant_one(jpeg_with_metadata, cut):
    # GIVEN a JPEG cut short (inside a header, a metadata segment or the scan)
    data = jpeg_with_metadata.data[: len(jpeg_with_metadata.data) - jpeg_with_metadata.trailing][:cut]
    # WHEN walked strictly THEN it is corrupt
    with pytest.raises(CorruptMediaError):
        list(jpeg.segments(data))
    # AND the tolerant header walk returns what is there without raising
    assert all(marker != 0xDA for marker, _ in jpeg.header_segments(data))


def test_jpeg_header_segments_stop_before_the_first_scan(jpeg_with_metadata):
    # GIVEN a JPEG with metadata WHEN its header segments are read
    segments = list(jpeg.header_segments(jpeg_with_metadata.data))
    # THEN they hold the metadata payloads, in file order, and nothing from the scan on
    markers = [marker for marker, _ in segments]
    assert markers[:4] == [0xE1, 0xFE, 0xEB, 0xE0]
    assert 0xDA not in markers and 0xD9 not in markers
    assert dict(segments)[0xFE] == b"COMMENT-shot-at-12-Example-Street"


def test_a_jpeg_segment_longer_than_the_file_is_corrupt(small, media_bytes):
    # GIVEN a JPEG whose first segment claims 60,000 bytes
    data = media_bytes.insert_after_soi(media_bytes.encode(small, "JPEG"), b"\xff\xfe\xea\x60 short")
    # WHEN walked strictly THEN it is corrupt; the tolerant walk yields the cut payload
    with pytest.raises(CorruptMediaError, match="runs past the end"):
        list(jpeg.segments(data))
    assert next(jpeg.header_segments(data))[0] == 0xFE


# --- PNG ------------------------------------------------------------------------


def test_png_chunks_end_at_iend_and_the_trailer_is_left_over(png_with_metadata):
    # GIVEN a PNG with text chunks, eXIf and bytes after IEND
    data = png_with_metadata.data
    # WHEN walked
    chunks = list(png.chunks(data))
    # THEN the chunks tile the file from the signature to IEND
    assert chunks[0].type == b"IHDR" and chunks[-1].type == b"IEND"
    assert all(a.end == b.offset for a, b in pairwise(chunks))
    assert chunks[-1].end == len(data) - png_with_metadata.trailing
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"} <= {c.type for c in chunks}


def test_png_metadata_is_stripped_losslessly(png_with_metadata, media_bytes):
    # GIVEN a PNG with text, eXIf, an ICC profile and a trailer WHEN stripped
    stripped = png.strip_metadata(png_with_metadata.data)
    # THEN only picture chunks remain, byte for byte, and the pixels are identical
    assert {c.type for c in png.chunks(stripped.data)} <= png.PICTURE_CHUNKS
    assert sorted(name for name, _ in stripped.removed) == ["eXIf", "iTXt", "tEXt", "zTXt"]
    assert len(stripped.trailing) == png_with_metadata.trailing
    assert not any(leak in stripped.data for leak in png_with_metadata.leaks.values())
    assert np.array_equal(media_bytes.pixels(stripped.data), media_bytes.pixels(png_with_metadata.data))


@pytest.mark.parametrize(("cut", "message"), [(100, "runs past the end"), (-12 - 256 - 16, "no IEND")])
def test_a_cut_png_is_corrupt_for_the_strict_walk_only(png_with_metadata, cut, message):
    # GIVEN a PNG cut inside a chunk, or cut just before IEND
    data = png_with_metadata.data[:cut]
    # WHEN walked strictly THEN it is corrupt, with the reason; tolerantly it stops quietly
    with pytest.raises(CorruptMediaError, match=message):
        list(png.chunks(data))
    assert list(png.chunks(data, strict=False))[0].type == b"IHDR"


def test_png_text_chunks_read_as_a_reader_sees_them(small, media_bytes):
    # GIVEN tEXt, zTXt and compressed and plain iTXt chunks written by Pillow
    info = PngImagePlugin.PngInfo()
    info.add_text("Plain", "latin text")
    info.add_text("Zipped", "deflated text", zip=True)
    info.add_itxt("Intl", "texte compressé", lang="fr", tkey="Intl", zip=True)
    info.add_itxt("IntlPlain", "texte", lang="fr", tkey="Intl")
    data = media_bytes.encode(small, "PNG", pnginfo=info)
    # WHEN each text chunk is read
    texts = [png.text(c.type, c.body(data)) for c in png.chunks(data) if c.type in png.TEXT_CHUNKS]
    # THEN keywords and inflated texts come back as bytes
    assert texts == [
        (b"Plain", b"latin text"),
        (b"Zipped", b"deflated text"),
        (b"Intl", "texte compressé".encode()),
        (b"IntlPlain", b"texte"),
    ]
    compressed = [png.is_compressed_text(c.type, c.body(data)) for c in png.chunks(data) if c.type in png.TEXT_CHUNKS]
    assert compressed == [False, True, True, False]


def test_a_malformed_itxt_has_no_text_unless_salvaged():
    # GIVEN an iTXt whose language tag is terminated but whose translated keyword is not
    body = b"Software\x00\x00\x00en\x00Stable Diffusion"
    # WHEN read by the spec THEN it has no text; salvaged, the text after the language tag is read
    assert png.text(b"iTXt", body) == (b"Software", b"")
    assert png.text(b"iTXt", body, salvage=True) == (b"Software", b"Stable Diffusion")


def test_a_ztxt_bomb_inflates_only_up_to_the_cap(media_bytes):
    # GIVEN a zTXt chunk whose text inflates to 64 MB
    body = b"Comment\x00\x00" + zlib.compress(b"A" * (64 << 20))
    # WHEN read THEN the text stops at the cap
    keyword, text = png.text(b"zTXt", body)
    assert keyword == b"Comment" and len(text) == png.MAX_TEXT


def test_apng_frame_headers_are_read_without_decoding(frames, media_bytes):
    # GIVEN a three-frame APNG of 40x30 frames
    data = media_bytes.encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    # WHEN its animation chunks are read
    chunks = list(png.chunks(data))
    declared = [png.actl_frames(data, c) for c in chunks if c.type == b"acTL"]
    sizes = [png.fctl_size(data, c) for c in chunks if c.type == b"fcTL"]
    # THEN acTL declares three frames and each fcTL gives a frame's size
    assert png.size(data) == (40, 30)
    assert declared == [3] and sizes == [(40, 30)] * 3


def test_a_png_header_cut_short_is_corrupt(small, media_bytes):
    # GIVEN the first 30 bytes of a PNG WHEN its size is read THEN it is corrupt
    with pytest.raises(CorruptMediaError, match="header is truncated"):
        png.size(media_bytes.encode(small, "PNG")[:30])


# --- GIF ------------------------------------------------------------------------


def test_gif_blocks_give_frames_extensions_and_the_real_end(animated_gif_with_comment):
    # GIVEN a three-frame GIF with a comment, plus bytes after the trailer
    data = animated_gif_with_comment.data + b"after"
    # WHEN its blocks are walked
    blocks = list(gif.blocks(data))
    images = [b for b in blocks if isinstance(b, gif.ImageBlock)]
    extensions = {b.label: b.payload for b in blocks if isinstance(b, gif.Extension)}
    # THEN every frame, the comment and the trailer are found, nothing decoded
    assert [(i.width, i.height) for i in images] == [(96, 96)] * 3
    assert extensions[0xFE] == animated_gif_with_comment.leaks["comment"]
    assert gif.GRAPHIC_CONTROL in extensions
    assert blocks[-1] == gif.Trailer(len(data) - len(b"after"))
    assert gif.screen_size(data) == (96, 96)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:10], "header is truncated"),
        (lambda d: d[:-1], "no trailer"),
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: d[:-1] + b"\x99", "unknown block"),
    ],
    ids=["header", "trailer", "mid-image", "unknown-block"],
)
def test_a_hostile_gif_is_corrupt(animated_gif_with_comment, mutate, message):
    # GIVEN a GIF cut short or carrying a block no GIF has WHEN walked THEN it is corrupt
    with pytest.raises(CorruptMediaError, match=message):
        list(gif.blocks(mutate(animated_gif_with_comment.data)))


def test_gif_blocks_are_lazy(small, media_bytes):
    # GIVEN a GIF whose end is garbage WHEN only its first image is asked for THEN no error yet
    data = media_bytes.encode(small.quantize(16), "GIF")
    image = next(b for b in gif.blocks(data[:-1] + b"\x99") if isinstance(b, gif.ImageBlock))
    assert (image.width, image.height) == (64, 48)


# --- WebP (RIFF) ----------------------------------------------------------------


def test_webp_chunks_hold_the_metadata(webp_with_metadata):
    # GIVEN a WebP with EXIF, XMP and an ICC profile WHEN its chunks are walked
    data = webp_with_metadata.data
    chunks = {fourcc: data[start:end] for fourcc, start, end in webp.chunks(data)}
    # THEN the metadata chunks are there, and the RIFF ends where the file does
    assert {b"VP8X", b"ICCP", b"EXIF", b"XMP "} <= chunks.keys()
    assert b"XMP-CREATOR-JANE-DOE" in chunks[b"XMP "]
    assert webp.riff_end(data) == len(data)
    assert webp.canvas_size(data, *_payload(data, b"VP8X")) == (256, 256)


def test_animated_webp_frame_headers(frames, media_bytes):
    # GIVEN a lossless three-frame animated WebP
    data = media_bytes.encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    # WHEN its chunks are read
    chunks = list(webp.chunks(data))
    # THEN each ANMF gives a frame's size and says the frame is lossless
    assert [webp.frame_size(data, s, e) for f, s, e in chunks if f == b"ANMF"] == [(40, 30)] * 3
    assert any(webp.is_lossless(data, f, s) for f, s, _ in chunks)


@pytest.mark.parametrize(
    ("cut", "message"), [(10, "header is truncated"), (-1, "the WebP is truncated")]
)
def test_a_cut_webp_is_corrupt_for_the_strict_walk(webp_with_metadata, cut, message):
    # GIVEN a WebP cut short WHEN walked strictly THEN it is corrupt
    with pytest.raises(CorruptMediaError, match=message):
        list(webp.chunks(webp_with_metadata.data[:cut]))


def test_a_webp_chunk_past_the_riff_end_is_corrupt(webp_with_metadata):
    # GIVEN a WebP whose last chunk claims more bytes than the RIFF holds
    data = bytearray(webp_with_metadata.data)
    last = max(start for _, start, _ in webp.chunks(bytes(data))) - 4
    data[last : last + 4] = struct.pack("<I", len(data))
    # WHEN walked strictly THEN it is corrupt
    with pytest.raises(CorruptMediaError, match="runs past the end"):
        list(webp.chunks(bytes(data)))


def test_the_tolerant_webp_walk_reads_chunks_after_the_riff_end(webp_with_metadata):
    # GIVEN an XMP chunk appended after the RIFF container
    data = webp_with_metadata.data + b"XMP \x05\x00\x00\x00hello\x00"
    # WHEN walked tolerantly THEN the appended chunk is read too; strictly it is not
    assert [f for f, _, _ in webp.chunks(data, strict=False)].count(b"XMP ") == 2
    assert [f for f, _, _ in webp.chunks(data)].count(b"XMP ") == 1


def _payload(data: bytes, fourcc: bytes) -> tuple[int, int]:
    return next((start, end) for f, start, end in webp.chunks(data) if f == fourcc)


# --- TIFF -----------------------------------------------------------------------


def test_tiff_pages_are_counted_from_the_ifd_chain(frames, media_bytes):
    # GIVEN a three-page TIFF WHEN its directories are walked THEN there are three
    data = media_bytes.encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    assert len(list(tiff.pages(data))) == 3


def test_a_tiff_page_chain_that_loops_is_corrupt(small, media_bytes):
    # GIVEN a one-page TIFF whose directory points back at itself
    data = bytearray(media_bytes.encode(small, "TIFF"))
    (ifd,) = struct.unpack("<I", data[4:8])
    (entries,) = struct.unpack("<H", data[ifd : ifd + 2])
    data[ifd + 2 + 12 * entries : ifd + 6 + 12 * entries] = struct.pack("<I", ifd)
    # WHEN walked THEN the loop is found after the first page
    with pytest.raises(CorruptMediaError, match="chain is corrupt"):
        list(tiff.pages(bytes(data)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"II*\x00\x08", "header is truncated"),
        (b"II*\x00\xff\x00\x00\x00", "chain is corrupt"),
        (b"II*\x00\x08\x00\x00\x00\x10\x00", "runs past the end"),
    ],
    ids=["header", "offset-outside", "directory-outside"],
)
def test_a_hostile_tiff_is_corrupt(data, message):
    # GIVEN a TIFF header pointing nowhere sensible WHEN walked THEN it is corrupt
    with pytest.raises(CorruptMediaError, match=message):
        list(tiff.pages(data))


# --- ISO-BMFF (HEIF, MP4/MOV) ---------------------------------------------------


def test_heif_brands_and_box_extent(small, media_bytes):
    # GIVEN a HEIC from pillow-heif, then the same with bytes after its last box
    data = media_bytes.encode(small, "HEIF", quality=50)
    # WHEN its ftyp and boxes are read
    brands = isobmff.ftyp_brands(data)
    # THEN it carries HEIF brands and no AVIF one, and the boxes end where the file does
    assert brands & isobmff.HEIF_BRANDS and not brands & isobmff.AVIF_BRANDS
    assert isobmff.boxes_end(data) == len(data)
    assert isobmff.boxes_end(data + b"%PDF-1.7 trailing") == len(data)


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1",  # box says 24 bytes, 20 given
        b"\x00\x00\x00\x11ftypheic\x00\x00\x00\x00m",  # brands not a multiple of 4
        b"\x00\x00\x00\x18moovheic\x00\x00\x00\x00mif1heic",  # not ftyp
        b"\x00\x00\x10\x04ftyp" + b"isom" * 1024,  # over 4 KiB
    ],
    ids=["cut", "ragged", "not-ftyp", "huge"],
)
def test_an_ftyp_box_that_is_not_complete_is_not_recognised(head):
    # GIVEN a leading box that is cut, malformed or not ftyp WHEN its brands are read THEN none
    assert isobmff.ftyp_brands(head) is None


def test_mov_major_brand():
    # GIVEN a QuickTime ftyp WHEN read THEN its major brand is QuickTime's
    head = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  "
    assert isobmff.ftyp_brands(head) == {b"qt  "} and isobmff.major_brand(head) == isobmff.QUICKTIME_BRAND


def test_a_box_claiming_more_than_the_file_ends_the_boxes_before_it():
    # GIVEN a complete 16-byte box followed by one claiming 1 MB, and a 64-bit sized box
    boxes = b"\x00\x00\x00\x10ftypheic\x00\x00\x00\x00" + b"\x00\x10\x00\x00mdat" + b"x" * 10
    large = b"\x00\x00\x00\x01mdat" + struct.pack(">Q", 20) + b"abcd"
    # WHEN their extent is read THEN the claim is not believed, and a 64-bit size is read
    assert isobmff.boxes_end(boxes) == 16
    assert isobmff.boxes_end(large + b"tail") == 20
    assert isobmff.boxes_end(b"\x00\x00\x00\x00mdat" + b"x" * 10) == 18


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _trak(handler: bytes) -> bytes:
    hdlr = _box(b"hdlr", bytes(8) + handler + bytes(12) + b"name\x00")
    return _box(b"trak", _box(b"tkhd", bytes(84)) + _box(b"mdia", _box(b"mdhd", bytes(24)) + hdlr))


FTYP = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")


@pytest.mark.parametrize(("layout", "handlers"), [
    ("faststart", {b"soun"}),
    ("moov-last", {b"soun"}),
    ("video", {b"vide", b"soun"}),
    ("large-size-mdat", {b"soun"}),
])
def test_track_handlers_are_read_from_the_moov_box_wherever_it_sits(layout, handlers):
    # GIVEN an MP4 whose moov lists its tracks before or after the media (a 64-bit mdat too)
    moov = _box(b"moov", _box(b"mvhd", bytes(100)) + b"".join(_trak(h) for h in sorted(handlers)))
    mdat = _box(b"mdat", b"\x00" * 64)
    if layout == "large-size-mdat":
        mdat = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + 64) + b"\x00" * 64
    data = FTYP + (moov + mdat if layout == "faststart" else mdat + moov)
    # WHEN its track handlers are read THEN they are the tracks' handler types
    assert isobmff.track_handlers(io.BytesIO(data)) == handlers


@pytest.mark.parametrize("cut", [10, 40, -20])
def test_a_file_without_a_complete_moov_has_no_track_handlers(cut):
    # GIVEN an MP4 cut short (in the ftyp, in the mdat, inside the trailing moov)
    data = FTYP + _box(b"mdat", b"\x00" * 64) + _box(b"moov", _trak(b"soun"))
    # WHEN its track handlers are read THEN there are none to trust
    assert isobmff.track_handlers(io.BytesIO(data[:cut])) is None


def test_a_malformed_box_inside_moov_ends_the_walk_without_raising():
    # GIVEN a moov whose second trak claims more bytes than the moov holds
    moov = _box(b"moov", _trak(b"soun") + struct.pack(">I", 4096) + b"trak" + bytes(16))
    # WHEN its handlers are read THEN the complete trak is read and the broken one ignored
    assert isobmff.track_handlers(io.BytesIO(FTYP + moov)) == {b"soun"}


@pytest.mark.parametrize("where", ["top-level", "in-moov"])
def test_a_flood_of_tiny_boxes_is_not_walked_through(where):
    # GIVEN a sound-only MP4 whose moov comes after 2,000 empty boxes, or holds 2,000 of them
    flood = _box(b"free", b"") * 2000
    if where == "top-level":
        data = FTYP + flood + _box(b"moov", _trak(b"soun"))
    else:
        data = FTYP + _box(b"moov", flood + _trak(b"soun"))
    # WHEN its track handlers are read THEN the walk gives up: not known to be sound only
    assert isobmff.track_handlers(io.BytesIO(data)) is None


def test_a_moov_larger_than_the_cap_is_not_read(monkeypatch):
    # GIVEN a sound-only moov one byte over the cap
    moov = _box(b"moov", _trak(b"soun"))
    monkeypatch.setattr(isobmff, "MAX_MOOV_BYTES", len(moov) - 9)
    # WHEN its track handlers are read THEN it is not read
    assert isobmff.track_handlers(io.BytesIO(FTYP + moov)) is None

# --- WebM (EBML) ----------------------------------------------------------------


def _ebml(doctype: bytes) -> bytes:
    body = b"\x42\x86\x81\x01" + b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype + b"\x42\x87\x81\x04"
    return webm.EBML_MAGIC + bytes([0x80 | len(body)]) + body


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (_ebml(b"webm"), b"webm"),
        (_ebml(b"matroska"), b"matroska"),
        (_ebml(b"webm")[:9], None),  # cut inside the header: no DocType seen
        (webm.EBML_MAGIC + b"\x00", None),  # a size longer than 8 bytes
        (b"\x00\x00\x00\x18ftypisom", None),
    ],
    ids=["webm", "matroska", "cut", "bad-vint", "not-ebml"],
)
def test_webm_doctype(head, expected):
    # GIVEN an EBML header (or not) WHEN its DocType is read THEN only a real one comes back
    assert webm.doctype(head) == expected
    assert webm.matches(head) is (expected == b"webm")


def test_ebml_vints_keep_or_drop_their_marker_bit():
    # GIVEN the two-byte vint 0x4282 (the DocType ID)
    # WHEN read as an ID and as a size THEN the ID keeps its marker bit, the size drops it
    assert webm.vint(b"\x42\x82", 0, marker=True) == (0x4282, 2)
    assert webm.vint(b"\x42\x82", 0, marker=False) == (0x0282, 2)
    with pytest.raises(ValueError):
        webm.vint(b"\x42", 0, marker=False)


def _element(element_id: bytes, payload: bytes, *, unknown: bool = False) -> bytes:
    # A 2-byte size (or 8 bytes of "unknown", as a live recorder writes the Segment's).
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown else (0x4000 | len(payload)).to_bytes(2, "big")
    return element_id + size + payload


HEADER = _element(b"\x1a\x45\xdf\xa3", _element(b"\x42\x82", b"webm"))


def _track(kind: int) -> bytes:
    return _element(b"\xae", _element(b"\xd7", b"\x01") + _element(b"\x83", bytes([kind])))


@pytest.mark.parametrize(("kinds", "unknown"), [((2,), True), ((2,), False), ((1, 2), False), ((2, 17), False)])
def test_webm_track_types_come_from_the_tracks_element(kinds, unknown):
    # GIVEN a WebM whose segment (of unknown size, as a live recorder writes it) has Info, Tracks, a Cluster
    tracks = _element(b"\x16\x54\xae\x6b", b"".join(_track(k) for k in kinds))
    info = _element(b"\x15\x49\xa9\x66", b"\x2a\xd7\xb1\x83\x0f\x42\x40")
    body = info + tracks + _element(b"\x1f\x43\xb6\x75", b"\xe7\x81\x00")
    data = HEADER + _element(b"\x18\x53\x80\x67", body, unknown=unknown)
    # WHEN its track types are read THEN they are the tracks' types
    assert webm.track_types(data) == set(kinds)


def test_webm_without_complete_tracks_before_a_cluster_has_no_track_types():
    cluster = _element(b"\x1f\x43\xb6\x75", b"\xe7\x81\x00")
    tracks = _element(b"\x16\x54\xae\x6b", _track(2))
    segment = b"\x18\x53\x80\x67"
    # GIVEN a Cluster before Tracks, Tracks cut short, a track entry claiming too much, and not EBML
    cases = [HEADER + _element(segment, cluster + tracks, unknown=True),
             (HEADER + _element(segment, tracks, unknown=True))[:-2],
             HEADER + _element(segment, _element(b"\x16\x54\xae\x6b", b"\xae\x90" + b"\x83\x81\x02"), unknown=True),
             b"\x00" * 64]
    # WHEN their track types are read THEN there are none to trust
    assert [webm.track_types(data) for data in cases] == [None] * 4
