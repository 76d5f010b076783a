"""``mediaguard audit verify``: recompute the audit trail and name every problem.

Exit codes: 0 verified (notes such as ``unanchored`` allowed), 1 problems found (each
listed; records no digest anchored within two digest periods are one: ``stale``), 2 usage
or configuration error (nothing was verified).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Protocol

from mediaguard.audit.chain import Report, verify_trail

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class _Lines(Protocol):
    def line(self, text: str) -> None: ...


def add_audit_parser(sub: Any) -> None:
    """Register ``audit verify`` on the ``mediaguard`` subcommand parsers."""
    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    verbs = audit.add_subparsers(dest="audit_command", required=True)
    verify = verbs.add_parser(
        "verify", help="recompute every chain and digest; name each edited, deleted or reordered record",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    verify.add_argument("--chain", metavar="ID", help="verify one chain (a media id, or upload:<id>)")
    verify.add_argument("--json", action="store_true", help="one JSON object with every finding on stdout")
    verify.add_argument("--stack", metavar="NAME",
                        help="a deployed stack: table and bucket names come from its outputs "
                             "(default: the environment, as in a function or a local stack)")
    verify.add_argument("--region", help="the stack's region (default: the AWS configuration's)")


def run_audit(args: argparse.Namespace, out: _Lines, settings: Any = None) -> int:
    """Run ``audit verify`` and print the result; ``settings`` (e.g. a local stack's
    ``deps().settings``) is used when no ``--stack`` is given, else the environment's."""
    from mediaguard.adapters.audit import (
        AuditConfigError,
        AuditUnavailableError,
        DynamoAuditStore,
        names_from_settings,
        names_from_stack,
    )
    from mediaguard.settings import get_settings

    try:
        names = (names_from_stack(args.stack, args.region) if args.stack
                 else names_from_settings(settings if settings is not None else get_settings()))
        report = verify_trail(DynamoAuditStore(names).snapshot(args.chain))
    except (AuditConfigError, AuditUnavailableError) as exc:
        sys.stderr.write(f"mediaguard audit: {exc}\n")
        return EXIT_USAGE
    if args.chain is not None and not report.checked:
        sys.stderr.write(f"mediaguard audit: no audit trail for chain {args.chain} "
                         "(no records, no head pointer, no digest names it)\n")
        return EXIT_USAGE
    if args.json:
        out.line(json.dumps(report.to_dict()))
    else:
        for line in render(report):
            out.line(line)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def render(report: Report) -> list[str]:
    """One line per finding (FAIL or NOTE, where, kind, why), then a summary line."""
    lines = [f"{'FAIL' if f.failing else 'NOTE'} {f.where} {f.kind}: {f.message}" for f in report.findings]
    latest = report.latest_digest
    summary = (f"{report.chains} chain{'s' * (report.chains != 1)}, {report.records} record{'s' * (report.records != 1)}, "
               f"{report.digests} digest{'s' * (report.digests != 1)}"
               + (f" (latest #{latest['seq']} at {latest['at']})" if latest else " (none yet)"))
    problems = len(report.problems)
    lines.append(f"verified: {summary}" if report.ok
                 else f"FAILED: {summary}: {problems} problem{'s' * (problems != 1)}")
    return lines
