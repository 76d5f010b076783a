"""``mediaguard upload [--json] --api URL --token T FILE...``: the Python client
(:mod:`mediaguard.client`) from the command line, against ``mediaguard serve`` or a stack.

One JSON object per file per line with ``--json``: ``{file, media_id, status, action,
refused, reason}``; a progress bar on stderr. Exit 0 when every file was uploaded (and,
unless ``--no-wait``, decided), 1 when one was refused or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mediaguard.cli.scan import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, Out

TOKEN_ENV = "MEDIAGUARD_UPLOAD_TOKEN"  # noqa: S105 - the name of a variable, not a token


def add_upload_parser(sub: Any) -> None:
    upload = sub.add_parser("upload", help="hash and strip locally, then upload through the upload API (presigned POST)")
    upload.add_argument("--json", action="store_true", help="one JSON object per file per line on stdout")
    upload.add_argument("--api", required=True, help="the upload API base URL (mediaguard serve: http://127.0.0.1:8080/api)")
    upload.add_argument("--token", default=None,
                        help=f"uploader bearer token (default: ${TOKEN_ENV}, which keeps it out of shell history)")
    upload.add_argument("--reach", type=int, default=None, help="the uploader's audience size, declared with each file")
    upload.add_argument("--no-wait", action="store_true", help="do not wait for the decision (status 'uploaded')")
    upload.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each decision (default 120)")
    upload.add_argument("paths", nargs="+", type=Path)


class _Bar:
    """One line on stderr per file: bytes sent, then the status the pipeline reports."""

    def __init__(self, index: int, count: int, name: str) -> None:
        self.prefix = f"[{index}/{count}] {name[:40]}"

    def __call__(self, event: dict[str, Any]) -> None:
        phase = event.get("phase")
        if phase == "upload":
            width, share = 24, event["loaded"] / max(1, event["total"])
            sys.stderr.write(f"\r{self.prefix} [{'#' * int(width * share):<{width}}] {share:4.0%}")
        elif phase == "status":
            sys.stderr.write(f"\r{self.prefix} {event.get('status', ''):<32}")
        elif phase == "retry":
            sys.stderr.write(f"\r{self.prefix} retry {event['attempt']}{' ' * 24}")
        sys.stderr.flush()

    def end(self, text: str) -> None:
        sys.stderr.write(f"\r{self.prefix} {text:<32}\n")


def run_upload(args: argparse.Namespace, out: Out) -> int:
    from mediaguard.client import UploadClient, UploadError, UploadResult

    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        sys.stderr.write(f"mediaguard upload: --token or ${TOKEN_ENV} is required\n")
        return EXIT_USAGE
    client = UploadClient(args.api, token)
    code = EXIT_OK
    for i, path in enumerate(args.paths, start=1):
        bar = _Bar(i, len(args.paths), path.name)
        try:
            result = client.upload(path, reach=args.reach, follow=not args.no_wait, timeout=args.timeout,
                                   on_progress=bar)
        except (UploadError, OSError) as exc:
            reason = getattr(exc, "reason", None) or ("unreadable" if isinstance(exc, OSError) else "upload_failed")
            result = UploadResult(str(path), getattr(exc, "media_id", None), "error", reason=reason)
        bar.end(result.status if not result.refused else f"refused ({result.reason})")
        if result.status != ("uploaded" if args.no_wait else "done"):
            code = EXIT_SOME_FAILED
        record = result.as_json()
        if args.json:
            out.line(json.dumps(record))
        else:
            out.line("\t".join(str(record[k]) for k in ("file", "media_id", "status", "action", "reason")))
    return code
