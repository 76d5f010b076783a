"""``mediaguard`` command line: the local pipeline, fingerprints and sanitizing.

The output contract (field names, one JSON object per input per line with
``--json``, exit codes) is documented in the README and kept stable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from mediaguard.cli.audit import add_audit_parser, run_audit
from mediaguard.cli.bank import add_bank_parser, run_bank
from mediaguard.cli.evaluate import add_eval_parser, run_eval
from mediaguard.cli.genguard import add_genguard_parser, run_genguard
from mediaguard.cli.geofence import add_geofence_parser, run_geofence
from mediaguard.cli.govern import COMMANDS as GOVERN_COMMANDS
from mediaguard.cli.govern import add_govern_parsers, run_govern
from mediaguard.cli.live import add_live_parser, run_live
from mediaguard.cli.redrive import add_redrive_parser, run_redrive
from mediaguard.cli.redrive_events import add_redrive_events_parser, run_redrive_events
from mediaguard.cli.redteam import add_redteam_parser, run_redteam
from mediaguard.cli.scan import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, Out, declared_type, progress, run_scan
from mediaguard.cli.serve import add_serve_parser
from mediaguard.cli.upload import add_upload_parser, run_upload
from mediaguard.errors import MediaguardError
from mediaguard.settings import Settings


def run_hash(paths: list[Path], out: Out, as_json: bool) -> int:
    from mediaguard.ingress.ingest import prepare

    exit_code = EXIT_OK
    settings = Settings()
    for i, path in enumerate(paths, start=1):
        progress(i - 1, len(paths), path.name)
        record: dict[str, Any] = {"file": str(path)}
        try:
            prepared = prepare(path.read_bytes(), declared_type(path), settings)
            record["fingerprints"] = prepared.fingerprints.model_dump(exclude={"dhash", "pdq_dihedral"})
            record["error"] = None
        except (MediaguardError, OSError) as exc:
            record["fingerprints"] = None
            record["error"] = {"type": type(exc).__name__, "reason": getattr(exc, "reason", "unreadable"),
                               "message": str(exc)}
            exit_code = EXIT_SOME_FAILED
        if as_json:
            out.line(json.dumps(record))
        else:
            fp = record["fingerprints"]
            out.line(f"{path}\t" + (f"pdq={fp['pdq']} q={fp['pdq_quality']} phash={fp['phash']} sha256={fp['sha256']}"
                                    if fp else f"error={record['error']['reason']}"))
        progress(i, len(paths), path.name)
    return exit_code


def run_sanitize(src: Path, dst: Path, out: Out) -> int:
    from mediaguard.ingress.ingest import prepare

    try:
        prepared = prepare(src.read_bytes(), declared_type(src), Settings())
    except (MediaguardError, OSError) as exc:
        out.line(json.dumps({"file": str(src), "error": {"type": type(exc).__name__,
                                                         "reason": getattr(exc, "reason", "unreadable"),
                                                         "message": str(exc)}}))
        return EXIT_SOME_FAILED
    clean = prepared.sanitized
    dst.write_bytes(clean.data)
    out.line(json.dumps({
        "file": str(src), "output": str(dst), "kind": prepared.kind.name, "method": clean.method,
        "metadata_removed": clean.removed, "bytes_in": src.stat().st_size, "bytes_out": len(clean.data),
        "sha256_in": prepared.fingerprints.sha256, "sha256_out": clean.sha256,
        "width": clean.width, "height": clean.height, "error": None,
    }))
    return EXIT_OK


# --- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediaguard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", help="run files through the full local pipeline (template + state machine on moto)")
    scan.add_argument("--json", action="store_true", help="one JSON object per input per line on stdout")
    scan.add_argument("--bank", action="append", default=[], metavar="NAME[:KIND]=PATH",
                      help="build a bank first from a folder of media or a CSV of hex PDQ hashes "
                           "(KIND: block|flag|allow, default block); repeatable")
    scan.add_argument("--verbose", action="store_true", help="handler logs (INFO) on stderr")
    scan.add_argument("--jobs", type=int, default=None, metavar="N",
                      help="files scanned at once through the one local stack (default: number of cores); "
                           "output stays in input order")
    scan.add_argument("paths", nargs="+", type=Path)

    hash_ = sub.add_parser("hash", help="fingerprints only (same code and field names as scan)")
    hash_.add_argument("--json", action="store_true")
    hash_.add_argument("paths", nargs="+", type=Path)

    sanitize = sub.add_parser("sanitize", help="write the sanitized file exactly as the pipeline would")
    sanitize.add_argument("src", type=Path)
    sanitize.add_argument("dst", type=Path)

    add_bank_parser(sub)
    add_audit_parser(sub)
    add_geofence_parser(sub)
    add_redrive_parser(sub)
    add_serve_parser(sub)
    add_redrive_events_parser(sub)
    add_redteam_parser(sub)
    add_eval_parser(sub)
    add_live_parser(sub)
    add_genguard_parser(sub)
    add_govern_parsers(sub)
    add_upload_parser(sub)

    sub.add_parser("demo", help="scan the bundled sample set against a demo bank and print a table")
    return parser


def find_local_stack(args: argparse.Namespace) -> None:
    """Given no ``--stack``, ``--store`` or ``--home``, and no stack named in the environment:
    the stack of a running ``mediaguard serve``, from its serve.json (mediaguard.local.state).
    Sets ``args.local_stack`` (None when there is none)."""
    args.local_stack = None
    if getattr(args, "stack", None) or getattr(args, "store", None) or getattr(args, "home", None):
        return
    from mediaguard.local.state import StateFileError, use_running_stack

    try:
        state = use_running_stack()
    except StateFileError as exc:
        sys.stderr.write(f"mediaguard: ignoring {exc}\n")
        return
    if state is not None:
        sys.stderr.write(f"mediaguard: using the local stack of mediaguard serve ({state.endpoint})\n")
        args.local_stack = state


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Out()
    if args.command in ("audit", "bank", "geofence", "genguard", *GOVERN_COMMANDS):
        find_local_stack(args)
    started = time.perf_counter()
    try:
        if args.command == "scan":
            code = run_scan(args.paths, args.bank, out, args.json, "INFO" if args.verbose else "WARNING",
                            jobs=args.jobs)
        elif args.command == "hash":
            code = run_hash(args.paths, out, args.json)
        elif args.command == "sanitize":
            code = run_sanitize(args.src, args.dst, out)
        elif args.command == "geofence":
            code = run_geofence(args, out)
        elif args.command in GOVERN_COMMANDS:
            code = run_govern(args, out)
        elif args.command == "serve":
            from mediaguard.cli.serve import run_serve

            code = run_serve(args, out)
        elif args.command == "audit":
            code = run_audit(args, out)
        elif args.command == "redrive-events":
            code = run_redrive_events(args, out)
        elif args.command == "redrive":
            code = run_redrive(args, out)
        elif args.command == "redteam":
            code = run_redteam(args, out)
        elif args.command == "live":
            code = run_live(args, out)
        elif args.command == "genguard":
            code = run_genguard(args, out)
        elif args.command == "upload":
            code = run_upload(args, out)
        elif args.command == "eval":
            code = run_eval(args, out)
        elif args.command == "bank":
            from mediaguard.analysis.featurize import media_featurizer

            code = run_bank(args, out, featurizer=media_featurizer())
        else:
            from mediaguard.cli.demo import run_demo

            code = run_demo(out)
    except ValueError as exc:  # bad arguments, e.g. a malformed --bank or eval's LabelsError
        sys.stderr.write(f"mediaguard: {exc}\n")
        return EXIT_USAGE
    sys.stderr.write(f"mediaguard {args.command}: {time.perf_counter() - started:.1f}s\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
