"""``mediaguard eval`` as a user runs it: a labelled CSV of small files through the local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bench.eval_set import paste_face
from mediaguard.decisions.scoring import SEVERITY
from tests.conftest import jpeg_bytes, photo

SIGNAL_FIELDS = {"name", "auc", "positives", "negatives", "current_threshold", "at_threshold",
                 "suggested_threshold", "suggested_recall", "fpr_at_suggested"}
ACTION_FIELDS = {"action", "precision", "recall", "fpr", "tp", "fp", "tn", "fn"}


def mediaguard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mediaguard.cli", *args], capture_output=True, text=True,
                          timeout=300)


def small(img: Image.Image) -> Image.Image:
    return img.resize((img.width // 2, img.height // 2))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    media = root / "media"
    media.mkdir()
    files = {
        "astronaut.jpg": (photo("astronaut"), "real", "colour"),
        "camera.jpg": (photo("camera"), "real", "grey"),
        "coins.jpg": (photo("coins"), "benign", "grey"),
        "coffee-swap.jpg": (paste_face(photo("coffee")), "swap", "colour"),
        "chelsea-swap.jpg": (paste_face(photo("chelsea")), "swap", "colour"),
    }
    rows = ["path,label,group"]
    for name, (img, label, group) in files.items():
        (media / name).write_bytes(jpeg_bytes(small(img)))
        rows.append(f"media/{name},{label},{group}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


def test_eval_reports_the_json_contract_and_writes_the_html_report(labelled, tmp_path):
    # GIVEN five labelled files (three real/benign photos, two face pastes) and an output folder
    out = tmp_path / "report"
    # WHEN eval runs them through the local stack
    result = mediaguard("eval", "--json", "--out", str(out), str(labelled))
    # THEN stdout is one JSON object with the documented fields
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["files"] == 5
    assert report["labels"] == {"benign": 1, "real": 2, "swap": 2}
    assert (report["positives"], report["negatives"]) == (2, 3)
    assert report["policy_version"] and report["target_fpr"] == 0.01
    names = [s["name"] for s in report["signals"]]
    assert "classifier.open_nsfw.nsfw" in names and names[-1] == "risk"
    for s in report["signals"]:
        assert SIGNAL_FIELDS <= set(s) and (s["positives"], s["negatives"]) == (2, 3)
        assert s["auc"] is None or 0.0 <= s["auc"] <= 1.0
    assert [a["action"] for a in report["actions"]] == list(SEVERITY[1:])
    assert all(ACTION_FIELDS <= set(a) and a["tp"] + a["fp"] + a["tn"] + a["fn"] == 5 for a in report["actions"])
    assert set(report["per_label"]) == {"swap"} and set(report["per_group"]) == {"colour", "grey"}
    assert report["models"] and all(m["id"] and m["sha256"] for m in report["models"])
    # AND results.jsonl holds one scan result per file with its label, whose actions give the same confusion
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [Path(r["file"]).name for r in rows] == ["astronaut.jpg", "camera.jpg", "coins.jpg", "coffee-swap.jpg",
                                                   "chelsea-swap.jpg"]
    assert all(r["status"] == "done" and r["label"] for r in rows)
    flagged = [r for r in rows if r["action"] != "allow"]
    label_row = report["actions"][0]
    assert label_row["tp"] == sum(r["label"] == "swap" for r in flagged)
    assert label_row["fp"] == sum(r["label"] != "swap" for r in flagged)
    # AND the HTML report is self-contained with ROC and PR plots
    html = (out / "report.html").read_text()
    assert '<svg class="roc"' in html and '<svg class="pr"' in html and "<polyline" in html
    assert report["policy_version"] in html and "<script" not in html


def test_eval_refuses_bad_input_before_running_and_writes_nothing(labelled, tmp_path):
    # GIVEN a labels file naming a file that does not exist
    bad = labelled.parent / "bad.csv"
    bad.write_text("path,label\nmedia/astronaut.jpg,real\nmedia/nowhere.jpg,ai\n")
    out = tmp_path / "never"
    # WHEN eval is asked to run it
    result = mediaguard("eval", "--json", "--out", str(out), str(bad))
    # THEN it exits 2 with the reason, prints no report and writes nothing
    assert result.returncode == 2
    assert "not found: media/nowhere.jpg" in result.stderr
    assert result.stdout == "" and not out.exists()
