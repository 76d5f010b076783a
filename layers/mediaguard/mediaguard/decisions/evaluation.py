"""Detection metrics on a labelled set: what ``mediaguard eval`` reports, in pure Python + numpy.

A labelled result is one scanned file (the ``scan --json`` object) with its ``label``
and optional ``group``. ``real`` and ``benign`` are the negatives; any other label
(``ai``, ``swap``, ``nsfw``, ...) is a positive for "harmful" overall, and each positive
label is also measured alone against the negatives.

Every signal name seen in any result becomes a row, so signals added later (new
classifiers, face cues) are measured without editing this module. A file that has no
value for a signal scores 0.0 on it: the scorer only records a classifier when its model
ran, and positive-only evidence (provenance markers) is absent when nothing was found.
``bank.*`` signals carry a distance (smaller is closer), so their score is 1.0 when the
file matched that bank at all. The composite ``risk`` is measured as a signal too.

A signal's *current threshold* is the value at which it alone moves the policy off
``allow`` (its contribution reaches the lowest action threshold); ``None`` when its
weight can never get there alone. Per policy action A, the prediction is "the decided
action is at least as severe as A" on the policy's ladder (``scoring.SEVERITY``).

>>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
0.75
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mediaguard.decisions.scoring import SEVERITY, Policy

NEGATIVE_LABELS = frozenset({"real", "benign"})
RISK = "risk"


# --- metric functions ---------------------------------------------------------------------


def _arrays(scores: Sequence[float], labels: Sequence[int | bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and labels must be two lists of the same length")
    return s, y


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span ([5, 7, 7] -> [1, 2.5, 2.5])."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), dtype=float)
    sorted_v = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def roc_auc(scores: Sequence[float], labels: Sequence[int | bool]) -> float | None:
    """Area under the ROC curve as the Mann-Whitney U statistic over P*N (average ranks, so a
    tie between a positive and a negative counts one half). ``None`` without both classes."""
    s, y = _arrays(scores, labels)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return None
    rank_sum = float(average_ranks(s)[y].sum())
    u = rank_sum - positives * (positives + 1) / 2
    return round(u / (positives * negatives), 6)


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def fpr(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    def to_dict(self) -> dict[str, Any]:
        return {"precision": _r(self.precision), "recall": _r(self.recall), "fpr": _r(self.fpr),
                "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}


def confusion(predicted: Sequence[int | bool], labels: Sequence[int | bool]) -> Confusion:
    p, y = _arrays(predicted, labels)
    p = p.astype(bool)
    return Confusion(tp=int((p & y).sum()), fp=int((p & ~y).sum()), tn=int((~p & ~y).sum()),
                     fn=int((~p & y).sum()))


def confusion_at(scores: Sequence[float], labels: Sequence[int | bool], threshold: float) -> Confusion:
    """The confusion when a score at or above ``threshold`` is predicted positive."""
    s, y = _arrays(scores, labels)
    return confusion(s >= threshold, y)


def roc_curve(scores: Sequence[float], labels: Sequence[int | bool]) -> list[tuple[float, float, float]]:
    """``(threshold, fpr, tpr)`` from flagging nothing (threshold +inf) down to flagging
    everything (the lowest score), one point per distinct score."""
    s, y = _arrays(scores, labels)
    positives, negatives = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    points = [(math.inf, 0.0, 0.0)]
    for t in sorted(set(s.tolist()), reverse=True):
        c = confusion(s >= t, y)
        points.append((t, c.fp / negatives, c.tp / positives))
    return points


def pr_curve(scores: Sequence[float], labels: Sequence[int | bool]) -> list[tuple[float, float, float]]:
    """``(threshold, recall, precision)`` per distinct score, highest threshold first."""
    s, y = _arrays(scores, labels)
    points = []
    for t in sorted(set(s.tolist()), reverse=True):
        c = confusion(s >= t, y)
        points.append((t, c.recall or 0.0, c.precision if c.precision is not None else 1.0))
    return points


@dataclass(frozen=True)
class Suggestion:
    """The lowest threshold whose false-positive rate on the negatives is <= the target
    (so the one with the most recall); ``threshold`` is ``None`` when even the highest
    score flags a negative: no threshold on this signal meets the target."""

    threshold: float | None
    recall: float
    fpr: float


def suggest_threshold(scores: Sequence[float], labels: Sequence[int | bool], target_fpr: float) -> Suggestion:
    s, y = _arrays(scores, labels)
    best = Suggestion(threshold=None, recall=0.0, fpr=0.0)
    # FPR only falls as the threshold rises: walk down the distinct scores while it holds.
    for t in sorted(set(s.tolist()), reverse=True):
        c = confusion(s >= t, y)
        if (c.fpr or 0.0) > target_fpr:
            break
        best = Suggestion(threshold=t, recall=c.recall or 0.0, fpr=c.fpr or 0.0)
    return best


# --- the policy's view ----------------------------------------------------------------------


def current_threshold(name: str, policy: Policy) -> float | None:
    """The value at which signal ``name`` alone reaches the lowest action threshold of
    ``policy`` (``risk``: that threshold itself); ``None`` when it cannot act alone."""
    lowest = min((t.min_risk for t in policy.thresholds), default=None)
    if lowest is None:
        return None
    if name == RISK:
        return lowest
    weight = policy.weights.get(name, 0.0)
    if weight <= 0:
        return None
    factor = lowest / weight
    if factor > 1.0:
        return None
    ramp = policy.ramps.get(name)
    return round(ramp.start + factor * (ramp.full - ramp.start) if ramp else factor, 6)


def signal_score(result: dict[str, Any], name: str) -> float:
    """One file's score on a signal: its value, 0.0 when absent; a bank match counts 1.0."""
    if name == RISK:
        return float(result.get("risk") or 0.0)
    for s in result.get("signals") or []:
        if s["name"] == name:
            return 1.0 if name.startswith("bank.") else float(s["value"])
    return 0.0


