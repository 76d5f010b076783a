"""``mediaguard genguard``: the generative-AI guard from the command line.

``mark`` records a generation (user, prompt sha256, model) and writes the marked output:
watermarked, with a signed C2PA manifest, its PDQ banked in ``own-generations``.
``verify`` says whether a file is one of those outputs and by what evidence.

Banks and the audit trail are those of ``mediaguard bank``: local files by default
(``--store DIR``, else ``$MEDIAGUARD_HOME/banks``), or the stack of a running
``mediaguard serve``, so a marked output uploaded to the local stack is labelled. The
local C2PA signer is the dev key under ``$MEDIAGUARD_HOME/genguard`` (created on first
use). Exit codes: 0 done, 1 failed (unreadable file, unusable image), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from mediaguard.cli.bank import EXIT_OK, EXIT_SOME_FAILED, Out


def add_genguard_parser(subparsers: Any) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="one JSON object on stdout")
    common.add_argument("--store", type=Path, metavar="DIR",
                        help="local bank directory (default: $MEDIAGUARD_HOME/banks or ./.mediaguard/banks)")
    genguard = subparsers.add_parser("genguard", help="guard the platform's own image generator: mark, verify",
                                     description="Generative-AI guard: mark and verify generated outputs.")
    sub = genguard.add_subparsers(dest="genguard_command", required=True, metavar="COMMAND")
    mark = sub.add_parser("mark", parents=[common], help="record a generation and write its marked output")
    mark.add_argument("--user", required=True)
    mark.add_argument("--prompt", required=True, help="kept only as its sha256")
    mark.add_argument("--tenant")
    mark.add_argument("--model")
    mark.add_argument("input", type=Path, metavar="IN")
    mark.add_argument("output", type=Path, metavar="OUT")
    verify = sub.add_parser("verify", parents=[common], help="is FILE one of our generated outputs?")
    verify.add_argument("file", type=Path, metavar="FILE")
    return genguard


def run_genguard(args: argparse.Namespace, out: Out) -> int:
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
    from mediaguard.genguard.mark import generation_chain, mark_output
    from mediaguard.genguard.provenance import dev_signing_material
    from mediaguard.genguard.records import GenerationRecord, InMemoryGenerationStore

    image = args.input.read_bytes()
    # No screening here yet (genguard screen): the caller vouches that the request passed it.
    record = GenerationRecord(generation_id=uuid.uuid4().hex, user=args.user, tenant=args.tenant,
                              prompt_sha256=hashlib.sha256(args.prompt.encode()).hexdigest(), model=args.model)
    records = InMemoryGenerationStore()
    records.create(record)
    audit = banks.audit or (lambda *a: None)
    actor = f"cli:{args.user}"
    audit(generation_chain(record.generation_id), actor, "generation_recorded", {
        "user": record.user, "tenant": record.tenant, "prompt_sha256": record.prompt_sha256,
        "reference_media_ids": list(record.reference_media_ids), "model": record.model,
    })
    marked = mark_output(image, record.generation_id, records=records, banks=banks,
                         signing=dev_signing_material(_home()), audit=audit, settings=settings, actor=actor)
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
