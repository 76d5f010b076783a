"""Video and animation frames: container sniffing, probing, metadata-free remux,
keyframe/scene-change extraction, its caps, and vPDQ matching of re-encodes.

Clips are made by tests/media_video.py from scikit-image photos with the same ffmpeg
the library runs; each scene is one photo with a slow zoom and pan.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest

from bench.clips import animated_gif, ffmpeg, photos, reencode, slideshow
from mediaguard import errors
from mediaguard.ingress.video import (
    MOV,
    MP4,
    WEBM,
    VideoLimits,
    extract_animated_frames,
    extract_frames,
    pdq_frames,
    probe,
    removed_metadata,
    remux_clean,
    sniff_video,
    vpdq_match,
)
from mediaguard.settings import Settings
from mediaguard.signals import PdqSignal, hamming
from tests.conftest import jpeg_bytes, photo

SCENES = 4
SECONDS_EACH = 1.5
FPS = 16  # 1.5 s is a whole number of frames
LIMITS = VideoLimits.from_settings(Settings())


def write(tmp_path, data: bytes, name: str = "clip.bin"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def scene_of(t: float) -> int:
    return int(t // SECONDS_EACH)


@pytest.fixture(scope="module")
def source() -> bytes:
    """Four scenes of 1.5 s, 640x360 H.264 in MP4, x264's default keyframe placement."""
    return slideshow(photos(SCENES), SECONDS_EACH, (640, 360), fps=FPS)


@pytest.fixture(scope="module")
def other() -> bytes:
    """Another slideshow, made of four different photos."""
    return slideshow(photos(SCENES, offset=8), SECONDS_EACH, (640, 360), fps=FPS)


@pytest.fixture(scope="module")
def tagged() -> bytes:
    """A clip carrying what a phone or an editor leaves: tags, a subtitle track, audio."""
    return slideshow(photos(2), 1.0, (320, 180), fps=FPS, audio=True, subtitle="SUBTITLE-SECRET-cue",
                     metadata={"title": "TITLE-SECRET-holiday", "location": "+52.5200+013.4050/",
                               "comment": "COMMENT-SECRET-Jane"})


# --- sniff ------------------------------------------------------------------------


@pytest.mark.parametrize("codec,container,expected", [
    ("libx264", "mp4", MP4), ("libx264", "mov", MOV), ("libvpx-vp9", "webm", WEBM), ("libvpx", "webm", WEBM),
])
def test_sniff_names_each_container_from_its_first_bytes(codec, container, expected):
    # GIVEN a real clip in each accepted container
    data = slideshow(photos(1), 0.2, (160, 96), fps=FPS, codec=codec, container=container)
    # WHEN its first 4 KiB are sniffed THEN the container is named
    assert sniff_video(data[:4096]) is expected


def test_sniff_refuses_matroska_that_is_not_webm_and_non_video():
    # GIVEN a Matroska (not WebM) clip, a JPEG, HEIF and M4A ftyp headers and random bytes
    mkv = slideshow(photos(1), 0.2, (160, 96), fps=FPS, container="mkv")
    heif = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    m4a = b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A isommp42"
    jpeg = jpeg_bytes(photo().resize((64, 64)))
    # WHEN sniffed as video THEN none of them is one
    for head in (mkv[:4096], heif, m4a, jpeg[:4096], bytes(range(256)) * 16, b""):
        assert sniff_video(head) is None


def test_probe_refuses_non_video_and_matroska(tmp_path):
    # GIVEN a JPEG and a Matroska clip on disk WHEN probed THEN both are unsupported
    mkv = slideshow(photos(1), 0.2, (160, 96), fps=FPS, container="mkv")
    for data in (jpeg_bytes(photo().resize((64, 64))), mkv):
        with pytest.raises(errors.UnsupportedMediaError) as caught:
            probe(write(tmp_path, data))
        assert caught.value.reason == "unsupported_media_type"


# --- probe ------------------------------------------------------------------------


