"""``mediaguard genguard mark`` and ``verify``: marking generated outputs from the command line.

``mark`` first screens the request exactly as ``genguard screen`` (and ``POST
/v1/generations``) does: a refused prompt exits 1 with the reasons, its refusal on the
user's refusal chain, and no output written. An allowed one is recorded (user, tenant,
prompt sha256, model: the ``generation:<id>`` chain) and the marked output written:
watermarked, with a signed C2PA manifest, its PDQ (and embeddings) banked in
``own-generations``. ``verify`` says whether a file is one of those outputs and by what
evidence.

Banks and the audit trail are those of ``mediaguard bank``: local files by default
(``--store DIR``, else ``$MEDIAGUARD_HOME/banks``), or the stack of a running
``mediaguard serve``, so a marked output uploaded to the local stack is labelled. The
local C2PA signer is the dev key under ``$MEDIAGUARD_HOME/genguard`` (created on first
use). Exit codes: 0 done, 1 refused by screening or failed (unreadable file, unusable
image), 2 bad arguments or an unreadable reference.

``mediaguard.cli.genguard`` registers both in the ``genguard`` group (:func:`add_mark_parsers`)
and dispatches to :func:`run_mark`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mediaguard.cli.bank import EXIT_OK, EXIT_SOME_FAILED, Out
from mediaguard.cli.genguard_screen import EXIT_REFUSED, EXIT_USAGE, UsageError, refused_line, screen_request


def add_mark_parsers(commands: Any) -> None:
    """Add ``mark`` and ``verify`` to the ``genguard`` group's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="one JSON object on stdout")
    common.add_argument("--store", type=Path, metavar="DIR",
                        help="local bank directory (default: $MEDIAGUARD_HOME/banks or ./.mediaguard/banks)")
    mark = commands.add_parser("mark", parents=[common], help="record a generation and write its marked output")
    mark.add_argument("--user", required=True)
    mark.add_argument("--prompt", required=True, help="screened, then kept only as its sha256")
    mark.add_argument("--tenant", default="local", help="the tenant the request is billed to (default: local)")
    mark.add_argument("--reference", action="append", default=[], type=Path, metavar="IMAGE",
                      help="a reference image the request edited or drew on, screened as by screen; repeatable")
    mark.add_argument("--model")
    mark.add_argument("--pdq-only", action="store_true",
                      help="bank the PDQ only, not the embeddings (which need onnxruntime and the models)")
    mark.add_argument("input", type=Path, metavar="IN")
    mark.add_argument("output", type=Path, metavar="OUT")
    verify = commands.add_parser("verify", parents=[common], help="is FILE one of our generated outputs?")
    verify.add_argument("file", type=Path, metavar="FILE")


def run_mark(args: argparse.Namespace, out: Out) -> int:
    """``genguard mark`` or ``genguard verify``."""
    from mediaguard.cli.bank import _service
    from mediaguard.errors import MediaguardError
    from mediaguard.settings import Settings

    args.stack = None  # cli.bank's plumbing: local files, or a running `mediaguard serve`
    banks = _service(args)
    settings = Settings(c2pa_trust_anchors=os.environ.get("MEDIAGUARD_C2PA_TRUST_ANCHORS"))
    try:
        if args.genguard_command == "mark":
            record = _mark(args, banks, settings)
        else:
            record = _verify(args, banks, settings)
    except UsageError as exc:
        sys.stderr.write(f"mediaguard genguard: {exc}\n")
        return EXIT_USAGE
    except (MediaguardError, ValueError, OSError) as exc:
        error = {"type": type(exc).__name__, "reason": getattr(exc, "reason", "unreadable"), "message": str(exc)}
        out.line(json.dumps({"error": error}) if args.json else f"error={error['reason']}: {error['message']}")
        return EXIT_SOME_FAILED
    if args.json:
        out.line(json.dumps(record))
    elif not record.get("allowed", True):
        out.line(refused_line(record))
    elif args.genguard_command == "mark":
        out.line(f"{args.output}\tgeneration={record['generation_id']} sha256={record['output_sha256']} "
                 f"pdq={record['pdq']}")
    else:
        out.line(f"{args.file}\town_generation={str(record['own_generation']).lower()} "
                 f"generation={record['generation_id']} evidence={','.join(record['evidence']) or '-'} "
                 f"distance={record['distance']}")
    return EXIT_OK if record.get("allowed", True) else EXIT_REFUSED


def _home() -> Path:
    return Path(os.environ.get("MEDIAGUARD_HOME") or ".mediaguard")


def _mark(args: argparse.Namespace, banks, settings) -> dict[str, Any]:
    from mediaguard.genguard.mark import mark_output
    from mediaguard.genguard.provenance import dev_signing_material
    from mediaguard.genguard.records import GenerationLedger, InMemoryGenerationStore

    image = args.input.read_bytes()
    # The audit trail the banks write to (the local files, or the running stack's table).
    trail = getattr(banks.audit, "__self__", None)
    if trail is None:
        raise ValueError("no audit trail to record the generation in")
    # The record's store lives for this one command; its audit chain is what stays.
    ledger = GenerationLedger(InMemoryGenerationStore(), trail)
    actor = f"cli:{args.user}"
    decision = screen_request(args, ledger, actor)
    if not decision["allowed"]:  # refused: the refusal is on the trail, OUT is not written
        return {"file": str(args.input), **decision}
    featurizer = None
    if not args.pdq_only:
        from mediaguard.analysis.featurize import media_featurizer

        featurizer = media_featurizer(settings)
    marked = mark_output(image, decision["generation_id"], ledger=ledger, banks=banks, featurizer=featurizer,
                         signing=dev_signing_material(_home()), settings=settings, actor=actor)
    args.output.write_bytes(marked.data)
    return {"file": str(args.input), "output": str(args.output), "allowed": True,
            "generation_id": marked.generation_id, "content_type": marked.content_type,
            "output_sha256": marked.output_sha256, "pdq": marked.pdq}


def _verify(args: argparse.Namespace, banks, settings) -> dict[str, Any]:
    from mediaguard.genguard.verify import verify

    anchors = settings.c2pa_trust_anchors
    dev_ca = _home() / "genguard" / "dev-ca.pem"
    if anchors is None and dev_ca.is_file():
        anchors = str(dev_ca)
    verdict = verify(args.file.read_bytes(), banks=banks, settings=settings, trust_anchors=anchors)
    return verdict.to_dict()  # exactly the contract's fields (issue 12): one FILE, no echo of it
