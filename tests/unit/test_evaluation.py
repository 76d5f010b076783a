"""eval's metrics against numbers worked out by hand, and its labels CSV checks.

The tiny labelled set used throughout (score of one signal, label):

    file  A    B    C    D    E    F
    score 0.9  0.8  0.8  0.3  0.1  0.5
    label pos  pos  neg  pos  neg  neg

3 positives (A, B, D), 3 negatives (C, E, F); B and C tie at 0.8.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mediaguard.cli.evaluate import LabelsError, read_labels
from mediaguard.decisions.evaluation import (
    RISK,
    action_metrics,
    average_ranks,
    confusion_at,
    current_threshold,
    evaluate,
    pr_curve,
    roc_auc,
    roc_curve,
    suggest_threshold,
)
from mediaguard.decisions.scoring import SEVERITY, Policy, load_policy

SCORES = [0.9, 0.8, 0.8, 0.3, 0.1, 0.5]
TRUTH = [1, 1, 0, 1, 0, 0]


def test_average_ranks_share_the_mean_rank_of_a_tie():
    # GIVEN 0.1 < 0.3 < 0.5 < 0.8 = 0.8 < 0.9: ranks 1, 2, 3, then 4 and 5 shared (4.5), then 6
    assert average_ranks(SCORES).tolist() == [6, 4.5, 4.5, 2, 1, 3]


def test_roc_auc_is_mann_whitney_with_a_tie_counting_one_half():
    # Positive ranks 6 + 4.5 + 2 = 12.5; U = 12.5 - 3*4/2 = 6.5; AUC = 6.5 / (3*3) = 0.722222.
    # Pair by pair: A beats C, E, F (3); B beats E, F and ties C (2.5); D beats E (1): 6.5 of 9.
    assert roc_auc(SCORES, TRUTH) == pytest.approx(6.5 / 9, abs=1e-6)
    # A perfect ranking, a reversed one, and all-tied scores
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.0, 0.0, 0.0], [1, 0, 0]) == 0.5
    # Without both classes there is no AUC
    assert roc_auc([0.3, 0.4], [1, 1]) is None


def test_roc_curve_area_equals_the_auc():
    # GIVEN the curve, one point per distinct score from "flag nothing" down
    points = roc_curve(SCORES, TRUTH)
    third = 1 / 3
    expected = [(math.inf, 0, 0), (0.9, 0, third), (0.8, third, 2 * third), (0.5, 2 * third, 2 * third),
                (0.3, 2 * third, 1), (0.1, 1, 1)]
    assert [p[0] for p in points] == [e[0] for e in expected]
    for (_, fpr, tpr), (_, efpr, etpr) in zip(points, expected, strict=True):
        assert (fpr, tpr) == (pytest.approx(efpr), pytest.approx(etpr))
    # THEN its trapezoid area is 1/6 + 2/9 + 1/3 = 13/18, the Mann-Whitney AUC
    area = sum((x2 - x1) * (y1 + y2) / 2 for (_, x1, y1), (_, x2, y2) in zip(points, points[1:], strict=False))
    assert area == pytest.approx(13 / 18) == pytest.approx(roc_auc(SCORES, TRUTH), abs=1e-6)


def test_pr_curve_by_hand():
    # >= 0.9: A (1 tp); >= 0.8: A, B, C (2 tp, 1 fp); >= 0.5: + F; >= 0.3: + D; >= 0.1: everything
    assert [(t, pytest.approx(r), pytest.approx(p)) for t, r, p in pr_curve(SCORES, TRUTH)] == [
        (0.9, 1 / 3, 1.0), (0.8, 2 / 3, 2 / 3), (0.5, 2 / 3, 2 / 4), (0.3, 1.0, 3 / 5), (0.1, 1.0, 3 / 6)]


def test_confusion_at_a_threshold_by_hand():
    # >= 0.5 flags A, B, C, F: tp A, B; fp C, F; tn E; fn D
    c = confusion_at(SCORES, TRUTH, 0.5)
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 2, 1, 1)
    assert (c.precision, c.recall, c.fpr) == (0.5, pytest.approx(2 / 3), pytest.approx(2 / 3))
    # Nothing flagged: precision has no denominator
    none = confusion_at(SCORES, TRUTH, 2.0)
    assert none.precision is None and none.recall == 0.0 and none.fpr == 0.0


def test_suggested_threshold_is_the_lowest_meeting_the_target_fpr():
    # Target 0.34 (one false positive in three allowed): 0.9 has FPR 0, 0.8 FPR 1/3 (C), 0.5 FPR 2/3.
    # The lowest threshold within target is 0.8, recall 2/3.
    s = suggest_threshold(SCORES, TRUTH, 0.34)
    assert (s.threshold, s.recall, s.fpr) == (0.8, pytest.approx(2 / 3), pytest.approx(1 / 3))
    # Target 0: only 0.9 keeps every negative out; recall 1/3
    s = suggest_threshold(SCORES, TRUTH, 0.0)
    assert (s.threshold, s.recall, s.fpr) == (0.9, pytest.approx(1 / 3), 0.0)
    # A negative holds the top score: no threshold meets FPR 0
    s = suggest_threshold([0.9, 0.5], [0, 1], 0.0)
    assert (s.threshold, s.recall, s.fpr) == (None, 0.0, 0.0)


def test_current_threshold_is_where_the_signal_alone_leaves_allow():
    policy = load_policy("2026-11-23.3")  # lowest action threshold 0.30 (label)
    # open_nsfw weight 0.8: 0.8 * v >= 0.3 at v = 0.375
    assert current_threshold("classifier.open_nsfw.nsfw", policy) == 0.375
    # provenance.ai_generated weight 0.35: 0.3 / 0.35 = 0.857143
    assert current_threshold("provenance.ai_generated", policy) == pytest.approx(0.857143)
    # history.burst weight 0.1 can never reach 0.3 alone; an unweighted signal neither
    assert current_threshold("history.burst", policy) is None
    assert current_threshold("classifier.new_model.ai", policy) is None
    assert current_threshold(RISK, policy) == 0.3
    # Through a ramp: weight 1.0, ramp 20..100 reaches factor 0.3 at 20 + 0.3 * 80 = 44
    ramped = Policy.model_validate({**policy.model_dump(), "weights": {"history.burst": 1.0}})
    assert current_threshold("history.burst", ramped) == pytest.approx(44.0)


def test_actions_predict_at_least_as_severe_on_the_policy_ladder():
    # GIVEN decided actions allow, label, review, remove on neg, pos, neg, pos
    results = [{"action": a} for a in ("allow", "label", "review", "remove")]
    truth = [False, True, False, True]
    rows = {r["action"]: (r["tp"], r["fp"], r["tn"], r["fn"]) for r in action_metrics(results, truth)}
    # THEN the rows follow the ladder, "allow" (everything) left out
    assert list(rows) == list(SEVERITY[1:])
    assert rows["label"] == (2, 1, 1, 0)  # label, review, remove flagged
    assert rows["blur"] == rows["limit"] == rows["review"] == (1, 1, 1, 1)  # review, remove
    assert rows["remove"] == (1, 0, 2, 1)


def test_evaluate_measures_every_signal_seen_with_absent_as_zero():
    # GIVEN six files: a new signal only two of them carry, one positive label per kind, two groups
    def r(label, group, nsfw, aigen, risk, action):
        signals = [{"name": "classifier.open_nsfw.nsfw", "value": nsfw, "contribution": 0.8 * nsfw}]
        if aigen is not None:
            signals.append({"name": "classifier.aigen.ai", "value": aigen, "contribution": 0.0})
        return {"label": label, "group": group, "signals": signals, "risk": risk, "action": action,
                "status": "done", "models": [{"id": "open_nsfw", "sha256": "ab"}]}

    results = [r("real", "x", 0.1, None, 0.08, "allow"), r("benign", "y", 0.5, 0.2, 0.4, "label"),
               r("ai", "x", 0.2, 0.9, 0.16, "allow"), r("swap", "y", 0.9, None, 0.72, "limit"),
               r("real", "y", 0.05, None, 0.04, "allow"), r("ai", "x", 0.3, None, 0.24, "allow")]
    report = evaluate(results, load_policy("2026-11-23.3"), target_fpr=0.0)
    assert report["files"] == 6 and report["labels"] == {"ai": 2, "benign": 1, "real": 2, "swap": 1}
    assert (report["positives"], report["negatives"]) == (3, 3)
    assert report["models"] == [{"id": "open_nsfw", "sha256": "ab"}]
    signals = {s["name"]: s for s in report["signals"]}
    assert list(signals) == ["classifier.aigen.ai", "classifier.open_nsfw.nsfw", "risk"]
    # aigen scores (absent = 0): pos ai 0.9, swap 0, ai 0; neg real 0, benign 0.2, real 0.
    # Pairs: 0.9 beats all 3 (3); each 0 loses to 0.2 and ties two 0s (1 each): AUC 5/9
    assert signals["classifier.aigen.ai"]["auc"] == pytest.approx(5 / 9, abs=1e-6)
    # It has no weight: no current threshold; at FPR 0 the suggestion is 0.9 with recall 1/3
    assert signals["classifier.aigen.ai"]["current_threshold"] is None
    assert signals["classifier.aigen.ai"]["suggested_threshold"] == 0.9
    # open_nsfw at 0.375: flags benign 0.5 (fp) and swap 0.9 (tp)
    at = signals["classifier.open_nsfw.nsfw"]["at_threshold"]
    assert (at["tp"], at["fp"], at["tn"], at["fn"]) == (1, 1, 2, 2)
    # Per label: ai (2) vs the 3 negatives; per group: x has real + 2 ai, y has benign, swap, real
    assert set(report["per_label"]) == {"ai", "swap"}
    assert (report["per_label"]["ai"]["positives"], report["per_label"]["ai"]["negatives"]) == (2, 3)
    assert {g: (m["positives"], m["negatives"]) for g, m in report["per_group"].items()} == {"x": (2, 1),
                                                                                           "y": (1, 2)}


# --- the labels CSV --------------------------------------------------------------------------


def write(tmp_path: Path, text: str, files: tuple[str, ...] = ("a.jpg", "b.jpg")) -> Path:
    for name in files:
        (tmp_path / name).write_bytes(b"x")
    csv = tmp_path / "labels.csv"
    csv.write_text(text)
    return csv


def test_labels_resolve_paths_against_the_csv_folder(tmp_path):
    rows = read_labels(write(tmp_path, "path,label,group\na.jpg,real,g1\nb.jpg,ai,\n"))
    assert [(r.path, r.label, r.group) for r in rows] == [(tmp_path / "a.jpg", "real", "g1"),
                                                          (tmp_path / "b.jpg", "ai", None)]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("path,label\n", "no rows"),
    ("path,label,score\na.jpg,real,1\n", "unknown ['score']"),
    ("file,label\na.jpg,real\n", "missing ['path']"),
    ("path,label\na.jpg,real\nmissing.jpg,ai\n", "1 file(s) not found: missing.jpg"),
    ("path,label\na.jpg,Real Photo\n", "not a short lower-case word"),
    ("path,label\na.jpg,real,extra\n", "more values than columns"),
])
def test_bad_labels_files_are_typed_errors(tmp_path, text, message):
    with pytest.raises(LabelsError) as err:
        read_labels(write(tmp_path, text))
    assert message in str(err.value)
