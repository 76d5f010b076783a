"""``mediaguard redteam`` through the local stack: the JSON contract (one line per
transform, then a summary) and what the matchers do guarantee under a few transforms.

The command runs a reduced catalogue here (the full one costs ~1.5 s a copy, ~45 s a
photo on this machine); tests/unit/test_transforms.py runs every transform."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from mediaguard.analysis.transforms import CATALOGUE, apply
from mediaguard.cli.main import build_parser
from mediaguard.cli.redteam import AIGEN_SIGNAL, Outcome, outcome, run_redteam, transform_line
from mediaguard.cli.scan import Out
from mediaguard.signals import PdqSignal, hamming
from tests.conftest import jpeg_bytes, photo

LINE_FIELDS = {"transform", "n", "matched", "match_rate", "mean_distance", "detected_ai", "detected_faces"}
SUBSET = ["jpeg_q90", "mirror", "rotate_90", "crop_50", "noise_10"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam")
    paths = []
    for name in ("astronaut", "coffee"):
        path = root / f"{name}.jpg"
        path.write_bytes(jpeg_bytes(photo(name)))
        paths.append(path)
    return paths


def test_redteam_json_reports_each_transform_and_a_summary(inputs, capfd):
    # GIVEN two photos and no --bank: they are banked themselves (block bank "redteam")
    args = build_parser().parse_args(["redteam", "--json", *map(str, inputs)])
    # WHEN five transforms run on both
    code = run_redteam(args, Out(), transforms=SUBSET)
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    # THEN stdout holds one line per transform, in catalogue order, then the summary
    assert code == 0
    *per_transform, summary = lines
    assert [line["transform"] for line in per_transform] == SUBSET
    by_name = {line["transform"]: line for line in per_transform}
    for line in per_transform:
        assert set(line) == LINE_FIELDS
        assert line["n"] == 2 and 0 <= line["matched"] <= 2
        assert line["match_rate"] == pytest.approx(line["matched"] / 2, abs=1e-3)
        for share in ("detected_ai", "detected_faces"):  # null until the signal exists
            assert line[share] is None or 0.0 <= line[share] <= 1.0
    assert summary == {"summary": True, "inputs": 2, "unbanked": 0, "transforms": 5, "copies": 10,
                       "match_rate": summary["match_rate"],
                       "gaps": [n for n in SUBSET if by_name[n]["match_rate"] < 0.5]}
    assert summary["match_rate"] == pytest.approx(sum(line["matched"] for line in per_transform) / 10, abs=1e-3)
    # AND a q90 re-encode matches its original by PDQ, close
    assert by_name["jpeg_q90"]["matched"] == 2 and by_name["jpeg_q90"]["mean_distance"] <= 8
    # AND mirror and rotation match within PDQ's threshold: the dihedral search finds them
    for name in ("mirror", "rotate_90"):
        assert by_name[name]["matched"] == 2
        assert by_name[name]["mean_distance"] <= PdqSignal.match_threshold
    # AND the 50 % crop is reported as measured: a PDQ distance only where the crop's own
    # hash is within the threshold of the original's (computed here, outside the pipeline)
    crop_close = []
    for path in inputs:
        original = PdqSignal.hash_image(Image.open(path).convert("RGB"))[0]
        cropped = apply(CATALOGUE["crop_50"], path.read_bytes()).data
        variants = PdqSignal.hash_dihedral(Image.open(io.BytesIO(cropped)).convert("RGB"))[0]
        crop_close.append(min(hamming(original, v) for v in variants) <= PdqSignal.match_threshold)
    if not any(crop_close):
        assert by_name["crop_50"]["mean_distance"] is None


def test_a_copy_counts_only_when_it_matches_its_own_originals_entry():
    # GIVEN a result matching another input's entry by PDQ and its own by embedding only
    result = {"status": "done", "matches": [
        {"bank": "redteam", "ref": "m-other", "distance": 3, "signal": "pdq", "kind": "block"},
        {"bank": "redteam", "ref": "m-self", "distance": 0.07, "signal": "embedding", "kind": "block"}],
        "signals": [{"name": "classifier.open_nsfw.nsfw", "value": 0.01, "contribution": 0.0}]}
    # THEN it matched, with no PDQ distance, and no AI or face verdict (signals absent)
    judged = outcome(result, {("redteam", "m-self")})
    assert judged == Outcome(matched=True, signal="embedding", distance=None, ai=None, faces=None, status="done")
    assert not outcome(result, {("redteam", "m-third")}).matched
    # AND with the detector's signal and faces present, the shares count them
    scored = {**result, "signals": [{"name": AIGEN_SIGNAL, "value": 0.9, "contribution": 0.0}],
              "faces": {"count": 0, "model": "x", "boxes": []}}
    line = transform_line("t", [outcome(scored, {("redteam", "m-other")}), outcome(result, set())])
    assert line == {"transform": "t", "n": 2, "matched": 1, "match_rate": 0.5, "mean_distance": 3.0,
                    "detected_ai": 1.0, "detected_faces": 0.0}
