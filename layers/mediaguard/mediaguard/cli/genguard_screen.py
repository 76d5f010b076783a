"""``mediaguard genguard screen``: decide a generation request from the command line.

``genguard screen [--json] --user U --prompt TEXT [--reference IMAGE]...`` decides a request
exactly as ``POST /v1/generations`` does (same quota arithmetic, rules and record), except
that references are local files: the face detector (CenterFace) and open_nsfw run on each
file here, where the API reads what the pipeline stored for an uploaded media id. Quotas,
records and audit chains live in memory for the one request (``mediaguard serve`` exposes
the route with the local stack's tables).

Output (``--json``, one object): ``{allowed, reasons, matched, generation_id, quota,
references, signals}``; ``generation_id`` is null when refused. Exit codes: 0 allowed,
1 refused, 2 bad arguments or an unreadable reference.

``mediaguard.cli.genguard`` registers it in the ``genguard`` group (:func:`add_screen_parser`)
and dispatches to :func:`run_screen`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

# Only argparse at import time: ``mediaguard`` builds this parser for every command.
if TYPE_CHECKING:
    from mediaguard.genguard.records import GenerationLedger
    from mediaguard.genguard.screen import ReferenceEvidence

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class Out(Protocol):
    def line(self, text: str) -> None: ...


def add_screen_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``screen`` to the ``genguard`` group's subparsers."""
    screen = commands.add_parser("screen", help="decide whether a generation request may run")
    screen.add_argument("--json", action="store_true", help="one JSON object on stdout")
    screen.add_argument("--user", required=True, help="the platform's id of the user asking")
    screen.add_argument("--tenant", default="local", help="the tenant the request is billed to (default: local)")
    screen.add_argument("--prompt", required=True, help="the prompt, as the user wrote it")
    screen.add_argument("--reference", action="append", default=[], type=Path, metavar="IMAGE",
                        help="a reference image the request edits or draws on; repeatable")
    screen.add_argument("--model", help="the generator the request is for (recorded)")
    return screen


def reference_from_file(path: Path, threads: int = 1) -> ReferenceEvidence:
    """Faces (CenterFace at the detect stage's size) and the open_nsfw score of one image file."""
    from mediaguard.analysis.classify import OPEN_NSFW_ID, decode_for_models, open_nsfw
    from mediaguard.analysis.faces import MAX_SIDE, face_detector
    from mediaguard.genguard.screen import ReferenceEvidence
    from mediaguard.ingress.media import load_rgb, open_image
    from mediaguard.settings import Settings

    data = path.read_bytes()
    settings = Settings()
    faces = face_detector(threads).detect(load_rgb(open_image(data, settings.max_pixels), min_side=MAX_SIDE))
    nsfw = open_nsfw(threads).classify_batch([decode_for_models(data, settings.max_pixels)])[0]
    return ReferenceEvidence(ref=path.name, faces=len(faces), nsfw=nsfw.scores[f"{OPEN_NSFW_ID}.nsfw"],
                             source="local")


class UsageError(Exception):
    """Bad arguments or an unreadable reference: exit 2, with this message on stderr."""


def screen_request(args: argparse.Namespace, ledger: GenerationLedger, actor: str = "cli") -> dict[str, Any]:
    """Decide the request in ``args`` (``user``, ``tenant``, ``prompt``, ``reference``, ``model``)
    exactly as ``POST /v1/generations`` does; an allowed request is recorded in ``ledger``, a
    refusal is appended to the user's refusal chain there. Returns the ``--json`` object of
    ``screen``; raises :class:`UsageError`. ``genguard mark`` screens through this too."""
    from pydantic import ValidationError

    from mediaguard.errors import MediaguardError
    from mediaguard.genguard.config import get_genguard_settings
    from mediaguard.genguard.quota import InMemoryQuotaStore
    from mediaguard.genguard.service import (
        GenerationRefusedError,
        GenerationRequest,
        GenGuard,
        RateLimitedError,
        request_generation,
    )

    settings = get_genguard_settings()
    try:
        evidence = [reference_from_file(p) for p in args.reference]
    except (OSError, MediaguardError) as exc:
        raise UsageError(f"unreadable reference ({getattr(exc, 'reason', type(exc).__name__)})") from exc
    # Reference "ids" are the files' positions here, media-id shaped for the request model.
    by_id = {f"ref{i}": e for i, e in enumerate(evidence)}
    try:
        request = GenerationRequest(user=args.user, prompt=args.prompt, model=args.model,
                                    reference_media_ids=list(by_id))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{first['loc'][0]}: {first['msg']}") from None
    scorer = None
    if settings.text_models_config:
        from mediaguard.genguard.textmodel import text_scorer

        scorer = text_scorer(settings.text_models_config)
    guard = GenGuard(settings=settings, quota=InMemoryQuotaStore(), ledger=ledger,
                     references=by_id.__getitem__, text_scorer=scorer,
                     uploader_of=lambda _: args.user)  # files the user gave this command
    result: dict[str, Any] = {"allowed": False, "reasons": [], "matched": [], "generation_id": None, "quota": None,
                              "references": [{"file": str(p), "faces": e.faces, "nsfw": round(e.nsfw or 0.0, 4)}
                                             for p, e in zip(args.reference, evidence, strict=True)]}
    try:
        allowed = request_generation(request, args.tenant, actor, guard)
        result.update(allowed=True, generation_id=allowed.generation_id, quota=allowed.quota)
    except GenerationRefusedError as refused:
        result.update(reasons=refused.verdict.reasons, matched=refused.verdict.matched)
    except RateLimitedError as limited:
        result.update(reasons=["rate_limited"], quota=limited.quota)
    return result


def run_screen(args: argparse.Namespace, out: Out) -> int:
    from mediaguard.audit.memory import InMemoryAudit
    from mediaguard.genguard.records import GenerationLedger, InMemoryGenerationStore

    try:
        result = screen_request(args, GenerationLedger(InMemoryGenerationStore(), InMemoryAudit()))
    except UsageError as exc:
        sys.stderr.write(f"mediaguard genguard: {exc}\n")
        return EXIT_USAGE
    if args.json:
        out.line(json.dumps(result))
    elif result["allowed"]:
        out.line(f"allowed\tgeneration_id={result['generation_id']}")
    else:
        out.line(refused_line(result))
    return EXIT_OK if result["allowed"] else EXIT_REFUSED


def refused_line(result: dict[str, Any]) -> str:
    """The plain-text line of a refusal (``screen`` and ``mark``)."""
    return f"refused\treasons={','.join(result['reasons'])}"
