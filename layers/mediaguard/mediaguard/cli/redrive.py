"""``mediaguard redrive MEDIA_ID``: start a new run of a failed or stuck item after a fix.

A new execution with a new name, recorded in the item's audit chain (``redriven``); the
run it replaces, if it ever wakes up, stops at the first stage's claim. Only items that
are ``failed``, ``start_failed`` or still ``received`` are re-driven: a rejected upload
would be rejected again, and a finished item's decision is changed by a reviewer.

Exit codes: 0 started, 1 refused (no such item, or not in a re-drivable state), 2 usage
or configuration error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, Protocol

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
REASON = r"^[a-z][a-z0-9_.:-]{0,63}$"


class _Lines(Protocol):
    def line(self, text: str) -> None: ...


def add_redrive_parser(sub: Any) -> None:
    """Register ``redrive`` on the ``mediaguard`` subcommand parsers."""
    redrive = sub.add_parser("redrive", help="start a new run of a failed or stuck item (audited)",
                             description=__doc__.split("\n\n")[1] if __doc__ else None)
    redrive.add_argument("media_id")
    redrive.add_argument("--reason", default="operator_redrive",
                         help="a short code recorded in the audit trail, e.g. fixed_classifier")
    redrive.add_argument("--json", action="store_true", help="one JSON object on stdout")
    redrive.add_argument("--stack", metavar="NAME",
                         help="a deployed stack: table and state machine names come from its outputs "
                              "(default: the environment, as in a function or a local stack)")
    redrive.add_argument("--region", help="the stack's region (default: the AWS configuration's)")


def run_redrive(args: argparse.Namespace, out: _Lines, deps: Any = None) -> int:
    """Re-drive ``args.media_id`` with ``deps`` (a local stack's ``deps()``), the stack's, or the environment's."""
    import re

    from mediaguard.decisions.redrive import ItemNotFoundError, redrive
    from mediaguard.errors import RedriveRefusedError

    if not re.fullmatch(REASON, args.reason):
        sys.stderr.write("mediaguard redrive: --reason must be a short code like fixed_classifier\n")
        return EXIT_USAGE
    try:
        deps = deps if deps is not None else _deps(args.stack, args.region)
    except LookupError as exc:
        sys.stderr.write(f"mediaguard redrive: {exc}\n")
        return EXIT_USAGE
    try:
        result = redrive(args.media_id, deps, actor=f"operator:{getpass.getuser()}", reason=args.reason)
    except (ItemNotFoundError, RedriveRefusedError) as exc:
        sys.stderr.write(f"mediaguard redrive: {args.media_id}: {exc}\n")
        return EXIT_REFUSED
    if args.json:
        out.line(json.dumps(result.to_dict()))
    else:
        out.line(f"redriven {result.media_id}: run {result.run} (was {result.previous_status}"
                 f"{', run ' + result.previous_run if result.previous_run else ''})")
    return EXIT_OK


_OUTPUTS = {"media_table": "MediaTableName", "audit_table": "AuditTableName",
            "audit_head_table": "AuditHeadTableName", "state_machine_arn": "PipelineStateMachineArn"}


def _deps(stack: str | None, region: str | None) -> Any:
    from mediaguard.settings import get_settings

    if stack is None:
        from mediaguard import wiring

        settings = get_settings()
        if not (settings.media_table and settings.state_machine_arn):
            raise LookupError("no stack configured: pass --stack NAME, or set MEDIA_TABLE and STATE_MACHINE_ARN")
        return wiring.redrive_deps()
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from mediaguard.adapters.aws import DynamoItemStore, workflow
    from mediaguard.ports import Deps

    cfn = boto3.client("cloudformation", region_name=region)
    try:
        outputs = {o["OutputKey"]: o["OutputValue"]
                   for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    except (BotoCoreError, ClientError) as exc:
        raise LookupError(f"stack {stack}: {type(exc).__name__}") from exc
    missing = [key for key in _OUTPUTS.values() if key not in outputs]
    if missing:
        raise LookupError(f"stack {stack} has no outputs {', '.join(missing)}")
    settings = get_settings().model_copy(update={"region": cfn.meta.region_name,
                                                 **{field: outputs[key] for field, key in _OUTPUTS.items()}})
    return Deps(settings=settings, items=DynamoItemStore(settings), workflow=workflow(settings))
