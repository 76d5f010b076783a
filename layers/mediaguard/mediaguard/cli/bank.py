"""``mediaguard bank``: hash banks from the command line.

Banks live in local files by default (``--store DIR``, else ``$MEDIAGUARD_HOME/banks``,
else ``./.mediaguard/banks``), or in a deployed stack's tables with ``--stack NAME``
(AWS credentials from the usual places). With ``--json`` every result is one JSON
object per line on stdout. Exit codes as for the other commands: 0 done, 1 some
items failed, 2 nothing done because the request was invalid (unknown bank, bad CSV row).
"""

from __future__ import annotations

import argparse
import getpass
import json
import mimetypes
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mediaguard.analysis.banks.model import Bank, Featurizer
    from mediaguard.analysis.banks.service import BankService

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2  # the codes cli.py documents


class Out(Protocol):
    def line(self, text: str) -> None: ...


def add_bank_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bank`` and its subcommands to the ``mediaguard`` parser's subparsers."""
    from mediaguard.analysis.banks.model import ACTIONS, BANK_KINDS
    from mediaguard.signals import PdqSignal

    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--store", type=Path, metavar="DIR",
                       help="local bank directory (default: $MEDIAGUARD_HOME/banks or ./.mediaguard/banks)")
    where.add_argument("--stack", metavar="NAME", help="administer a deployed stack's bank tables instead")
    common.add_argument("--region", help="AWS region of --stack (default: the AWS configuration's)")
    common.add_argument("--actor", help="who is acting, for confirmations, withdrawals and the audit trail "
                                        "(default: $MEDIAGUARD_ACTOR or cli:<login name>)")
    common.add_argument("--json", action="store_true", help="one JSON object per result line on stdout")

    bank = subparsers.add_parser("bank", help="create, fill and curate hash banks (block, flag, allow)",
                                 description="Hash banks: create, fill and curate block, flag and allow banks.")
    sub = bank.add_subparsers(dest="bank_command", required=True, metavar="COMMAND")

    create = sub.add_parser("create", parents=[common], help="create an empty bank")
    create.add_argument("name")
    create.add_argument("--kind", required=True, choices=BANK_KINDS,
                        help="block (e.g. victim-submitted NCII hashes), flag (e.g. known deepfakes), "
                             "allow (verified originals; overrides a block match)")
    create.add_argument("--action", choices=ACTIONS, help="action label a match against this bank carries")
    create.add_argument("--pdq-threshold", type=int, default=PdqSignal.match_threshold, metavar="N",
                        help=f"max PDQ Hamming distance that counts as a match (default {PdqSignal.match_threshold})")
    create.add_argument("--embedding-threshold", type=float, metavar="COS",
                        help="min embedding cosine that counts as a match (default: the system threshold)")

    list_ = sub.add_parser("list", parents=[common], help="list banks")
    list_.add_argument("--counts", action="store_true", help="count active and withdrawn entries (reads every entry)")

    delete = sub.add_parser("delete", parents=[common], help="delete a bank and its entries")
    delete.add_argument("name")

    add = sub.add_parser("add", parents=[common], help="bank media files (folders are walked)")
    add.add_argument("name")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--ref-from", choices=("digest", "name"), default="digest",
                     help="entry ref: a digest of the file (default; file names may name a person) or its name")

    import_ = sub.add_parser("import", parents=[common], help="import a CSV of hex PDQ hashes ('-' = stdin)")
    import_.add_argument("name")
    import_.add_argument("file", metavar="FILE.csv")

    export = sub.add_parser("export", parents=[common], help="export as CSV: pdq_hash,quality,ref,status,group")
    export.add_argument("name")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout")

    confirm = sub.add_parser("confirm", parents=[common], help="record that you checked an entry (or a video group)")
    confirm.add_argument("name")
    confirm.add_argument("ref")

    withdraw = sub.add_parser("withdraw", parents=[common],
                              help="withdraw an entry (or a video group): its hash is deleted, a tombstone kept")
    withdraw.add_argument("name")
    withdraw.add_argument("ref")
    return bank