def test_probe_reports_duration_size_codec_rate_and_audio(tmp_path, tagged, source):
    # GIVEN a 2 s 320x180 clip with audio and a 6 s 640x360 clip without
    # WHEN probed
    with_audio, silent = probe(write(tmp_path, tagged, "a.mp4")), probe(write(tmp_path, source, "b.mp4"))
    # THEN what the container holds is reported
    assert (with_audio.width, with_audio.height, with_audio.codec, with_audio.has_audio) == (320, 180, "h264", True)
    assert with_audio.duration_s == pytest.approx(2.0, abs=0.1)
    assert (silent.width, silent.height, silent.fps, silent.has_audio) == (640, 360, FPS, False)
    assert silent.duration_s == pytest.approx(SCENES * SECONDS_EACH, abs=0.1)


def test_probe_swaps_sides_of_a_phone_video_rotated_90_degrees(tmp_path):
    # GIVEN a landscape-coded clip whose display matrix says "rotate 90" (as phones record portrait)
    data = slideshow(photos(1), 0.4, (320, 180), fps=FPS, rotation=90)
    # WHEN probed and its frames extracted THEN both are portrait
    info = probe(write(tmp_path, data, "r.mp4"))
    frames = extract_frames(write(tmp_path, data, "r.mp4"), LIMITS)
    assert (info.width, info.height) == (180, 320)
    assert frames.frames[0].image.size == (180, 320)


def test_probe_refuses_a_codec_outside_the_allow_list(tmp_path):
    # GIVEN Motion JPEG inside a MOV container (valid, but not a codec we decode)
    data = slideshow(photos(1), 0.2, (160, 96), fps=FPS, codec="mjpeg", container="mov")
    # WHEN probed THEN it is refused before any frame is decoded
    with pytest.raises(errors.UnsupportedMediaError, match="codec mjpeg"):
        probe(write(tmp_path, data, "m.mov"))


