"""``mediaguard redrive-events``: re-deliver the upload events the start function failed on.

Reads the stack's ``StartFailedEventsQueue`` (Lambda's on-failure destination for the
S3-invoked start function), re-invokes the start function with each stored S3 event and
deletes a message only after that succeeded. Safe to run again: start ignores uploads it
has already started.

Exit codes: 0 every message redriven (or none queued), 1 some stay queued (listed), 2
usage or configuration error (nothing was read).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mediaguard.adapters.redrive import RedriveTarget

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class _Lines(Protocol):
    def line(self, text: str) -> None: ...


def add_redrive_events_parser(sub: Any) -> None:
    """Register ``redrive-events`` on the ``mediaguard`` subcommand parsers."""
    parser = sub.add_parser("redrive-events", help="re-invoke the start function with the S3 events it failed on",
                            description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--stack", metavar="NAME", default=os.environ.get("MEDIAGUARD_STACK"),
                        help="the deployed main stack (default: $MEDIAGUARD_STACK)")
    parser.add_argument("--region", help="the stack's region (default: the AWS configuration's)")
    parser.add_argument("--json", action="store_true", help="one JSON object per message on stdout")


def run_redrive_events(args: argparse.Namespace, out: _Lines, target: RedriveTarget | None = None,
                clients: tuple[Any, Any] | None = None) -> int:
    """Run ``redrive-events``. ``target`` and ``clients`` (sqs, lambda) replace the stack
    lookup and the default clients, e.g. for a local stack."""
    import boto3

    from mediaguard.adapters.redrive import REDRIVEN, RedriveConfigError, redrive, target_from_stack

    try:
        if target is None:
            if not args.stack:
                raise RedriveConfigError("name the stack: --stack NAME (or MEDIAGUARD_STACK)")
            target = target_from_stack(args.stack, args.region)
    except RedriveConfigError as exc:
        sys.stderr.write(f"mediaguard redrive-events: {exc}\n")
        return EXIT_USAGE
    sqs, lam = clients or (boto3.client("sqs", region_name=target.region),
                           boto3.client("lambda", region_name=target.region))
    counts: dict[str, int] = {}
    for outcome in redrive(target, sqs=sqs, lam=lam):
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
        if args.json:
            out.line(json.dumps(outcome.to_dict()))
        else:
            why = f" ({outcome.error})" if outcome.error else ""
            out.line(f"{outcome.outcome.upper()} {outcome.message_id} {' '.join(outcome.keys)}{why}")
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "queue empty"
    sys.stderr.write(f"redrive-events: {summary}\n")
    return EXIT_OK if set(counts) <= {REDRIVEN} else EXIT_SOME_FAILED
