"""The transparency report: how well detection works, how fast people act, how often we are wrong.

Computed from what the stack stores (items, review tasks, appeals, the audit trail, legal
orders and geofence rules) through :class:`ReportSource`, and from the quality-assurance
lane through :class:`QaOutcomes`. Pure: the DynamoDB reader is ``mediaguard.adapters.report``.

Metric names are a contract (issue 13): ``precision_by_audit``, ``recall_by_audit``,
``mean_time_to_triage_s`` (with ``p90_time_to_triage_s`` and ``time_to_triage_s_by_lane``),
``false_positive_appeal_rate``, ``provenance_adoption_rate``, ``escalations_legal``. A metric
with nothing to compute it from is ``None`` (JSON null), never 0 and never a guess.

Precision and recall by sample audit. The QA lane shows a sample of automated decisions
(allows included) to a reviewer who does not see the automated action. "Positive" means
any action other than ``allow`` (a reviewer's ``approve`` is ``allow``):

* ``precision_by_audit = agreed / sampled_positive``: of the sampled items the automation
  acted on, the share the reviewer also acted on (any non-allow action; the exact-action
  agreement is reported beside it as ``qa.exact_agreement``).
* ``recall_by_audit = TP / (TP + FN)`` with ``TP = precision_by_audit * N_positive`` and
  ``FN = miss_rate * N_allow``, where ``miss_rate`` is the share of sampled allows the
  reviewer overturned to an action and ``N_positive``/``N_allow`` are the period's volumes of
  automated non-allow and allow decisions. Sampling each group at its own rate is why the
  volumes are needed: the sample alone over-represents whichever group was sampled more.
  None unless both groups were sampled and the period has automated decisions.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

# Review actions as enforcement names them (decisions.review.reasons.ENFORCED_ACTION).
_AS_ENFORCED = {"approve": "allow"}
# Audit events that send an item to legal or law enforcement.
LEGAL_REASONS = frozenset({"legal_request", "minor_safety"})
EVIDENCE_EXPORTED = "evidence_exported"
VALID_C2PA = frozenset({"valid", "trusted"})
QA_LANE = "qa"
QA_SAMPLE_REASON = "qa:sample"  # decisions.review.models.QA_REASON (this module reads stored rows)


class QaOutcomes(Protocol):
    """The QA lane's decided samples in a period: (automated action, reviewer action) pairs."""

    def qa_outcomes(self, start: datetime, end: datetime) -> list[tuple[str, str]]: ...


