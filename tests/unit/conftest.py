"""Real, small media built in memory for the unit tests.

Every sample starts from a photograph that scikit-image ships, is encoded by
Pillow, and then gets the metadata a phone or an editing tool leaves behind,
added by byte surgery where Pillow has no option for it (XMP, COM and APP11
segments, bytes after the end marker). Each sample lists the byte strings that
a sanitizer must not let through, so a test can grep the output for them.

Helpers that tests need (encoding, decoding, walking segments and chunks) are
handed out through the ``media_bytes`` fixture rather than imported from this
file, so no test depends on ``conftest`` being importable as a module.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

_GPS = ExifTags.GPS
XMP_PACKET = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="XMP-CREATOR-JANE-DOE"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00" + XMP_PACKET
COMMENT_TEXT = b"COMMENT-shot-at-12-Example-Street"
# A minimal JUMBF superbox as C2PA writes it into APP11: "JP" common identifier,
# box instance 1, packet sequence 1, then a 'jumb' box whose description says c2pa.
APP11_PAYLOAD = b"JP\x00\x01\x00\x00\x00\x01\x00\x00\x00\x1ejumb\x00\x00\x00\x16jumdc2pa-MANIFEST-SECRET"
TRAILER = b"TRAILING-SECRET-" + bytes(range(256))

EXIF_LEAKS = {
    "exif-header": b"Exif\x00\x00",
    "exif-make": b"EXIF-MAKE-PhoneCo",
    "exif-serial": b"EXIF-MODEL-X1-SERIAL-0042",
    "gps-datestamp": b"2026:11:23",
}


@dataclass(frozen=True)
class Sample:
    """Encoded media, the byte strings that must not survive sanitization, and how
    many bytes were appended after the format's end marker."""

    data: bytes
    leaks: dict[str, bytes] = field(default_factory=dict)
    trailing: int = 0


# --- byte-level helpers, independent of the code under test -------------------


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    """Decoded RGB pixels of the first frame."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def insert_after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def jpeg_segments(jpeg: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of every segment up to and including the first SOS."""
    segments, pos = [], 2
    while True:
        while jpeg[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        marker = jpeg[pos + 1]
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        segments.append((marker, jpeg[pos + 4 : pos + 2 + length]))
        if marker == 0xDA:
            return segments
        pos += 2 + length


def png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def png_chunks(png: bytes) -> list[bytes]:
    """Chunk types in file order, up to IEND."""
    types, pos = [], 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        types.append(png[pos + 4 : pos + 8])
        pos += 12 + length
        if types[-1] == b"IEND":
            break
    return types


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "EXIF-MAKE-PhoneCo"
    exif[ExifTags.Base.Model] = "EXIF-MODEL-X1-SERIAL-0042"
    exif[ExifTags.Base.Software] = "Editor 1.0"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[_GPS.GPSLatitudeRef] = "N"
    gps[_GPS.GPSLatitude] = (51.0, 30.0, 12.5)
    gps[_GPS.GPSLongitudeRef] = "W"
    gps[_GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    gps[_GPS.GPSDateStamp] = "2026:11:23"
    return exif


# --- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def media_bytes() -> SimpleNamespace:
    """Encoding, decoding and container-walking helpers for tests."""
    return SimpleNamespace(
        encode=encode,
        pixels=pixels,
        jpeg_segment=jpeg_segment,
        insert_after_soi=insert_after_soi,
        jpeg_segments=jpeg_segments,
        png_chunk=png_chunk,
        png_chunks=png_chunks,
        exif_with_gps=exif_with_gps,
    )


@pytest.fixture(scope="session")
def astronaut_array() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture
def astronaut(astronaut_array) -> Image.Image:
    """The 512x512 astronaut portrait as an RGB PIL image (a fresh copy per test)."""
    return Image.fromarray(astronaut_array).convert("RGB")


@pytest.fixture(scope="session")
def srgb_icc() -> bytes:
    """A real sRGB ICC profile, as phones and editors embed."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def jpeg_with_metadata(astronaut, srgb_icc) -> Sample:
    """JPEG carrying EXIF (with a GPS IFD), XMP, a comment, a C2PA-style APP11 box,
    an ICC profile and bytes after EOI: a phone photo edited on a desktop."""
    base = encode(astronaut, "JPEG", quality=90, exif=exif_with_gps(), icc_profile=srgb_icc)
    data = insert_after_soi(
        base,
        jpeg_segment(0xE1, XMP_APP1),
        jpeg_segment(0xFE, COMMENT_TEXT),
        jpeg_segment(0xEB, APP11_PAYLOAD),
    )
    leaks = {
        **EXIF_LEAKS,
        "xmp": b"XMP-CREATOR-JANE-DOE",
        "comment": COMMENT_TEXT,
        "app11": b"c2pa-MANIFEST-SECRET",
        "trailer": TRAILER,
    }
    return Sample(data + TRAILER, leaks, trailing=len(TRAILER))


@pytest.fixture
def rotated_jpeg(astronaut, srgb_icc) -> Sample:
    """A 320x240 JPEG whose EXIF says "rotate 90 degrees clockwise to display" (orientation 6)."""
    landscape = astronaut.crop((96, 0, 416, 240))
    data = encode(landscape, "JPEG", quality=95, exif=exif_with_gps(orientation=6), icc_profile=srgb_icc)
    return Sample(data, dict(EXIF_LEAKS))


@pytest.fixture
def png_with_metadata(astronaut, srgb_icc) -> Sample:
    """PNG with tEXt, zTXt, iTXt (XMP), eXIf, an ICC profile and bytes after IEND."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "TEXT-AUTHOR-Jane-Doe")
    info.add_text("Location", "ZTXT-LOCATION-51.5N-0.1W " * 4, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP_PACKET.decode())
    data = encode(astronaut.crop((0, 0, 256, 256)), "PNG", pnginfo=info, exif=exif_with_gps(), icc_profile=srgb_icc)
    leaks = {
        "text": b"TEXT-AUTHOR-Jane-Doe",
        "ztxt-keyword": b"Location",
        # The iTXt packet is stored uncompressed, so its content is greppable.
        "itxt": b"XMP-CREATOR-JANE-DOE",
        "exif-make": b"EXIF-MAKE-PhoneCo",
        "gps-datestamp": b"2026:11:23",
        "trailer": TRAILER,
    }
    return Sample(data + TRAILER, leaks, trailing=len(TRAILER))


@pytest.fixture
def webp_with_metadata(astronaut, srgb_icc) -> Sample:
    data = encode(
        astronaut.crop((0, 0, 256, 256)),
        "WEBP",
        quality=90,
        exif=exif_with_gps(),
        xmp=XMP_PACKET,
        icc_profile=srgb_icc,
    )
    return Sample(data, {**EXIF_LEAKS, "xmp": b"XMP-CREATOR-JANE-DOE"})


@pytest.fixture
def gif_with_comment(astronaut) -> Sample:
    data = encode(astronaut.crop((0, 0, 128, 128)).quantize(64), "GIF", comment=COMMENT_TEXT)
    return Sample(data, {"comment": COMMENT_TEXT})


@pytest.fixture
def animated_gif_with_comment(astronaut) -> Sample:
    """Three 96x96 frames with different durations, looping twice, plus a comment."""
    frames = [astronaut.crop((x, 0, x + 96, 96)).quantize(64) for x in (0, 96, 192)]
    data = encode(
        frames[0],
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 500, 50],
        loop=2,
        comment=COMMENT_TEXT,
    )
    return Sample(data, {"comment": COMMENT_TEXT})
