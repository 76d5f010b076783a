"""``mediaguard eval [--json] [--out DIR] [--target-fpr F] LABELS.csv``: detection measured on a labelled set.

``LABELS.csv`` has a header with the columns ``path,label`` and optionally ``group``
(no other column). Paths are relative to the CSV's folder (absolute paths are kept).
Labels are short lower-case words: ``real`` and ``benign`` are negatives, anything else
(``ai``, ``swap``, ``nsfw``, ...) is a positive. Every file runs through the local stack
exactly as ``mediaguard scan`` runs it (the real template, state machine and handlers),
and the metrics come from ``mediaguard.decisions.evaluation``.

With ``--json``, stdout carries one object::

    {files, labels: {label: count}, status: {done|rejected|failed: count}, policy_version,
     models: [{id, sha256}], target_fpr, positives, negatives,
     signals: [{name, auc, positives, negatives, current_threshold,
                at_threshold: {precision, recall, fpr, tp, fp, tn, fn} | null,
                suggested_threshold, suggested_recall, fpr_at_suggested}],
     actions: [{action, precision, recall, fpr, tp, fp, tn, fn}],
     per_label: {label: {positives, negatives, signals: [...], actions: [...]}},
     per_group: {group: {positives, negatives, signals: [...], actions: [...]}}}

``signals`` has one row per signal name seen in any result (a file without that signal
scores 0.0 on it; a ``bank.*`` signal scores 1.0 when the file matched) and a last row
``risk``, the composite. ``current_threshold`` is the value at which the signal alone
moves the policy off ``allow`` (null when its weight cannot); ``suggested_threshold`` is
the lowest one whose false-positive rate on the negatives is <= ``--target-fpr`` (null
when no threshold meets it). ``actions`` treats "decided at least as severe as A" as
the prediction for each A on the policy's ladder. A rejected upload counts as the
pipeline decided it (``remove``), a failed one as ``review``. Precision, recall, FPR and
AUC are ``null`` where their denominator is empty.

``--out DIR`` writes ``DIR/report.html`` (self-contained: inline SVG ROC and PR curves,
the data, policy version and model ids) and ``DIR/results.jsonl`` (one ``scan --json``
object per file plus ``label``, ``group`` and ``models``). Bad input (a missing file, an
unknown column, an empty CSV, a bad label) is reported before anything runs or is
written: exit 2. Otherwise exit 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediaguard.cli.scan import Out

EXIT_OK, EXIT_USAGE = 0, 2
COLUMNS = ("path", "label", "group")
LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class LabelsError(ValueError):
    """The labels CSV cannot be evaluated as given (exit 2, nothing run or written)."""


@dataclass(frozen=True)
class Labelled:
    path: Path
    label: str
    group: str | None


def add_eval_parser(sub: Any) -> None:
    """Register ``eval`` on the ``mediaguard`` subcommand parsers."""
    ev = sub.add_parser("eval", help="measure detection on a labelled set (per signal and action: "
                                     "precision, recall, ROC AUC, threshold suggestion)",
                        description="Run every file of LABELS.csv (path,label[,group]) through the local "
                                    "pipeline and measure each signal and policy action.")
    ev.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ev.add_argument("--out", type=Path, metavar="DIR", help="write report.html and results.jsonl here")
    ev.add_argument("--target-fpr", type=float, default=0.01,
                    help="false-positive rate the threshold suggestion must meet (default 0.01)")
    ev.add_argument("--verbose", action="store_true", help="handler logs (INFO) on stderr")
    ev.add_argument("labels", type=Path, metavar="LABELS.csv")


def read_labels(csv_path: Path) -> list[Labelled]:
    """The labelled files of ``csv_path``, every one checked to exist; ``LabelsError`` otherwise."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"cannot read {csv_path}: {getattr(exc, 'strerror', None) or exc}") from exc
    reader = csv.DictReader(text.splitlines())
    header = [c.strip() for c in reader.fieldnames or []]
    if not header:
        raise LabelsError(f"{csv_path} is empty: expected a header path,label[,group] and one row per file")
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in ("path", "label") if c not in header]
    if unknown or missing:
        raise LabelsError(f"{csv_path}: columns must be path,label[,group]"
                          + (f"; unknown {unknown}" if unknown else "") + (f"; missing {missing}" if missing else ""))
    base = csv_path.parent
    rows: list[Labelled] = []
    absent: list[str] = []
    for line_no, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        if None in raw:
            raise LabelsError(f"{csv_path}:{line_no}: more values than columns")
        label, path = row.get("label", ""), row.get("path", "")
        if not path:
            raise LabelsError(f"{csv_path}:{line_no}: empty path")
        if not LABEL.match(label):
            raise LabelsError(f"{csv_path}:{line_no}: label {label!r} is not a short lower-case word (e.g. real, ai)")
        file = Path(path) if Path(path).is_absolute() else base / path
        if not file.is_file():
            absent.append(path)
        rows.append(Labelled(file, label, row.get("group") or None))
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise LabelsError(f"{csv_path}: {len(absent)} file(s) not found: {shown}")
    if not rows:
        raise LabelsError(f"{csv_path} has a header but no rows")
    return rows


