"""The red-team catalogue (mediaguard.analysis.transforms): every transform runs, yields
decodable media of a sane size, and gives the same bytes twice."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from bench.clips import photos, slideshow
from mediaguard.analysis.transforms import CATALOGUE, IMAGE_TRANSFORMS, VIDEO_TRANSFORMS, apply, media_of
from mediaguard.ingress.video import probe
from tests.conftest import jpeg_bytes, photo

NAMED_WITH_PARAMETERS = re.compile(r"^[a-z]+(_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def chelsea_jpeg() -> bytes:
    return jpeg_bytes(photo("chelsea"))  # 451x300


@pytest.fixture(scope="module")
def clip() -> bytes:
    return slideshow(photos(2), seconds_each=0.6, size=(160, 120), fps=25)


def test_the_catalogue_covers_the_evasions_the_issue_lists():
    names = set(CATALOGUE)
    assert len(names) >= 12 and len(names) == len(IMAGE_TRANSFORMS) + len(VIDEO_TRANSFORMS)
    assert all(NAMED_WITH_PARAMETERS.match(n) for n in names)
    for family in ("crop_", "mirror", "rotate_", "jpeg_q", "resize_", "border_", "hue_", "noise_", "text_",
                   "logo_", "screenshot_", "collage_", "video_fps_", "video_res_"):
        assert any(n.startswith(family) for n in names), family
    assert len([n for n in names if n.startswith("crop_")]) >= 3


@pytest.mark.parametrize("transform", IMAGE_TRANSFORMS, ids=lambda t: t.name)
def test_every_image_transform_gives_a_decodable_deterministic_copy(transform, chelsea_jpeg):
    # GIVEN a real photo and one neighbour for the collages
    others = [photo("coffee")]
    # WHEN the transform runs twice
    first = apply(transform, chelsea_jpeg, others=others)
    second = apply(transform, chelsea_jpeg, others=others)
    # THEN the bytes are the same, decode as the declared type, at a sane size
    assert first.data == second.data and first.transform == transform.name
    img = Image.open(io.BytesIO(first.data))
    img.load()
    assert first.content_type == Image.MIME[img.format]
    assert 64 <= min(img.size) and max(img.size) <= 4 * 451
    assert media_of(first.data) == "image"


def test_seeded_noise_depends_on_the_seed_and_collages_on_the_neighbours(chelsea_jpeg):
    noise = CATALOGUE["noise_10"]
    assert apply(noise, chelsea_jpeg, seed=1).data != apply(noise, chelsea_jpeg, seed=2).data
    collage = CATALOGUE["collage_2x2"]
    alone = apply(collage, chelsea_jpeg)  # seeded colour fields as neighbours
    assert alone.data == apply(collage, chelsea_jpeg).data
    assert alone.data != apply(collage, chelsea_jpeg, others=[photo("coffee")]).data


@pytest.mark.parametrize("transform", VIDEO_TRANSFORMS, ids=lambda t: t.name)
def test_every_video_transform_gives_a_decodable_deterministic_video(transform, clip, tmp_path):
    # WHEN a video transform runs twice on a 160x120 25 fps clip
    first = apply(transform, clip)
    assert first.data == apply(transform, clip).data
    # THEN the copy is an MP4 the pipeline's own probe reads, with the change the name says
    path = Path(tmp_path) / "copy.mp4"
    path.write_bytes(first.data)
    info = probe(path)
    assert first.content_type == "video/mp4" and info.codec == "h264" and info.duration_s > 0.5
    expected = {"video_fps_15": ((160, 120), 15), "video_res_50": ((80, 60), 25),
                "video_crop_75": ((120, 90), 25), "video_border_10": ((192, 144), 25)}
    size, fps = expected.get(transform.name, ((160, 120), 25))
    assert (info.width, info.height) == size and info.fps == pytest.approx(fps, abs=0.1)


def test_a_transform_refuses_the_other_media_type(chelsea_jpeg, clip):
    assert media_of(clip) == "video" and media_of(chelsea_jpeg) == "image"
    with pytest.raises(ValueError):
        apply(CATALOGUE["video_fps_15"], chelsea_jpeg)
    with pytest.raises(ValueError):
        apply(CATALOGUE["mirror"], clip)
