"""``mediaguard genguard mark`` and ``verify``: marking generated outputs from the command line.

``mark`` records a generation (user, prompt sha256, model) and writes the marked output:
watermarked, with a signed C2PA manifest, its PDQ banked in ``own-generations``.
``verify`` says whether a file is one of those outputs and by what evidence.

Banks and the audit trail are those of ``mediaguard bank``: local files by default
(``--store DIR``, else ``$MEDIAGUARD_HOME/banks``), or the stack of a running
``mediaguard serve``, so a marked output uploaded to the local stack is labelled. The
local C2PA signer is the dev key under ``$MEDIAGUARD_HOME/genguard`` (created on first
use). Exit codes: 0 done, 1 failed (unreadable file, unusable image), 2 bad arguments.

``mediaguard.cli.genguard`` registers both in the ``genguard`` group (:func:`add_mark_parsers`)
and dispatches to :func:`run_mark`.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from pathlib import Path
from typing import Any

from mediaguard.cli.bank import EXIT_OK, EXIT_SOME_FAILED, Out


def add_mark_parsers(commands: Any) -> None:
    """Add ``mark`` and ``verify`` to the ``genguard`` group's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="one JSON object on stdout")
    common.add_argument("--store", type=Path, metavar="DIR",
                        help="local bank directory (default: $MEDIAGUARD_HOME/banks or ./.mediaguard/banks)")
    mark = commands.add_parser("mark", parents=[common], help="record a generation and write its marked output")
    mark.add_argument("--user", required=True)
    mark.add_argument("--prompt", required=True, help="kept only as its sha256")
    mark.add_argument("--tenant")
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
    except (MediaguardError, ValueError, OSError) as exc:
        error = {"type": type(exc).__name__, "reason": getattr(exc, "reason", "unreadable"), "message": str(exc)}
        out.line(json.dumps({"error": error}) if args.json else f"error={error['reason']}: {error['message']}")
        return EXIT_SOME_FAILED
    if args.json:
        out.line(json.dumps(record))
    elif args.genguard_command == "mark":
        out.line(f"{args.output}\tgeneration={record['generation_id']} sha256={record['output_sha256']} "
                 f"pdq={record['pdq']}")
    else:
        out.line(f"{args.file}\town_generation={str(record['own_generation']).lower()} "
                 f"generation={record['generation_id']} evidence={','.join(record['evidence']) or '-'} "
                 f"distance={record['distance']}")
    return EXIT_OK


def _home() -> Path:
    return Path(os.environ.get("MEDIAGUARD_HOME") or ".mediaguard")


def _mark(args: argparse.Namespace, banks, settings) -> dict[str, Any]:
    from datetime import UTC, datetime

    from mediaguard.genguard.mark import mark_output
    from mediaguard.genguard.provenance import dev_signing_material
    from mediaguard.genguard.records import (
        GenerationLedger,
        GenerationRecord,
        InMemoryGenerationStore,
        prompt_sha256,
    )

    image = args.input.read_bytes()
    # The audit trail the banks write to (the local files, or the running stack's table).
    trail = getattr(banks.audit, "__self__", None)
    if trail is None:
        raise ValueError("no audit trail to record the generation in")
    ledger = GenerationLedger(InMemoryGenerationStore(), trail)
    actor = f"cli:{args.user}"
    # Screening (genguard screen) is not run here: the caller vouches that the request passed it.
    record = ledger.create(GenerationRecord(
        generation_id=uuid.uuid4().hex, user=args.user, tenant=args.tenant or args.user,
        prompt_sha256=prompt_sha256(args.prompt), model=args.model, created=datetime.now(UTC).isoformat()), actor)
    featurizer = None
    if not args.pdq_only:
        from mediaguard.analysis.featurize import media_featurizer

        featurizer = media_featurizer(settings)
    marked = mark_output(image, record.generation_id, ledger=ledger, banks=banks, featurizer=featurizer,
                         signing=dev_signing_material(_home()), settings=settings, actor=actor)
    args.output.write_bytes(marked.data)
    return {"file": str(args.input), "output": str(args.output), "generation_id": marked.generation_id,
            "content_type": marked.content_type, "output_sha256": marked.output_sha256, "pdq": marked.pdq}


def _verify(args: argparse.Namespace, banks, settings) -> dict[str, Any]:
    from mediaguard.genguard.verify import verify

    anchors = settings.c2pa_trust_anchors
    dev_ca = _home() / "genguard" / "dev-ca.pem"
    if anchors is None and dev_ca.is_file():
        anchors = str(dev_ca)
    verdict = verify(args.file.read_bytes(), banks=banks, settings=settings, trust_anchors=anchors)
    return {"file": str(args.file), **verdict.to_dict()}
