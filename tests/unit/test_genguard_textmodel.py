"""The text-classifier slot, with a tiny ONNX model the test builds (no model ships)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mediaguard.genguard.screen import screen
from mediaguard.genguard.textmodel import TextModelConfigError, features, load_text_models, text_scorer

DIM = 1024


def tiny_text_model(trigger: str) -> bytes:
    """[N, DIM] hashed n-grams -> MatMul W + B -> Softmax -> [N, 2]: column 1 is the
    cosine of the prompt's features with the trigger's, scaled, so prompts sharing the
    trigger's n-grams score high and others low."""
    w = np.zeros((DIM, 2), dtype=np.float32)
    w[:, 1] = features(trigger, DIM) * 12.0
    b = np.array([3.0, 0.0], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["mm"]), helper.make_node("Add", ["mm", "B"], ["logits"])],
        "tiny-text",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, DIM])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 2])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_config(tmp_path, **overrides) -> str:
    (tmp_path / "t.onnx").write_bytes(tiny_text_model("zorblax"))
    spec = {"id": "tiny", "path": "t.onnx", "dim": DIM, "labels": ["ok", "harmful"], "refuse_label": "harmful",
            "threshold": 0.8, "softmax": True, **overrides}
    path = tmp_path / "text-models.json"
    path.write_text(json.dumps({"models": [spec]}))
    return str(path)


def test_features_are_the_normalised_prompts_hashed_ngrams():
    # GIVEN two spellings the rules read alike  THEN the model sees the same input
    assert np.allclose(features("N.U.D.E", 256), features("nude", 256))
    assert np.isclose(np.linalg.norm(features("a cat", 256)), 1.0)


def test_a_plugged_in_model_refuses_what_it_scores_high_and_passes_the_rest(tmp_path):
    score = text_scorer(write_config(tmp_path))
    high, low = score("a zorblax please")[0], score("a lighthouse at dusk")[0]
    assert high.score >= 0.8 > low.score and high.sha256 and high.model == "tiny"
    verdict = screen("a zorblax please", text_scores=score("a zorblax please"))
    assert verdict.reasons == ["classifier.tiny"] and verdict.matched[0]["threshold"] == 0.8
    assert screen("a lighthouse at dusk", text_scores=score("a lighthouse at dusk")).allowed


@pytest.mark.parametrize(("overrides", "message"), [
    ({"dim": 512}, "input shape"),
    ({"refuse_label": "nope"}, "refuse_label"),
    ({"path": "missing.onnx"}, "not found"),
    ({"sha256": "0" * 64}, "pinned"),
])
def test_a_bad_configuration_fails_at_load_not_with_a_wrong_score(tmp_path, overrides, message):
    with pytest.raises(TextModelConfigError, match=message):
        load_text_models(write_config(tmp_path, **overrides))