def run_bank(args: argparse.Namespace, out: Out, *, featurizer: Featurizer | None = None) -> int:
    """Run one ``mediaguard bank`` subcommand; returns the exit code.

    ``featurizer`` computes what ``bank add`` stores for a file (default: the PDQ the
    upload path computes, via ``ingest.prepare``).
    """
    from mediaguard.analysis.banks.errors import BankError, ConcurrentUpdateError

    aws_errors: tuple[type[Exception], ...] = ()
    try:
        if args.stack:
            from mediaguard.adapters.banks import AWS_ERRORS

            aws_errors = AWS_ERRORS
        service = _service(args)
        return _COMMANDS[args.bank_command](service, args, out, featurizer)
    except BankError as exc:
        _report_error(out, args, type(exc).__name__, exc.reason, str(exc))
        return EXIT_SOME_FAILED if isinstance(exc, ConcurrentUpdateError) else EXIT_USAGE
    except OSError as exc:  # an unreadable CSV or an unwritable export target
        _report_error(out, args, type(exc).__name__, "unreadable", exc.strerror or str(exc))
        return EXIT_USAGE
    except aws_errors as exc:
        _report_error(out, args, type(exc).__name__, "aws_error", str(exc))
        return EXIT_SOME_FAILED


# --- plumbing ---------------------------------------------------------------------------


def _service(args: argparse.Namespace) -> BankService:
    from mediaguard.analysis.banks.service import BankService

    if args.stack:
        from mediaguard.adapters.aws import DynamoItemStore
        from mediaguard.adapters.banks import DynamoBankStore, stack_settings

        settings = stack_settings(args.stack, args.region)
        audit = DynamoItemStore(settings).append_audit if settings.audit_table else None
        return BankService(DynamoBankStore(settings), audit=audit)
    if getattr(args, "local_stack", None) is not None:  # a running `mediaguard serve` (cli.main)
        from mediaguard.adapters.aws import DynamoItemStore
        from mediaguard.adapters.banks import DynamoBankStore
        from mediaguard.settings import get_settings

        settings = get_settings()
        audit = DynamoItemStore(settings).append_audit if settings.audit_table else None
        return BankService(DynamoBankStore(settings), audit=audit)
    from mediaguard.local.bankfile import FileBankStore

    store = FileBankStore(args.store)
    return BankService(store, audit=store.append_audit)


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return args.actor
    if os.environ.get("MEDIAGUARD_ACTOR"):
        return os.environ["MEDIAGUARD_ACTOR"]
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a bare container
        return "cli:unknown"


def _emit(out: Out, args: argparse.Namespace, record: dict[str, Any], text: str) -> None:
    out.line(json.dumps(record) if args.json else text)


def _report_error(out: Out, args: argparse.Namespace, kind: str, reason: str, message: str) -> None:
    sys.stderr.write(f"mediaguard bank: {message}\n")
    if args.json:
        out.line(json.dumps({"error": {"type": kind, "reason": reason, "message": message}}))


def _bank_line(bank: Bank) -> str:
    cosine = "default" if bank.embedding_threshold is None else f"{bank.embedding_threshold:g}"
    return f"{bank.name}\t{bank.kind}\taction={bank.action or '-'}\tpdq<={bank.pdq_threshold}\tcosine>={cosine}"


# --- commands -----------------------------------------------------------------------------


def _create(svc: BankService, args: argparse.Namespace, out: Out, _: Featurizer | None) -> int:
    bank = svc.create_bank(args.name, args.kind, actor=_actor(args), action=args.action,
                           pdq_threshold=args.pdq_threshold, embedding_threshold=args.embedding_threshold)
    _emit(out, args, bank.to_dict(), f"created {_bank_line(bank)}")
    return EXIT_OK


def _list(svc: BankService, args: argparse.Namespace, out: Out, _: Featurizer | None) -> int:
    for bank in svc.list_banks():
        record = bank.to_dict()
        text = _bank_line(bank)
        if args.counts:
            record["entries"] = counts = svc.counts(bank.name)
            text += f"\tactive={counts['active']}\twithdrawn={counts['withdrawn']}"
        _emit(out, args, record, text)
    return EXIT_OK


def _delete(svc: BankService, args: argparse.Namespace, out: Out, _: Featurizer | None) -> int:
    count = svc.delete_bank(args.name, actor=_actor(args))
    _emit(out, args, {"bank": args.name, "deleted": True, "entries": count},
          f"deleted bank {args.name} and its {count} entries")
    return EXIT_OK


def _files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        else:
            files.append(path)  # a missing file is reported as failed, in order
    return files