class ReportSource(Protocol):
    """What the report reads; each method returns plain dicts with ``datetime`` values."""

    def items(self) -> Iterable[dict[str, Any]]:
        """Media items: ``media_id``, ``received_at``, ``status``, ``media_type``, ``proposed_action``,
        ``action``, ``error_reason``, ``provenance``."""

    def tasks(self) -> Iterable[dict[str, Any]]:
        """Review tasks: ``media_id``, ``lane``, ``state``, ``enqueued_at``, ``decided_at``, ``decision_action``."""

    def appeals(self) -> Iterable[dict[str, Any]]:
        """Appeals: ``appeal_id``, ``created_at``, ``state``, ``outcome``, ``handled_at``."""

    def audit_events(self, events: frozenset[str]) -> Iterable[dict[str, Any]]:
        """Audit records whose event is one of ``events``: ``chain``, ``at`` (ISO), ``event``, ``detail``."""

    def legal_orders(self) -> Iterable[dict[str, Any]]:
        """Legal orders as ``decisions.legal.LegalOrder.model_dump()``."""

    def geofence_rules(self) -> Iterable[dict[str, Any]]:
        """Geofence rules as ``GeoRule.view(now)``."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def holds(self, when: datetime | str | None) -> bool:
        when = _when(when)
        return when is not None and self.start <= when < self.end


def _when(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every value reported is one that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _enforced(action: str | None) -> str | None:
    return _AS_ENFORCED.get(action or "", action)


def qa_metrics(outcomes: list[tuple[str, str]], n_positive: int, n_allow: int) -> dict[str, Any]:
    """Precision and the recall estimate from QA samples (see the module docstring for the formula)."""
    pairs = [(_enforced(a), _enforced(r)) for a, r in outcomes]
    positives = [(a, r) for a, r in pairs if a != "allow"]
    allows = [(a, r) for a, r in pairs if a == "allow"]
    agreed = sum(1 for _, r in positives if r != "allow")
    missed = sum(1 for _, r in allows if r != "allow")
    precision = _rate(agreed, len(positives))
    miss_rate = _rate(missed, len(allows))
    recall = None
    if positives and allows and (n_positive or n_allow):
        # Unrounded shares: only the reported figures are rounded.
        tp, fn = agreed / len(positives) * n_positive, missed / len(allows) * n_allow
        recall = _rate(tp, tp + fn) if tp + fn else None
    return {
        "precision_by_audit": precision,
        "recall_by_audit": recall,
        "qa": {"samples": len(pairs), "sampled_positive": len(positives), "agreed_positive": agreed,
               "sampled_allow": len(allows), "allows_overturned": missed, "miss_rate": miss_rate,
               "exact_agreement": _rate(sum(1 for a, r in pairs if a == r), len(pairs)),
               "volume_positive": n_positive, "volume_allow": n_allow,
               "formula": "precision = agreed_positive / sampled_positive; recall = TP / (TP + FN), "
                          "TP = precision * volume_positive, FN = miss_rate * volume_allow"},
    }


def compliance(order: dict[str, Any], now: datetime) -> str:
    """``on_time`` | ``late`` (enforced after the deadline) | ``overdue`` (not enforced, deadline
    passed) | ``pending`` (not enforced, deadline ahead) | ``withdrawn``."""
    if order.get("status") == "withdrawn":
        return "withdrawn"
    deadline, enforced = _when(order.get("deadline")), _when(order.get("enforced_at"))
    if enforced is not None:
        return "on_time" if deadline is None or enforced <= deadline else "late"
    return "overdue" if deadline is not None and deadline < now else "pending"


def build_report(source: ReportSource, qa: QaOutcomes | None, period: Period, now: datetime) -> dict[str, Any]:
    """Every metric and table of the transparency report for ``period`` (``now``: what is "in force")."""
    # Live-stream segments are items too (one per 2 s segment): they are not uploads.
    items = [i for i in source.items() if period.holds(i.get("received_at")) and not i.get("stream_id")]
    by_action = Counter(i.get("action") or (i["status"] if i.get("status") in ("rejected", "failed") else "pending")
                        for i in items)
    by_media_type = Counter(i.get("media_type") or "unknown" for i in items)
    rejections = Counter(i.get("error_reason") or "unknown" for i in items if i.get("status") in ("rejected", "failed"))
    proposed = Counter(i.get("proposed_action") for i in items if i.get("proposed_action"))
    n_allow = proposed.get("allow", 0)
    n_positive = sum(proposed.values()) - n_allow
    c2pa_valid = sum(1 for i in items if ((i.get("provenance") or {}).get("c2pa") or {}).get("state") in VALID_C2PA)

    waits: dict[str, list[float]] = defaultdict(list)
    review_actions: Counter[str] = Counter()
    for task in source.tasks():
        if task.get("state") != "decided" or not period.holds(task.get("decided_at")):
            continue
        if task.get("decision_action") == "withdrawn":  # closed by a re-drive, not triaged by anyone
            continue
        wait = (_when(task["decided_at"]) - _when(task["enqueued_at"])).total_seconds()
        # A sample a reviewer escalated sits in the escalated lane but is still a re-check,
        # not triage: known by its reason wherever it is.
        lane = QA_LANE if task.get("reason") == QA_SAMPLE_REASON else task.get("lane") or "unknown"
        waits[lane].append(wait)
        if lane != QA_LANE:
            review_actions[task.get("decision_action") or "unknown"] += 1
    # Triage is people acting on what the system sent them; the QA lane (a blind re-check of
    # decisions already in force) is shown by lane but kept out of the overall figures.
    all_waits = [w for lane, values in waits.items() if lane != QA_LANE for w in values]

    appeals = list(source.appeals())
    opened = sum(1 for a in appeals if period.holds(a.get("created_at")))
    decided = [a for a in appeals if a.get("state") == "decided" and period.holds(a.get("handled_at"))]
    overturned = sum(1 for a in decided if a.get("outcome") == "overturn")

    legal_chains: set[str] = set()
    for record in source.audit_events(frozenset({"review_escalated", EVIDENCE_EXPORTED})):
        if not period.holds(record.get("at")):
            continue
        detail = record.get("detail") or {}
        if record["event"] == EVIDENCE_EXPORTED or detail.get("reason_code") in LEGAL_REASONS:
            legal_chains.add(record["chain"])

    rules = list(source.geofence_rules())
    in_force_rules = [r for r in rules if not r.get("expired")]
    orders = list(source.legal_orders())
    order_rows = []
    states: Counter[str] = Counter()
    for order in orders:
        state = compliance(order, now)
        received = period.holds(order.get("received_at"))
        due = period.holds(order.get("deadline")) or period.holds(order.get("enforced_at"))
        if received or due:
            states[state] += 1
        order_rows.append({"order_id": order["order_id"], "issuer": order.get("issuer"),
                           "jurisdiction": order.get("jurisdiction"), "scope": order.get("scope_kind"),
                           "targets": len(order.get("targets") or []), "countries": ",".join(order.get("countries") or []),
                           "deadline": order.get("deadline"), "enforced_at": order.get("enforced_at"),
                           "compliance": state})
    judged = states["on_time"] + states["late"] + states["overdue"]

    metrics = qa_metrics(qa.qa_outcomes(period.start, period.end) if qa is not None else [], n_positive, n_allow)
    lanes = {lane: {"count": len(values), "mean_s": round(sum(values) / len(values), 1),
                    "p90_s": percentile(values, 0.9)} for lane, values in sorted(waits.items())}
    return {
        "format": "mediaguard.report/1",
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "generated_at": now.isoformat(),
        "metrics": {
            "precision_by_audit": metrics["precision_by_audit"],
            "recall_by_audit": metrics["recall_by_audit"],
            "mean_time_to_triage_s": round(sum(all_waits) / len(all_waits), 1) if all_waits else None,
            "p90_time_to_triage_s": percentile(all_waits, 0.9),
            "time_to_triage_s_by_lane": lanes,  # the qa lane included
            "false_positive_appeal_rate": _rate(overturned, len(decided)),
            "provenance_adoption_rate": _rate(c2pa_valid, len(items)),
            "escalations_legal": len(legal_chains),
        },
        "qa": metrics["qa"],
        "volumes": {"uploads": len(items), "by_action": dict(sorted(by_action.items())),
                    "by_media_type": dict(sorted(by_media_type.items())),
                    "automated_by_action": dict(sorted(proposed.items()))},
        "rejections_by_reason": dict(sorted(rejections.items())),
        "reviews": {"decided": len(all_waits), "by_action": dict(sorted(review_actions.items()))},
        "appeals": {"opened": opened, "decided": len(decided), "overturned": overturned},
        "geofence": {"rules_in_force": len(in_force_rules),
                     "by_country": dict(sorted(Counter(r["country"] for r in in_force_rules).items()))},
        "legal_orders": {
            "in_force": sum(1 for o in orders if o.get("status") != "withdrawn"
                            and (_when(o.get("expires_at")) is None or _when(o.get("expires_at")) > now)),
            "in_period": sum(states.values()),
            **{k: states[k] for k in ("on_time", "late", "overdue", "pending")},
            "deadline_compliance_rate": _rate(states["on_time"], judged),
            "orders": order_rows,
        },
    }


# --- tables and the HTML page ------------------------------------------------------------------


def tables(report: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """Every table of the report as rows (header first): one CSV each under ``--out``."""
    m = report["metrics"]
    out: dict[str, list[list[Any]]] = {
        "metrics": [["metric", "value"]] + [[k, v] for k, v in m.items() if not isinstance(v, dict)],
        "triage_by_lane": [["lane", "count", "mean_s", "p90_s"]]
        + [[lane, v["count"], v["mean_s"], v["p90_s"]] for lane, v in m["time_to_triage_s_by_lane"].items()],
        "volumes_by_action": [["action", "items"]] + [[k, v] for k, v in report["volumes"]["by_action"].items()],
        "volumes_by_media_type": [["media_type", "items"]]
        + [[k, v] for k, v in report["volumes"]["by_media_type"].items()],
        "rejections_by_reason": [["reason", "items"]] + [[k, v] for k, v in report["rejections_by_reason"].items()],
        "appeals": [["measure", "value"]] + [[k, v] for k, v in report["appeals"].items()],
        "qa": [["measure", "value"]] + [[k, v] for k, v in report["qa"].items()],
        "geofence_by_country": [["country", "rules_in_force"]]
        + [[k, v] for k, v in report["geofence"]["by_country"].items()],
    }
    orders = report["legal_orders"]["orders"]
    header = ["order_id", "issuer", "jurisdiction", "scope", "targets", "countries", "deadline", "enforced_at",
              "compliance"]
    out["legal_orders"] = [header] + [[o[k] for k in header] for o in orders]
    return out


def _esc(value: Any) -> str:
    text = "—" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def bar_chart(title: str, counts: dict[str, int | float]) -> str:
    """A horizontal bar chart as inline SVG: no script, no external file, no inline style
    attribute (presentation attributes only), so it renders under ``default-src 'none'``."""
    rows = list(counts.items())
    width, bar_h, label_w = 480, 18, 150
    height = 24 + bar_h * max(1, len(rows)) + 6 * len(rows)
    top = max([float(v) for _, v in rows] or [0]) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_esc(title)}</title>',
             f'<text x="0" y="14" font-size="13" font-weight="bold">{_esc(title)}</text>']
    if not rows:
        parts.append('<text x="0" y="36" font-size="12">no data in this period</text>')
    for n, (label, value) in enumerate(rows):
        y = 24 + n * (bar_h + 6)
        w = int((width - label_w - 60) * float(value) / top)
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{_esc(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#3b6ea5"/>'
                     f'<text x="{label_w + w + 4}" y="{y + 13}" font-size="12">{_esc(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# The page's whole policy: nothing loads or runs, not even an inline style.
HTML_CSP = "default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'"


def html(report: dict[str, Any]) -> str:
    """The transparency report as one self-contained HTML page (inline SVG charts, no JS, no CSS)."""
    period = report["period"]
    sections = [f"<h1>Transparency report</h1><p>{_esc(period['from'])} to {_esc(period['to'])} "
                f"(generated {_esc(report['generated_at'])})</p>"]
    charts = [("Uploads by action", report["volumes"]["by_action"]),
              ("Uploads by media type", report["volumes"]["by_media_type"]),
              ("Rejections by reason", report["rejections_by_reason"]),
              ("Reviews by action", report["reviews"]["by_action"]),
              ("Mean time to triage by lane (s)",
               {k: v["mean_s"] for k, v in report["metrics"]["time_to_triage_s_by_lane"].items()}),
              ("Geofence rules in force by country", report["geofence"]["by_country"])]
    sections += [f"<figure>{bar_chart(title, counts)}</figure>" for title, counts in charts]
    for name, rows in tables(report).items():
        head, *body = rows
        sections.append(f"<h2>{_esc(name.replace('_', ' '))}</h2><table border=\"1\" cellpadding=\"4\"><tr>"
                        + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in body)
                        + "</table>")
    sections.append(f"<h2>How precision and recall are estimated</h2><p>{_esc(report['qa']['formula'])}. "
                    "A value shown as — had nothing to be computed from in this period.</p>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{HTML_CSP}\">"
            "<title>mediaguard transparency report</title></head><body>" + "".join(sections) + "</body></html>")