def at_least(action: str, floor: str) -> bool:
    return SEVERITY.index(action) >= SEVERITY.index(floor)  # type: ignore[arg-type]


def signal_names(results: Iterable[dict[str, Any]]) -> list[str]:
    return sorted({s["name"] for r in results for s in r.get("signals") or []})


def signal_metrics(name: str, scores: list[float], truth: list[bool], policy: Policy,
                   target_fpr: float) -> dict[str, Any]:
    threshold = current_threshold(name, policy)
    suggestion = suggest_threshold(scores, truth, target_fpr)
    return {
        "name": name,
        "auc": roc_auc(scores, truth),
        "positives": sum(truth),
        "negatives": len(truth) - sum(truth),
        "current_threshold": threshold,
        "at_threshold": confusion_at(scores, truth, threshold).to_dict() if threshold is not None else None,
        "suggested_threshold": suggestion.threshold,
        "suggested_recall": _r(suggestion.recall),
        "fpr_at_suggested": _r(suggestion.fpr),
    }


def action_metrics(results: list[dict[str, Any]], truth: list[bool]) -> list[dict[str, Any]]:
    rows = []
    for floor in SEVERITY[1:]:  # "at least allow" is every file
        c = confusion([at_least(r["action"], floor) for r in results], truth)
        rows.append({"action": floor, **c.to_dict()})
    return rows


def measure(results: list[dict[str, Any]], truth: list[bool], names: list[str], policy: Policy,
            target_fpr: float) -> dict[str, Any]:
    """Signals (every name, then ``risk``) and actions on one slice of the labelled results."""
    return {
        "positives": sum(truth),
        "negatives": len(truth) - sum(truth),
        "signals": [signal_metrics(n, [signal_score(r, n) for r in results], truth, policy, target_fpr)
                    for n in [*names, RISK]],
        "actions": action_metrics(results, truth),
    }


def is_positive(label: str) -> bool:
    return label not in NEGATIVE_LABELS


def evaluate(results: list[dict[str, Any]], policy: Policy, target_fpr: float = 0.01) -> dict[str, Any]:
    """The ``eval --json`` report for labelled scan results (each with ``label``, optional ``group``).

    Overall: every positive label against the negatives; ``per_label``: each positive label
    alone against the negatives; ``per_group``: the overall measure within each group.
    """
    names = signal_names(results)
    truth = [is_positive(r["label"]) for r in results]
    overall = measure(results, truth, names, policy, target_fpr)
    per_label = {}
    for label in sorted({r["label"] for r in results if is_positive(r["label"])}):
        subset = [r for r in results if r["label"] == label or not is_positive(r["label"])]
        per_label[label] = measure(subset, [is_positive(r["label"]) for r in subset], names, policy, target_fpr)
    per_group = {}
    for group in sorted({r["group"] for r in results if r.get("group")}):
        subset = [r for r in results if r.get("group") == group]
        per_group[group] = measure(subset, [is_positive(r["label"]) for r in subset], names, policy, target_fpr)
    models = {(m["id"], m.get("sha256")) for r in results for m in r.get("models") or []}
    return {
        "files": len(results),
        "labels": dict(sorted(Counter(r["label"] for r in results).items())),
        "status": dict(sorted(Counter(r.get("status", "done") for r in results).items())),
        "policy_version": policy.version,
        "models": [{"id": i, "sha256": s} for i, s in sorted(models, key=lambda m: (m[0], m[1] or ""))],
        "target_fpr": target_fpr,
        "positives": overall["positives"],
        "negatives": overall["negatives"],
        "signals": overall["signals"],
        "actions": overall["actions"],
        "per_label": per_label,
        "per_group": per_group,
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
