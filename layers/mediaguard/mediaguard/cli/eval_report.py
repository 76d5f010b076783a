"""``eval --out``'s HTML report: one self-contained file (inline SVG, inline CSS, no script),
so it can be attached to a ticket or a policy change and opened offline years later."""

from __future__ import annotations

from html import escape
from typing import Any

from mediaguard.decisions.evaluation import RISK, is_positive, pr_curve, roc_curve, signal_score

# Colour-blind-safe (Okabe-Ito); the composite risk is always pale black, drawn wide.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
SIZE, PAD = 360, 44


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _xy(x: float, y: float) -> tuple[float, float]:
    inner = SIZE - 2 * PAD
    return PAD + x * inner, SIZE - PAD - y * inner


def _axes(title: str, xlabel: str, ylabel: str) -> list[str]:
    parts = [f'<rect x="{PAD}" y="{PAD}" width="{SIZE - 2 * PAD}" height="{SIZE - 2 * PAD}" fill="#fff" '
             'stroke="#444"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y0 = _xy(tick, 0)
        x0, y = _xy(0, tick)
        parts.append(f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{SIZE - PAD}" stroke="#eee"/>')
        parts.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{SIZE - PAD}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{y0 + 14:.1f}" font-size="10" text-anchor="middle">{tick:g}</text>')
        parts.append(f'<text x="{x0 - 4:.1f}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{tick:g}</text>')
    parts.append(f'<text x="{SIZE / 2}" y="{PAD - 14}" font-size="13" text-anchor="middle" '
                 f'font-weight="bold">{escape(title)}</text>')
    parts.append(f'<text x="{SIZE / 2}" y="{SIZE - 8}" font-size="11" text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(f'<text x="12" y="{SIZE / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {SIZE / 2})">{escape(ylabel)}</text>')
    return parts


def _colour(names: list[str], name: str) -> str:
    return "#00000055" if name == RISK else PALETTE[names.index(name) % len(PALETTE)]


def _polyline(points: list[tuple[float, float]], colour: str, dashed: bool = False, width: int = 2) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (_xy(px, py) for px, py in points))
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="{width}"{dash}/>'


def _svg(kind: str, parts: list[str]) -> str:
    return (f'<svg class="{kind}" xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" '
            f'viewBox="0 0 {SIZE} {SIZE}" role="img">' + "".join(parts) + "</svg>")


def curves_svg(results: list[dict[str, Any]], names: list[str],
               report_actions: list[dict[str, Any]]) -> tuple[str, str]:
    """(ROC svg, PR svg) of every signal on ``results``; the policy's actions are dots on the ROC."""
    truth = [is_positive(r["label"]) for r in results]
    roc = _axes("ROC", "false-positive rate", "true-positive rate (recall)")
    roc.append(_polyline([(0, 0), (1, 1)], "#bbb", dashed=True))
    pr = _axes("Precision-recall", "recall", "precision")
    base = sum(truth) / len(truth) if truth else 0.0
    pr.append(_polyline([(0, base), (1, base)], "#bbb", dashed=True))  # a random ranking's precision
    # The composite first, wide and pale: a signal it equals (one weighted signal) stays visible on top.
    for name in sorted(names, key=lambda n: n != RISK):
        colour = _colour(names, name)
        width = 5 if name == RISK else 2
        scores = [signal_score(r, name) for r in results]
        roc.append(_polyline([(fpr, tpr) for _, fpr, tpr in roc_curve(scores, truth)], colour, width=width))
        pr_points = [(recall, precision) for _, recall, precision in pr_curve(scores, truth)]
        pr.append(_polyline([(0.0, pr_points[0][1]), *pr_points] if pr_points else [], colour, width=width))
    # Actions at the same operating point share one dot and one caption.
    points: dict[tuple[float, float], list[str]] = {}
    for a in report_actions:
        if a["fpr"] is not None and a["recall"] is not None:
            points.setdefault((a["fpr"], a["recall"]), []).append(a["action"])
    for (fpr, recall), actions in points.items():
        x, y = _xy(fpr, recall)
        caption = escape(", ".join(actions))
        roc.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#D55E00"><title>{caption}</title></circle>'
                   f'<text x="{x + 6:.1f}" y="{y - 5:.1f}" font-size="9">{caption}</text>')
    return _svg("roc", roc), _svg("pr", pr)


def _legend(names: list[str]) -> str:
    items = []
    for name in names:
        items.append(f'<span><i style="background:{_colour(names, name)}"></i>{escape(name)}</span>')
    return '<p class="legend">' + " ".join(items) + "</p>"


def _signals_table(rows: list[dict[str, Any]]) -> str:
    head = ("<tr><th>signal</th><th>AUC</th><th>pos</th><th>neg</th><th>current threshold</th><th>precision</th>"
            "<th>recall</th><th>FPR</th><th>tp/fp/tn/fn</th><th>suggested threshold</th><th>recall there</th>"
            "<th>FPR there</th></tr>")
    body = []
    for s in rows:
        at = s["at_threshold"] or {}
        counts = f"{at['tp']}/{at['fp']}/{at['tn']}/{at['fn']}" if at else "–"
        body.append(f"<tr><td>{escape(s['name'])}</td><td>{_fmt(s['auc'])}</td><td>{s['positives']}</td>"
                    f"<td>{s['negatives']}</td><td>{_fmt(s['current_threshold'])}</td>"
                    f"<td>{_fmt(at.get('precision'))}</td><td>{_fmt(at.get('recall'))}</td>"
                    f"<td>{_fmt(at.get('fpr'))}</td><td>{counts}</td><td>{_fmt(s['suggested_threshold'], 4)}</td>"
                    f"<td>{_fmt(s['suggested_recall'])}</td><td>{_fmt(s['fpr_at_suggested'])}</td></tr>")
    return "<table>" + head + "".join(body) + "</table>"


def _actions_table(rows: list[dict[str, Any]]) -> str:
    head = ("<tr><th>action at least</th><th>precision</th><th>recall</th><th>FPR</th><th>tp</th><th>fp</th>"
            "<th>tn</th><th>fn</th></tr>")
    body = [f"<tr><td>{escape(a['action'])}</td><td>{_fmt(a['precision'])}</td><td>{_fmt(a['recall'])}</td>"
            f"<td>{_fmt(a['fpr'])}</td><td>{a['tp']}</td><td>{a['fp']}</td><td>{a['tn']}</td><td>{a['fn']}</td></tr>"
            for a in rows]
    return "<table>" + head + "".join(body) + "</table>"


def _section(title: str, results: list[dict[str, Any]], measured: dict[str, Any]) -> str:
    names = [s["name"] for s in measured["signals"]]
    roc, pr = curves_svg(results, names, measured["actions"])
    return (f"<section><h2>{escape(title)}</h2><p>{measured['positives']} positive, "
            f"{measured['negatives']} negative files.</p>"
            f'<div class="plots">{roc}{pr}</div>{_legend(names)}'
            f"<h3>Signals</h3>{_signals_table(measured['signals'])}"
            f"<h3>Policy actions</h3>{_actions_table(measured['actions'])}</section>")


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}.plots{display:flex;gap:1em;flex-wrap:wrap}
.legend span{margin-right:1em;white-space:nowrap}.legend i{display:inline-block;width:14px;height:3px;
margin-right:4px;vertical-align:middle}code{background:#f3f3f3;padding:0 3px}"""


def render_html(report: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The whole report: data, policy, models, then overall / per label / per group curves and tables."""
    labels = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in report["labels"].items())
    status = ", ".join(f"{escape(k)}: {v}" for k, v in report["status"].items())
    models = "".join(f"<li><code>{escape(m['id'])}</code> sha256 <code>{escape(str(m['sha256']))}</code></li>"
                     for m in report["models"]) or "<li>none recorded</li>"
    sections = [_section("harmful (every positive label) vs real/benign", results, report)]
    for label, measured in report["per_label"].items():
        subset = [r for r in results if r["label"] == label or not is_positive(r["label"])]
        sections.append(_section(f"{label} vs real/benign", subset, measured))
    for group, measured in report["per_group"].items():
        subset = [r for r in results if r.get("group") == group]
        sections.append(_section(f"group {group}", subset, measured))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mediaguard eval</title>'
        f"<style>{CSS}</style></head><body><h1>mediaguard eval</h1>"
        f"<p>{report['files']} files; status {status}; policy <code>{escape(report['policy_version'])}</code>; "
        f"threshold suggestions for a false-positive rate &le; {report['target_fpr']}.</p>"
        f"<h2>Data</h2><table><tr><th>label</th><th>files</th></tr>{labels}</table>"
        f"<h2>Models</h2><ul>{models}</ul>"
        "<p>A file without a signal scores 0 on it; a bank signal scores 1 when the file matched. "
        "The current threshold is the value at which the signal alone moves the policy off <code>allow</code>; "
        "dots on the ROC are the policy's actions (decided at least that severe).</p>"
        + "".join(sections) + "</body></html>\n"
    )
