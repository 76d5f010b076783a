"""``mediaguard geofence add|list|remove``: the HTTP 451 rules the edge viewer-request function enforces.

Targets a deployed stack (``--stack NAME [--region R]``: its ``GeofenceTable``, found
through CloudFormation) or, by default, a local JSON store in ``$MEDIAGUARD_HOME`` (or
``./.mediaguard``). Both go through the same validation and the same store calls.

Exit codes as for every ``mediaguard`` command: 0 done, 1 the operation did not happen
(rule exists, no such rule, stack not found), 2 bad arguments (invalid country, scope,
reference or expiry). With ``--json`` each result (or error) is one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

# Only argparse at import time: ``mediaguard`` builds this parser for every command, so
# the domain, pydantic models and pynamodb load when a geofence command actually runs.
if TYPE_CHECKING:
    from mediaguard.decisions.geofence import GeofenceStore, GeoRule
    from mediaguard.decisions.history import Pseudonymiser
    from mediaguard.settings import Settings

# The same codes as mediaguard.cli.main (not imported: cli imports this module).
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LOCAL_STORE = "geofence.json"
TABLE_RESOURCE = "GeofenceTable"  # logical id in template.yaml


class Out(Protocol):
    def line(self, text: str) -> None: ...


def add_geofence_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``geofence`` and its ``add``/``list``/``remove`` subcommands to the ``mediaguard`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    target = common.add_argument_group("target (default: the local store)")
    target.add_argument("--stack", help="main stack name: use its GeofenceTable (the table the edge reads)")
    target.add_argument("--region", help="region of --stack (default: AWS_REGION or the AWS config)")
    target.add_argument("--home", type=Path,
                        help="local store folder (default: $MEDIAGUARD_HOME, else ./.mediaguard)")
    common.add_argument("--json", action="store_true", help="one JSON object per rule or result per line")

    geofence = subparsers.add_parser("geofence", help="HTTP 451 rules the edge enforces per viewer country")
    actions = geofence.add_subparsers(dest="geofence_command", required=True)
    add = actions.add_parser("add", parents=[common], help="add a rule (refused if one with its key exists)")
    add.add_argument("country", help="ISO 3166-1 alpha-2 code, e.g. DE")
    add.add_argument("--legal-reference", required=True,
                     help="statute, court order or notice id; shown to the viewer in the 451 response")
    add.add_argument("--scope", default="global",
                     help="global (default) | media:<media id> | path:<uri prefix> | uploader:<platform id> | "
                          "uploader-key:<hex> | label:<label>")
    add.add_argument("--expires", help="ISO 8601 date or date-time; UTC unless it names an offset")
    add.add_argument("--replace", action="store_true", help="overwrite an existing rule with the same key")

    listing = actions.add_parser("list", parents=[common], help="list rules, expired ones included")
    listing.add_argument("--country", help="only this country")

    remove = actions.add_parser("remove", parents=[common], help="remove one rule by country and scope")
    remove.add_argument("country")
    remove.add_argument("--scope", default="global", help="as given to add, or as list prints it")
    return geofence


def run_geofence(args: argparse.Namespace, out: Out) -> int:
    """Run one ``mediaguard geofence`` subcommand; returns the exit code."""
    from pynamodb.exceptions import PynamoDBException

    from mediaguard.adapters.geofence import TargetError
    from mediaguard.adapters.secrets import uploader_pseudonymiser
    from mediaguard.decisions.geofence import GeofenceRuleError
    from mediaguard.settings import get_settings

    now = datetime.now(UTC)
    try:
        settings = get_settings()
        pseudonymiser = uploader_pseudonymiser(settings)
        store, where = _store(args, settings)
        sys.stderr.write(f"geofence store: {where}\n")
        if args.geofence_command == "add":
            return _add(args, store, now, pseudonymiser, out)
        if args.geofence_command == "list":
            return _list(args, store, now, out)
        return _remove(args, store, pseudonymiser, out)
    except json.JSONDecodeError as exc:  # a ValueError too, but the store's fault, not the arguments'
        return _fail(args, out, EXIT_FAILED, "store_unreadable", exc)
    except (GeofenceRuleError, ValueError) as exc:
        return _fail(args, out, EXIT_USAGE, "invalid_rule" if isinstance(exc, GeofenceRuleError) else "usage", exc)
    except (TargetError, PynamoDBException) as exc:  # no such stack or table, access denied, throttled
        return _fail(args, out, EXIT_FAILED, "target_unavailable", exc)


def _fail(args: argparse.Namespace, out: Out, code: int, reason: str, exc: Exception) -> int:
    sys.stderr.write(f"mediaguard geofence: {exc}\n")
    if args.json:
        out.line(json.dumps({"error": {"type": type(exc).__name__, "reason": reason, "message": str(exc)}}))
    return code


def _store(args: argparse.Namespace, settings: Settings) -> tuple[GeofenceStore, str]:
    if args.stack and args.home:
        raise ValueError("--stack and --home name different stores: give one")
    if args.stack:
        from mediaguard.adapters.geofence import DynamoGeofence, default_region, stack_table
        from mediaguard.settings import Settings

        region = args.region or default_region() or settings.region
        table = stack_table(args.stack, region)

        return DynamoGeofence(Settings(geofence_table=table, region=region)), f"stack {args.stack} ({region}), {table}"
    if args.region:
        raise ValueError("--region applies to --stack only")
    from mediaguard.adapters.geofence import JsonGeofence

    if getattr(args, "local_stack", None) is not None and settings.geofence_table:  # a running serve (cli.main)
        from mediaguard.adapters.geofence import DynamoGeofence

        return DynamoGeofence(settings), f"local stack {args.local_stack.endpoint}, {settings.geofence_table}"
    home = args.home or Path(os.environ.get("MEDIAGUARD_HOME") or ".mediaguard")
    return JsonGeofence(home / LOCAL_STORE), f"local {home / LOCAL_STORE}"




def _parse_when(text: str | None) -> datetime | None:
    from mediaguard.decisions.geofence import GeofenceRuleError

    if not text:
        return None
    try:
        if len(text) == 10:  # a bare date: the rule lapses at the start of that day, UTC
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise GeofenceRuleError(f"--expires is not an ISO 8601 date or date-time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _add(args: argparse.Namespace, store: GeofenceStore, now: datetime, pseudonymiser: Pseudonymiser | None,
         out: Out) -> int:
    from mediaguard.decisions.geofence import new_rule

    rule = new_rule(args.country, args.scope, args.legal_reference, _parse_when(args.expires), now=now,
                    pseudonymiser=pseudonymiser)
    existed = any((r.country, r.scope) == (rule.country, rule.scope) for r in store.list())
    if existed and not args.replace:
        err = f"a rule for {rule.country} {rule.shown_scope} exists; remove it first or use --replace"
        return _fail(args, out, EXIT_FAILED, "rule_exists", FileExistsError(err))
    store.add(rule, replace=args.replace)
    result = "replaced" if existed else "added"
    if not rule.enforced_at_edge:
        sys.stderr.write("warning: recorded, but not enforced: the edge viewer function sees only the URI and the "
                         "country, so it cannot apply uploader or label scopes\n")
    if args.json:
        out.line(json.dumps({"result": result, "rule": rule.view(now)}, ensure_ascii=False))
    else:
        out.line(f"{result} {_summary(rule, now)}")
    return EXIT_OK


def _list(args: argparse.Namespace, store: GeofenceStore, now: datetime, out: Out) -> int:
    country = args.country.strip().upper() if args.country else None
    rules = [r for r in store.list() if country is None or r.country == country]
    if args.json:
        for rule in rules:
            out.line(json.dumps(rule.view(now), ensure_ascii=False))
        return EXIT_OK
    rows = [("country", "scope", "expires", "status", "edge", "legal reference")]
    for rule in rules:
        view = rule.view(now)
        rows.append((rule.country, view["scope"], view["expires_at"] or "never", "expired" if view["expired"] else "active",
                     "yes" if view["enforced_at_edge"] else "no", rule.legal_reference))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out.line("\n".join(lines))
    return EXIT_OK


def _remove(args: argparse.Namespace, store: GeofenceStore, pseudonymiser: Pseudonymiser | None, out: Out) -> int:
    from mediaguard.decisions.geofence import parse_scope, rule_key

    country, scope = rule_key(args.country, args.scope, pseudonymiser)
    if not store.remove(country, scope):
        # The stored form, never the typed one: that may hold a raw uploader id.
        missing = LookupError(f"no rule for {country} {parse_scope(scope).shown}")
        return _fail(args, out, EXIT_FAILED, "no_such_rule", missing)
    if args.json:
        out.line(json.dumps({"result": "removed", "country": country, "stored_scope": scope}))
    else:
        out.line(f"removed {country} {scope}")
    return EXIT_OK


def _summary(rule: GeoRule, now: datetime) -> str:
    view = rule.view(now)
    until = f"until {view['expires_at']}" if view["expires_at"] else "no expiry"
    return f"{rule.country} {view['scope']} ({until}): {rule.legal_reference}"
