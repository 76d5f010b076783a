"""Bank matching through the whole pipeline: videos (vPDQ), rotated and cropped copies,
the index build plus its live delta, withdrawals."""

from __future__ import annotations

import time

import pytest
from PIL import Image, ImageOps

from bench.clips import photos, reencode, slideshow
from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.analysis.featurize import media_featurizer
from tests.conftest import jpeg_bytes, photo


@pytest.fixture(scope="module")
def banks(cloud):
    return dynamo_bank_service(cloud.deps().settings)


def _after_a_minute(cloud) -> None:
    # Bank changes must be matchable within 60 s without an index rebuild: let a minute pass.
    cloud.set_clock(lambda: time.time() + 61 + 61 * _after_a_minute.calls)
    _after_a_minute.calls += 1


_after_a_minute.calls = 0


def _scan(cloud, data: bytes, content_type: str) -> tuple[dict, list[str]]:
    media_id = cloud.upload(data, content_type)
    run = cloud.wait(media_id)
    return cloud.item(media_id), run.states


def test_video_reencoded_at_another_resolution_matches_its_banked_source(cloud, banks):
    # GIVEN a flag bank holding a video (banked frame by frame, as the pipeline cuts it)
    source = slideshow(photos(4), seconds_each=1.0, size=(640, 360))
    banks.create_bank("deepfakes", "flag", actor="test")
    report = banks.add_media("deepfakes", "clip-1", source, actor="test", declared="video/mp4",
                             featurizer=media_featurizer(cloud.deps().settings))
    assert report.added >= 4
    _after_a_minute(cloud)
    # WHEN the same clip comes back re-encoded at 426x240 with a lower bitrate
    copy = reencode(source, (426, 240), crf=32)
    item, states = _scan(cloud, copy, "video/mp4")
    # THEN it went through the frames stage and the classifier Map, and matched by vPDQ
    assert states[:4] == ["Sanitize", "MediaType", "Frames", "Classify"]
    assert states[-3:] == ["Score", "Enforce", "Done"]
    assert item["media_type"] == "video" and item["frames"]["count"] >= 4
    vpdq = [m for m in item["matches"] if m["signal"] == "vpdq"]
    assert vpdq and vpdq[0]["bank"] == "deepfakes" and vpdq[0]["ref"] == "clip-1"
    assert vpdq[0]["frames_matched"] >= 0.8 and vpdq[0]["reference_matched"] >= 0.8
    # AND the served copy is the remuxed video, the original kept untouched
    assert item["sanitized_key"].endswith(".mp4")


def test_an_unrelated_video_matches_nothing(cloud, banks):
    # GIVEN the bank of the previous test; WHEN a clip of other scenes is uploaded
    other = slideshow(photos(4, offset=6), seconds_each=1.0, size=(640, 360))
    item, _ = _scan(cloud, other, "video/mp4")
    # THEN no bank entry matches it
    assert item["status"] == "done" and item.get("matches") in (None, [])


@pytest.fixture(scope="module")
def victims(cloud, banks):
    """A block bank holding one photo (its PDQ and its embedding)."""
    banks.create_bank("victims", "block", actor="test")
    banks.add_media("victims", "v-1", jpeg_bytes(photo("chelsea")), actor="test", declared="image/jpeg",
                    featurizer=media_featurizer(cloud.deps().settings))
    _after_a_minute(cloud)
    return "victims"


@pytest.mark.parametrize("transform", ["rotate90", "mirror", "crop"])
def test_rotated_mirrored_and_cropped_copies_of_a_banked_photo_match(cloud, victims, transform):
    # GIVEN a block bank holding a photo (PDQ + embedding)
    img = photo("chelsea")
    copy = {"rotate90": lambda: img.transpose(Image.Transpose.ROTATE_90),
            "mirror": lambda: ImageOps.mirror(img),
            "crop": lambda: img.crop((int(img.width * 0.12), int(img.height * 0.12),
                                      int(img.width * 0.88), int(img.height * 0.88)))}[transform]()
    # WHEN the transformed copy is uploaded
    item, _ = _scan(cloud, jpeg_bytes(copy, quality=75), "image/jpeg")
    # THEN it matches the banked photo and is removed; the match names the signal that caught it
    match = next(m for m in item["matches"] if m["bank"] == "victims")
    expected = {"rotate90": "pdq_dihedral", "mirror": "pdq_dihedral", "crop": {"pdq", "embedding"}}[transform]
    assert match["signal"] in (expected if isinstance(expected, set) else {expected})
    # A hash match on a block bank removes; an embedding-only match is a likeness, not proof:
    # the policy sends it to people, escalated.
    if match["signal"] == "embedding":
        assert (item["action"], item["escalate"]) == ("review", True)
    else:
        assert item["action"] == "remove"


def test_index_build_then_withdrawal_takes_effect_without_a_rebuild(cloud, banks):
    # GIVEN a banked photo folded into a published index build
    banks.create_bank("ncii", "block", actor="test")
    data = jpeg_bytes(photo("rocket"))
    banks.add_media("ncii", "r-1", data, actor="test", declared="image/jpeg",
                    featurizer=media_featurizer(cloud.deps().settings))
    built = cloud.invoke("IndexBuildFunction", {"detail-type": "Scheduled Event", "detail": {}})
    assert built["pdq_entries"] >= 1 and built["embedding_entries"] >= 1
    _after_a_minute(cloud)
    first, _ = _scan(cloud, jpeg_bytes(photo("rocket").resize((400, 600)), quality=70), "image/jpeg")
    assert any(m["bank"] == "ncii" for m in first["matches"])
    # WHEN the entry is withdrawn (a third-party hash found to be wrong) and a minute passes
    banks.withdraw("ncii", "r-1", actor="test")
    _after_a_minute(cloud)
    second, _ = _scan(cloud, jpeg_bytes(photo("rocket").resize((400, 600)), quality=70), "image/jpeg")
    # THEN the same copy no longer matches, though the index build still holds the hash
    assert not any(m["bank"] == "ncii" for m in second.get("matches") or [])


def test_a_video_matching_a_block_bank_is_removed_into_the_evidence_store(cloud, banks):
    # GIVEN a block bank holding a clip
    source = slideshow(photos(3, offset=4), seconds_each=1.0, size=(640, 360))
    banks.create_bank("ncii-video", "block", actor="test")
    banks.add_media("ncii-video", "v-7", source, actor="test", declared="video/mp4",
                    featurizer=media_featurizer(cloud.deps().settings))
    _after_a_minute(cloud)
    # WHEN its re-encode is uploaded
    copy = reencode(source, (480, 270), crf=30)
    item, _ = _scan(cloud, copy, "video/mp4")
    # THEN it is removed: nothing is served, and the original and the remuxed copy sit in
    # the evidence store, byte for byte what was uploaded and what was served
    assert item["action"] == "remove" and item.get("served_key") is None
    assert any(m["signal"] == "vpdq" and m["bank"] == "ncii-video" for m in item["matches"])
    s3 = cloud.client("s3")
    evidence = cloud.output("EvidenceBucket")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=evidence, Prefix=f"evidence/{item['media_id']}/")
            .get("Contents", [])]
    originals = [k for k in keys if "original" in k]
    assert originals and s3.get_object(Bucket=evidence, Key=originals[0])["Body"].read() == copy
    assert any(k.endswith("sanitized.mp4") for k in keys)