@pytest.mark.parametrize("damage", ["garbage after ftyp", "cut in half", "moov zeroed"])
def test_corrupt_video_raises_corrupt_media_without_leaking_the_path(tmp_path, source, damage):
    # GIVEN an MP4 head followed by garbage, an MP4 cut in half, or one whose index is zeroed
    if damage == "garbage after ftyp":
        data = source[:32] + bytes(range(256)) * 64
    elif damage == "cut in half":
        data = source[: len(source) // 2]
    else:
        moov = source.index(b"moov") - 4
        data = source[: moov + 8] + bytes(len(source) - moov - 8)
    path = write(tmp_path, data, "SECRET-NAME.mp4")
    # WHEN frames are extracted THEN the typed rejection says so, and nothing about the file
    with pytest.raises(errors.CorruptMediaError) as caught:
        extract_frames(path, LIMITS)
    assert caught.value.reason == "corrupt_media"
    assert "SECRET" not in str(caught.value) and str(tmp_path) not in str(caught.value)


# --- remux ------------------------------------------------------------------------


def _describe(path) -> str:
    return subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def _video_packets(path) -> list[str]:
    out = subprocess.run([ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("container", ["mp4", "mov"])
def test_remux_drops_tags_subtitles_and_keeps_the_packets(tmp_path, tagged, container):
    # GIVEN a clip whose title, location and comment tags, subtitle cue and audio are all present
    src = write(tmp_path, tagged if container == "mp4" else slideshow(
        photos(2), 1.0, (320, 180), fps=FPS, container="mov", audio=True, subtitle="SUBTITLE-SECRET-cue",
        metadata={"title": "TITLE-SECRET-holiday", "location": "+52.5200+013.4050/"}), f"in.{container}")
    before = src.read_bytes()
    assert b"TITLE-SECRET-holiday" in before and b"+52.5200+013.4050" in before and b"SUBTITLE-SECRET" in before
    dst = tmp_path / f"out.{container}"
    # WHEN remuxed
    fmt = remux_clean(src, dst)
    # THEN none of it is left, in the bytes or as ffmpeg reads them ...
    after = dst.read_bytes()
    for secret in (b"TITLE-SECRET", b"+52.5200", b"COMMENT-SECRET", b"SUBTITLE-SECRET", b"Lavf"):
        assert secret not in after
    description = _describe(dst)
    assert ": Subtitle:" not in description and not re.search(r"^\s+(title|location|comment)\s*:", description, re.M)
    # ... the container kind and the audio stay, and the video packets are the same bytes (no re-encode)
    assert fmt.name == container and sniff_video(after[:4096]).name == container
    assert probe(dst).has_audio
    assert _video_packets(dst) == _video_packets(src)
    # MP4's index comes first (faststart), so a player can start before the download ends
    assert after.index(b"moov") < after.index(b"mdat")


def test_remux_of_webm_drops_tags_and_keeps_rotation(tmp_path):
    # GIVEN a WebM with a title tag and a MP4 whose display matrix rotates it
    webm = write(tmp_path, slideshow(photos(1), 0.4, (160, 96), fps=FPS, codec="libvpx-vp9", container="webm",
                                     metadata={"title": "TITLE-SECRET-webm"}), "in.webm")
    rotated = write(tmp_path, slideshow(photos(1), 0.4, (320, 180), fps=FPS, rotation=90), "rot.mp4")
    # WHEN both are remuxed
    remux_clean(webm, tmp_path / "out.webm")
    remux_clean(rotated, tmp_path / "rot-out.mp4")
    # THEN the tag is gone and the rotation (picture data, not a tag) survives
    assert b"TITLE-SECRET" in webm.read_bytes() and b"TITLE-SECRET" not in (tmp_path / "out.webm").read_bytes()
    assert (probe(tmp_path / "rot-out.mp4").width, probe(tmp_path / "rot-out.mp4").height) == (180, 320)


# --- frames -----------------------------------------------------------------------


def test_frames_cover_every_scene_from_keyframes(tmp_path, source):
    # GIVEN a four-scene slideshow encoded with x264's defaults (a keyframe at each cut)
    # WHEN frames are extracted
    fs = extract_frames(write(tmp_path, source, "s.mp4"), LIMITS)
    # THEN keyframes alone cover each scene, in time order, indexed, at the clip's size
    assert fs.method == "keyframes"
    assert {scene_of(f.t_seconds) for f in fs.frames} == set(range(SCENES))
    assert [f.index for f in fs.frames] == list(range(len(fs.frames)))
    assert [f.t_seconds for f in fs.frames] == sorted(f.t_seconds for f in fs.frames)
    assert all(f.image.mode == "RGB" and f.image.size == (640, 360) for f in fs.frames)
    assert not fs.truncated and fs.duration_s == pytest.approx(SCENES * SECONDS_EACH, abs=0.1)


def test_a_single_keyframe_encode_still_yields_every_scene(tmp_path):
    # GIVEN the same kind of slideshow encoded with one keyframe and no scene-cut detection,
    # as an uploader hiding scenes from keyframe sampling would do
    data = slideshow(photos(SCENES), SECONDS_EACH, (640, 360), fps=FPS,
                     extra_args=["-x264-params", "keyint=infinite:scenecut=0"])
    # WHEN frames are extracted
    fs = extract_frames(write(tmp_path, data, "k.mp4"), LIMITS)
    # THEN the scene pass over the long gap finds each scene anyway
    assert fs.method == "keyframes+scenes"
    assert {scene_of(f.t_seconds) for f in fs.frames} == set(range(SCENES))


def test_webm_frames_cover_every_scene(tmp_path):
    # GIVEN a three-scene, 6 s VP8 WebM (libvpx leaves one keyframe gap longer than 5 s here)
    data = slideshow(photos(3), 2.0, (320, 180), fps=FPS, codec="libvpx", container="webm")
    # WHEN frames are extracted THEN the Matroska path and the scene pass find each scene
    fs = extract_frames(write(tmp_path, data, "v.webm"), LIMITS)
    assert fs.method == "keyframes+scenes"
    assert {int(f.t_seconds // 2) for f in fs.frames} == {0, 1, 2}
    assert probe(tmp_path / "v.webm").codec == "vp8"


def test_frames_are_scaled_to_a_short_side_of_720(tmp_path):
    # GIVEN a 1080p clip
    data = slideshow(photos(1), 0.2, (1920, 1080), fps=FPS)
    # WHEN frames are extracted THEN they are 1280x720, and the source size is still reported
    fs = extract_frames(write(tmp_path, data, "hd.mp4"), LIMITS)
    assert fs.frames[0].image.size == (1280, 720) and (fs.width, fs.height) == (1920, 1080)


def test_a_reencode_matches_its_source_and_another_video_does_not(tmp_path, source, other):
    # GIVEN a source clip, the same clip re-encoded smaller and at a lower quality, and a different clip
    copy = reencode(source, (480, 270), crf=32)
    hashes = {name: pdq_frames(extract_frames(write(tmp_path, data, f"{name}.mp4"), LIMITS))
              for name, data in (("source", source), ("copy", copy), ("other", other))}
    # WHEN compared with vPDQ THEN the re-encode matches both ways and the other video does not
    query_share, reference_share = vpdq_match(hashes["copy"], hashes["source"])
    assert query_share >= 0.8 and reference_share >= 0.8
    assert max(vpdq_match(hashes["other"], hashes["source"])) < 0.5


def test_full_scan_matches_a_fixed_gop_reencode_both_ways(tmp_path, source):
    # GIVEN the source re-encoded with a keyframe every 0.5 s and no scene cuts (a platform transcode)
    copy = reencode(source, (480, 270), crf=30, extra_args=["-x264-params", "keyint=8:min-keyint=8:scenecut=0"])
    # WHEN both are hashed from a full scan (scene changes, whatever the keyframes)
    a = extract_frames(write(tmp_path, source, "s.mp4"), LIMITS, full_scan=True)
    b = extract_frames(write(tmp_path, copy, "c.mp4"), LIMITS, full_scan=True)
    # THEN the frames sit on the same scenes and match both ways
    assert a.method == b.method == "scenes"
    assert {scene_of(f.t_seconds) for f in b.frames} == set(range(SCENES))
    assert min(vpdq_match(pdq_frames(b), pdq_frames(a))) >= 0.8


# --- caps -------------------------------------------------------------------------


def test_a_video_longer_than_the_limit_is_rejected_as_too_long(tmp_path, source):
    # GIVEN a 6 s clip and a 5 s limit WHEN frames are extracted THEN it is a typed rejection
    with pytest.raises(errors.VideoTooLongError) as caught:
        extract_frames(write(tmp_path, source, "s.mp4"), dataclasses.replace(LIMITS, max_seconds=5))
    assert caught.value.reason == "video_too_long"
    assert errors.VideoTooLongError in errors.REJECTION_ERRORS


def test_more_distinct_frames_than_the_cap_keep_an_even_spread_and_say_so(tmp_path, source):
    # GIVEN a four-scene clip and a cap of two frames
    fs = extract_frames(write(tmp_path, source, "s.mp4"), dataclasses.replace(LIMITS, max_frames=2))
    # WHEN extracted THEN two frames remain, first and last scene, and the truncation is recorded
    assert len(fs.frames) == 2 and fs.truncated
    assert (scene_of(fs.frames[0].t_seconds), scene_of(fs.frames[-1].t_seconds)) == (0, SCENES - 1)


@pytest.mark.parametrize("limit,error,reason", [
    ({"max_bytes": 1000}, errors.MediaTooLargeError, "too_large"),
    ({"max_side": 320}, errors.DimensionsTooLargeError, "dimensions_too_large"),
    ({"max_pixels": 640 * 360 - 1}, errors.DecompressionBombError, "decompression_bomb"),
    ({"timeout_s": 0.001}, errors.VideoTimeoutError, "video_timeout"),
])
def test_byte_size_pixel_and_time_caps_are_typed_rejections(tmp_path, source, limit, error, reason):
    # GIVEN a 640x360 clip of ~100 KB and one cap it exceeds
    # WHEN frames are extracted THEN the matching typed rejection is raised
    with pytest.raises(error) as caught:
        extract_frames(write(tmp_path, source, "s.mp4"), dataclasses.replace(LIMITS, **limit))
    assert caught.value.reason == reason
    assert type(caught.value) in errors.REJECTION_ERRORS


# --- animations -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gif() -> bytes:
    """A GIF of three scenes, six slightly zooming frames each, 80 ms a frame."""
    return animated_gif(photos(3), frames_each=6)


def test_animated_gif_frames_start_each_scene_and_skip_near_repeats(gif):
    # GIVEN a GIF of three scenes, six slightly zooming frames each
    # WHEN its frames are extracted
    fs = extract_animated_frames(gif, LIMITS)
    # THEN the first frame of every scene is kept, and fewer frames than the GIF has
    starts = {round(i * 6 * 0.08, 2) for i in range(3)}
    assert fs.method == "animation-scene"
    assert starts <= {f.t_seconds for f in fs.frames}
    assert len(fs.frames) < 18 and fs.duration_s == pytest.approx(18 * 0.08)
    assert all(f.image.mode == "RGB" and f.image.size == (320, 240) for f in fs.frames)


def test_animation_frame_cap_and_image_limits_apply(gif):
    # GIVEN the same GIF
    # WHEN capped at two frames THEN an even spread is kept and marked truncated
    capped = extract_animated_frames(gif, dataclasses.replace(LIMITS, max_frames=2))
    assert len(capped.frames) == 2 and capped.truncated and capped.frames[0].t_seconds == 0
    # WHEN the image frame limit is below its 18 frames THEN it is refused unread
    with pytest.raises(errors.TooManyFramesError):
        extract_animated_frames(gif, dataclasses.replace(LIMITS, max_animation_frames=10))


# --- vPDQ -------------------------------------------------------------------------


def test_vpdq_ignores_low_quality_frames_and_counts_identical_hashes_once():
    # GIVEN hashes of real frames: two photos, one flipped-bit copy, one low-quality frame
    a, qa = PdqSignal.hash_image(photo("astronaut"))
    b, qb = PdqSignal.hash_image(photo("coffee"))
    near_a = f"{int(a, 16) ^ 0b111:064x}"  # 3 bits away
    query = [(a, qa), (a, qa), (near_a, qa), (b, 10)]
    reference = [(a, qa), (b, qb)]
    # WHEN compared
    query_share, reference_share = vpdq_match(query, reference)
    # THEN the low-quality frame does not count, the duplicate counts once, and coffee
    # (present in the reference only) is the one reference frame without a match
    assert hamming(a, b) > 31
    assert (query_share, reference_share) == (1.0, 0.5)
    assert vpdq_match([(b, 10)], reference) == (0.0, 0.0)


# What ffmpeg prints about a phone video: container tags, chapters, a tagged audio stream,
# cover art, a GPS data track and a subtitle; then the output section, which is not read.
PROBED = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'original':
  Metadata:
    major_brand     : isom
    compatible_brands: isomiso2avc1mp41
    creation_time   : 2026-11-30T10:00:00.000000Z
    location-eng    : +37.7000-122.4000/
    com.apple.quicktime.make: Apple
    comment         : first line
                    : second line
    jane_doe_2026   : a key the uploader named
  Duration: 00:00:02.00, start: 0.000000, bitrate: 91 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 1.000000
      Metadata:
        title           : Intro
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 64x64, 5 fps, 5 tbr (default)
    Metadata:
      handler_name    : Core Media Video
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp (default)
    Metadata:
      handler_name    : SoundHandler
      title           : Voice of Jane
  Stream #0:2: Audio: aac (LC), 44100 Hz, mono, fltp
  Stream #0:3: Video: mjpeg (Baseline), yuvj420p, 300x300, 90k tbr (attached pic)
  Stream #0:4[0x5](und): Data: none (mebx / 0x7862656D)
  Stream #0:5(eng): Subtitle: mov_text (tx3g / 0x67337874)
Stream mapping:
  Stream #0:0 -> #0:0 (copy)
Output #0, null, to 'pipe:':
  Metadata:
    secret_output_only: x
"""


def test_what_a_remux_drops_is_named_from_the_probe_without_values_or_structure():
    # GIVEN ffmpeg's description of a tagged phone video
    # WHEN read THEN every known tag key, the chapters, the cover art and the dropped tracks
    # are named; a key the uploader made up is only counted (it may be personal data, and the
    # list is audited); brands, handler names, the kept rotation (side data) and the output
    # section are not listed, and no value is kept
    assert removed_metadata(PROBED) == (
        "chapters", "com.apple.quicktime.make", "comment", "cover-art", "creation_time", "data-tracks:1",
        "extra-audio-tracks:1", "location", "other-tags:1", "subtitle-tracks:1", "title")


def test_probing_a_tagged_video_lists_what_its_clean_copy_drops(tmp_path):
    # GIVEN a video tagged with a title and a location, as a phone writes them
    src = tmp_path / "tagged.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-metadata", "title=Secret Title",
                    "-metadata", "location=+37.7000-122.4000/", str(src)], check=True)
    # WHEN probed THEN the tags are named, and the clean copy has none of them
    info = probe(src)
    assert {"title", "location"} <= set(info.metadata)
    clean = tmp_path / "clean.mp4"
    remux_clean(src, clean)
    assert probe(clean).metadata == ()