def run_eval(args: argparse.Namespace, out: Out) -> int:
    """Check the input, scan every file on one local stack, print and write the report."""
    from mediaguard.decisions.evaluation import evaluate

    if not 0.0 <= args.target_fpr <= 1.0:
        raise LabelsError("--target-fpr must be between 0 and 1")
    rows = read_labels(args.labels)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise LabelsError(f"--out {args.out} exists and is not a folder")
    results = scan_labelled(rows, out, "INFO" if args.verbose else "WARNING")
    report = evaluate(results, _policy_of(results), target_fpr=args.target_fpr)
    if args.out is not None:
        write_outputs(args.out, report, results)
    if args.json:
        out.line(json.dumps(report))
    else:
        out.line(render_text(report))
    return EXIT_OK


def scan_labelled(rows: list[Labelled], out: Out, log_level: str) -> list[dict[str, Any]]:
    """Each file through the local stack with ``scan``'s own code, its label attached."""
    from mediaguard.cli.scan import progress, scan_file
    from mediaguard.local.runtime import LocalCloud

    results = []
    with out.quiet_stdout(), LocalCloud(parameters={"LogLevel": log_level}) as cloud:
        for i, row in enumerate(rows, start=1):
            progress(i - 1, len(rows), row.path.name)
            result, item = scan_file(cloud, row.path)
            results.append({**result, "label": row.label, "group": row.group, "models": item.get("models") or []})
            progress(i, len(rows), row.path.name)
    return results


def _policy_of(results: list[dict[str, Any]]) -> Any:
    """The policy that decided (the version most results carry), else the configured one."""
    from collections import Counter

    from mediaguard.decisions.scoring import load_policy, select_policies
    from mediaguard.settings import get_settings

    versions = Counter(r["policy_version"] for r in results if r.get("policy_version"))
    if versions:
        return load_policy(versions.most_common(1)[0][0])
    return select_policies(get_settings().policy)[0]


def write_outputs(folder: Path, report: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """report.html and results.jsonl, each written whole to a temporary file then renamed."""
    from mediaguard.cli.eval_report import render_html

    folder.mkdir(parents=True, exist_ok=True)
    files = {"results.jsonl": "".join(json.dumps(r) + "\n" for r in results),
             "report.html": render_html(report, results)}
    for name, text in files.items():
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        with open(tmp, "x", encoding="utf-8") as fh:  # the umask's permissions, unlike mkstemp's 0600
            fh.write(text)
        os.replace(tmp, folder / name)


def render_text(report: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    labels = ", ".join(f"{k}={v}" for k, v in report["labels"].items())
    lines = [f"{report['files']} files ({labels}); policy {report['policy_version']}; "
             f"target FPR {report['target_fpr']}", "",
             f"{'signal':<34} {'AUC':>6} {'thr':>6} {'prec':>6} {'recall':>6} {'fpr':>6}  "
             f"{'suggest':>8} {'recall':>6}"]
    for s in report["signals"]:
        at = s["at_threshold"] or {}
        lines.append(f"{s['name']:<34} {f(s['auc']):>6} {f(s['current_threshold']):>6} {f(at.get('precision')):>6} "
                     f"{f(at.get('recall')):>6} {f(at.get('fpr')):>6}  {f(s['suggested_threshold']):>8} "
                     f"{f(s['suggested_recall']):>6}")
    lines += ["", f"{'action >=':<10} {'prec':>6} {'recall':>6} {'fpr':>6} {'tp':>4} {'fp':>4} {'tn':>4} {'fn':>4}"]
    for a in report["actions"]:
        lines.append(f"{a['action']:<10} {f(a['precision']):>6} {f(a['recall']):>6} {f(a['fpr']):>6} "
                     f"{a['tp']:>4} {a['fp']:>4} {a['tn']:>4} {a['fn']:>4}")
    return "\n".join(lines)
