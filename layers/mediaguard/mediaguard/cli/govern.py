"""Governance commands: ``report``, ``legal``, ``evidence``, ``governance``, ``erase``.

Each targets the local stack (the environment's, or a running ``mediaguard serve``) or, with
``--stack NAME [--region R]``, a deployed one (names from CloudFormation).

* ``mediaguard report [--json] [--from DATE] [--to DATE] [--out DIR]``: the transparency
  report (default: the last 30 days); ``--out`` writes ``report.html``, ``report.json`` and
  one CSV per table.
* ``mediaguard legal add --issuer I --basis B --jurisdiction J --scope items|hashes|uploader
  --target T [--target T ...] --country CC [--country CC ...] --deadline DATE [--reference R]
  [--expires DATE] [--no-enforce]``: record an order and (unless ``--no-enforce``) enforce
  it at once; ``--country '*'`` is worldwide (removal). ``legal list``, ``legal show ID``,
  ``legal enforce ID`` (again: e.g. a hash order after new uploads).
* ``mediaguard evidence export MEDIA_ID OUT.zip`` / ``evidence verify OUT.zip``.
* ``mediaguard governance [--json] [--out FILE.md]``: the NIST AI RMF map.
* ``mediaguard erase --uploader ID [--json]``: an uploader's erasure request.

Exit codes: 0 done (``evidence verify``: verified), 1 failed (``evidence verify``: problems
found; no such order or item), 2 bad arguments or no stack.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
COMMANDS = ("report", "legal", "evidence", "governance", "erase")
CLI_ACTOR = "admin:cli"


class Out(Protocol):
    def line(self, text: str) -> None: ...


def _target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", help="a deployed stack (default: the local stack)")
    parser.add_argument("--region", help="region of --stack")


def add_govern_parsers(sub: Any) -> None:
    """Register the five governance commands on the ``mediaguard`` subcommand parsers."""
    report = sub.add_parser("report", help="transparency report from stored decisions, reviews, appeals, audit")
    report.add_argument("--json", action="store_true")
    report.add_argument("--from", dest="start", help="ISO date or date-time (default: 30 days before --to)")
    report.add_argument("--to", dest="end", help="ISO date or date-time, exclusive (default: now)")
    report.add_argument("--out", type=Path, help="folder for report.html, report.json and one CSV per table")
    _target_args(report)

    legal = sub.add_parser("legal", help="legal and government orders: record, enforce, track compliance")
    verbs = legal.add_subparsers(dest="legal_command", required=True)
    add = verbs.add_parser("add", help="record an order and enforce it")
    add.add_argument("--issuer", required=True, help="court, agency or authority that issued it")
    add.add_argument("--basis", required=True, help="legal basis: statute, order or notice number")
    add.add_argument("--jurisdiction", required=True, help="e.g. DE, EU, US-CA")
    add.add_argument("--scope", required=True, choices=("items", "hashes", "uploader"))
    add.add_argument("--target", action="append", required=True,
                     help="media id, sha256 of the original, or the uploader's platform id; repeatable")
    add.add_argument("--country", action="append", required=True,
                     help="ISO 3166-1 alpha-2 where it applies, or * for worldwide (removal); repeatable")
    add.add_argument("--deadline", required=True, help="ISO date or date-time the order must be enforced by")
    add.add_argument("--reference", help="text the 451 response cites (default: issuer and basis)")
    add.add_argument("--expires", help="when the restriction lapses (default: never)")
    add.add_argument("--no-enforce", action="store_true", help="record only")
    for name in ("list", "show", "enforce"):
        verb = verbs.add_parser(name, help={"list": "every order with its compliance", "show": "one order",
                                            "enforce": "enforce an order (again)"}[name])
        if name != "list":
            verb.add_argument("order_id")
    for verb in verbs.choices.values():
        verb.add_argument("--json", action="store_true")
        _target_args(verb)

    evidence = sub.add_parser("evidence", help="evidence packages for legal or law enforcement")
    ev = evidence.add_subparsers(dest="evidence_command", required=True)
    export = ev.add_parser("export", help="write an item's evidence package (zip)")
    export.add_argument("media_id")
    export.add_argument("out", type=Path)
    _target_args(export)
    verify = ev.add_parser("verify", help="verify a package offline (sums, audit chain, anchor)")
    verify.add_argument("package", type=Path)
    verify.add_argument("--json", action="store_true")

    governance = sub.add_parser("governance", help="NIST AI RMF map generated from the deployed configuration")
    governance.add_argument("--json", action="store_true")
    governance.add_argument("--out", type=Path, help="write the map as Markdown")
    _target_args(governance)

    erase = sub.add_parser("erase", help="an uploader's erasure request (keeps what a legal hold requires)")
    erase.add_argument("--uploader", required=True, help="the uploader's platform id")
    erase.add_argument("--json", action="store_true")
    _target_args(erase)


def run_govern(args: argparse.Namespace, out: Out) -> int:
    """Run one governance command; returns the exit code."""
    from mediaguard.adapters.governance import TargetError
    from mediaguard.decisions.legal import LegalOrderError

    try:
        if args.command == "evidence" and args.evidence_command == "verify":
            return _verify(args, out)
        gov = _governance(args)
        if args.command == "report":
            return _report(args, gov, out)
        if args.command == "legal":
            return _legal(args, gov, out)
        if args.command == "evidence":
            args.out.write_bytes(gov.export_evidence(args.media_id, CLI_ACTOR))
            out.line(json.dumps({"media_id": args.media_id, "package": str(args.out)}))
            return EXIT_OK
        if args.command == "governance":
            return _governance_map(args, gov, out)
        result = _erase(args, gov)
        out.line(json.dumps(result) if args.json else
                 f"deleted {len(result['deleted'])} items, kept {len(result['kept'])} "
                 f"({', '.join(sorted({k['reason'] for k in result['kept']})) or 'none held'}), "
                 f"{result['history_rows_deleted']} history rows")
        return EXIT_OK
    except (TargetError, LegalOrderError, ValueError) as exc:
        sys.stderr.write(f"mediaguard {args.command}: {exc}\n")
        return EXIT_USAGE
    except LookupError as exc:
        sys.stderr.write(f"mediaguard {args.command}: {exc}\n")
        return EXIT_FAILED


def _governance(args: argparse.Namespace) -> Any:
    from mediaguard.adapters.governance import Governance, local_target, stack_target

    return Governance(stack_target(args.stack, args.region) if args.stack else local_target())


def parse_when(text: str | None, default: Any) -> Any:
    """An ISO date (midnight UTC) or date-time (UTC unless it names an offset)."""
    if not text:
        return default
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _report(args: argparse.Namespace, gov: Any, out: Out) -> int:

    end = parse_when(args.end, datetime.now(UTC))
    start = parse_when(args.start, end - timedelta(days=30))
    if start >= end:
        raise ValueError("--from must be before --to")
    result = gov.report(start, end)
    if args.out:
        write_report(result, args.out)
    if args.json:
        out.line(json.dumps(result, default=str))
    else:
        for name, value in result["metrics"].items():
            if not isinstance(value, dict):
                out.line(f"{name}: {'null' if value is None else value}")
        out.line(f"uploads: {result['volumes']['uploads']}  by action: {result['volumes']['by_action']}")
        out.line(f"legal orders in force: {result['legal_orders']['in_force']}  "
                 f"geofence rules in force: {result['geofence']['rules_in_force']}")
    return EXIT_OK


def write_report(result: dict[str, Any], folder: Path) -> list[Path]:
    """report.html, report.json and one CSV per table; returns the files written."""
    from mediaguard.decisions import report as reports

    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.html", folder / "report.json"]
    written[0].write_text(reports.html(result), encoding="utf-8")
    written[1].write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    for name, rows in reports.tables(result).items():
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([["" if c is None else c for c in row] for row in rows])
        written.append(path)
    return written


def _legal(args: argparse.Namespace, gov: Any, out: Out) -> int:
    from mediaguard.decisions import legal

    ports = gov.legal_ports()
    if args.legal_command == "add":
        request = legal.OrderRequest(
            issuer=args.issuer, legal_basis=args.basis, jurisdiction=args.jurisdiction, scope=args.scope,
            targets=args.target, countries=args.country,
            # (a bare date is the whole day: OrderRequest reads it as the day's end)
            deadline=args.deadline if re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.deadline)
            else parse_when(args.deadline, datetime.now(UTC)),
            reference=args.reference, expires_at=parse_when(args.expires, None) if args.expires else None)
        order = legal.record(request, CLI_ACTOR, ports)
        if not args.no_enforce:
            order = legal.enforce(order.order_id, CLI_ACTOR, ports)
        out.line(json.dumps(order.view()) if args.json else _summary(order.view()))
        return EXIT_OK
    if args.legal_command == "list":
        for order in ports.orders.list():
            out.line(json.dumps(order.view()) if args.json else _summary(order.view()))
        return EXIT_OK
    if args.legal_command == "enforce":
        order = legal.enforce(args.order_id, CLI_ACTOR, ports)
    else:
        order = ports.orders.get(args.order_id)
        if order is None:
            raise LookupError(f"no legal order {args.order_id}")
    out.line(json.dumps(order.view(), indent=None if args.json else 1))
    return EXIT_OK


def _summary(view: dict[str, Any]) -> str:
    return (f"{view['order_id']}  {view['issuer']} ({view['jurisdiction']})  {view['scope_kind']} x"
            f"{len(view['targets'])}  {','.join(view['countries'])}  deadline {view['deadline']}  "
            f"{view['status']}  {view['compliance']}")


def _verify(args: argparse.Namespace, out: Out) -> int:
    from mediaguard.decisions.evidence import verify_package

    problems, summary = verify_package(args.package.read_bytes())
    if args.json:
        out.line(json.dumps({"ok": not problems, "problems": problems, **summary}))
    else:
        for problem in problems:
            out.line(f"FAIL {problem}")
        out.line("verified" if not problems else f"FAILED: {len(problems)} problems")
    return EXIT_OK if not problems else EXIT_FAILED


def governance_config(gov: Any) -> dict[str, Any]:
    """What the map reports from: the active policy, the stack's parameters, the review SLAs."""
    from mediaguard.decisions.review.settings import get_review_settings
    from mediaguard.decisions.scoring import DEFAULT_POLICY, load_policy

    params = gov.target.parameters
    policy = load_policy(params.get("Policy") or gov.target.settings.policy or DEFAULT_POLICY)
    review = get_review_settings()
    return {
        "where": gov.target.where, "parameters": params,
        "policy": {"version": policy.version,
                   "thresholds": [t.model_dump() for t in policy.thresholds],
                   "weights": dict(policy.weights)},
        "review": {"fast_lane_risk": float(params.get("ReviewFastLaneRisk") or review.fast_lane_risk),
                   "fast_sla_minutes": int(params.get("ReviewFastSlaMinutes") or review.fast_sla_minutes),
                   "normal_sla_minutes": int(params.get("ReviewNormalSlaMinutes") or review.normal_sla_minutes)},
    }


def _governance_map(args: argparse.Namespace, gov: Any, out: Out) -> int:
    from mediaguard.decisions.governance import build_map, markdown

    now = datetime.now(UTC)
    report = gov.report(now - timedelta(days=30), now)
    counts = {"geofence_rules": report["geofence"]["rules_in_force"],
              "legal_orders": report["legal_orders"]["in_force"]}
    rmf = build_map(governance_config(gov), counts, report)
    if args.out:
        args.out.write_text(markdown(rmf), encoding="utf-8")
    out.line(json.dumps(rmf, default=str) if args.json else markdown(rmf))
    return EXIT_OK


def _erase(args: argparse.Namespace, gov: Any) -> dict[str, Any]:
    from mediaguard.decisions.erasure import erase_uploader

    return erase_uploader(args.uploader, CLI_ACTOR, gov.erasure_ports())