def _add(svc: BankService, args: argparse.Namespace, out: Out, featurizer: Featurizer | None) -> int:
    from mediaguard.analysis.banks.errors import BankError
    from mediaguard.analysis.banks.sources import pdq_featurizer
    from mediaguard.analysis.banks.validation import content_ref
    from mediaguard.errors import MediaRejectedError

    svc.get_bank(args.name)  # an unknown bank is a usage error, not one failure per file
    featurizer = featurizer or pdq_featurizer()
    actor = _actor(args)
    exit_code = EXIT_OK
    files = _files(args.paths)
    for i, path in enumerate(files, start=1):
        record: dict[str, Any] = {"file": str(path), "ref": None, "status": "failed", "entries": 0, "error": None}
        try:
            data = path.read_bytes()
            record["ref"] = ref = path.stem if args.ref_from == "name" else content_ref(data)
            report = svc.add_media(args.name, ref, data, actor=actor, declared=mimetypes.guess_type(path.name)[0],
                                   featurizer=featurizer)
            record["entries"] = len(report.refs)
            record["status"] = next((s for s, n in (("added", report.added), ("updated", report.updated),
                                                    ("withdrawn", report.skipped_withdrawn)) if n), "unchanged")
        except (MediaRejectedError, BankError) as exc:
            record["error"] = {"type": type(exc).__name__, "reason": exc.reason, "message": str(exc)}
        except OSError as exc:
            record["error"] = {"type": type(exc).__name__, "reason": "unreadable", "message": exc.strerror or ""}
        if record["error"]:
            exit_code = EXIT_SOME_FAILED
        note = {"withdrawn": " (withdrawn earlier: not re-added)"}.get(record["status"], "")
        _emit(out, args, record, f"{path}\t{record['status']}{note}\tref={record['ref'] or '-'}"
              + (f"\terror={record['error']['reason']}" if record["error"] else ""))
        if len(files) > 1:
            sys.stderr.write(f"\rbank add: {i}/{len(files)}" + ("\n" if i == len(files) else ""))
    return exit_code


def _import(svc: BankService, args: argparse.Namespace, out: Out, _: Featurizer | None) -> int:
    if args.file == "-":
        text, source = sys.stdin.read(), "csv:stdin"
    else:
        # utf-8-sig: spreadsheet exports start with a byte-order mark.
        text, source = Path(args.file).read_text(encoding="utf-8-sig"), f"csv:{Path(args.file).name}"
    report = svc.import_csv(args.name, text, actor=_actor(args), source=source)
    counts = report.counts()
    _emit(out, args, {"bank": args.name, "file": args.file, **counts},
          f"imported into {args.name}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
    return EXIT_OK


def _export(svc: BankService, args: argparse.Namespace, out: Out, _: Featurizer | None) -> int:
    if args.output is None:
        import io

        buffer = io.StringIO()
        svc.export_csv(args.name, buffer)
        out.line(buffer.getvalue().rstrip("\n"))
        return EXIT_OK
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    with tmp.open("w", newline="") as f:
        rows = svc.export_csv(args.name, f)
    tmp.replace(args.output)
    _emit(out, args, {"bank": args.name, "file": str(args.output), "rows": rows},
          f"exported {rows} rows of {args.name} to {args.output}")
    return EXIT_OK


def _confirm(svc: BankService, args: argparse.Namespace, out: Out, _: Featurizer | None) -> int:
    for e in svc.confirm(args.name, args.ref, actor=_actor(args)):
        _emit(out, args, {"bank": e.bank, "ref": e.ref, "status": e.status,
                          "confirmed_at": e.confirmed_at.isoformat() if e.confirmed_at else None,
                          "confirmed_by": e.confirmed_by},
              f"confirmed {e.bank}:{e.ref} by {e.confirmed_by}")
    return EXIT_OK


def _withdraw(svc: BankService, args: argparse.Namespace, out: Out, _: Featurizer | None) -> int:
    done = svc.withdraw(args.name, args.ref, actor=_actor(args))
    if not done:
        _emit(out, args, {"bank": args.name, "ref": args.ref, "status": "withdrawn", "changed": False},
              f"{args.name}:{args.ref} was withdrawn already")
    for e in done:
        _emit(out, args, {"bank": e.bank, "ref": e.ref, "status": e.status, "changed": True,
                          "withdrawn_at": e.withdrawn_at.isoformat() if e.withdrawn_at else None,
                          "withdrawn_by": e.withdrawn_by},
              f"withdrew {e.bank}:{e.ref} (hash deleted, tombstone kept)")
    return EXIT_OK


_COMMANDS = {"create": _create, "list": _list, "delete": _delete, "add": _add, "import": _import,
             "export": _export, "confirm": _confirm, "withdraw": _withdraw}
