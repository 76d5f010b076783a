"""``mediaguard`` command line: the local pipeline, fingerprints and sanitizing.

The output contract (field names, one JSON object per input per line with
``--json``, exit codes) is documented in the README and kept stable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mediaguard.cli.audit import add_audit_parser, run_audit
from mediaguard.cli.bank import add_bank_parser, run_bank
from mediaguard.cli.geofence import add_geofence_parser, run_geofence
from mediaguard.cli.serve import add_serve_parser
from mediaguard.errors import MediaguardError
from mediaguard.settings import Settings

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class _Out:
    """Results go to the real stdout; everything else the pipeline prints (handler
    logs included, from any thread) is pushed to stderr while the pipeline runs."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self.fd = os.dup(1)

    def line(self, text: str) -> None:
        os.write(self.fd, (text + "\n").encode())

    @contextlib.contextmanager
    def quiet_stdout(self) -> Iterator[None]:
        sys.stdout.flush()
        os.dup2(2, 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(self.fd, 1)


def _progress(i: int, n: int, label: str) -> None:
    if n > 1:
        width = 24
        done = int(width * i / n)
        sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {label[:40]:<40}")
        if i == n:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _declared_type(path: Path) -> str:
    # What a client would declare: the type its file name suggests.
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


# --- scan -----------------------------------------------------------------------


def scan_result(file: str, media_id: str, item: dict[str, Any], states: list[str]) -> dict[str, Any]:
    """The CLI contract's JSON object for one scanned file."""
    status = {"done": "done", "rejected": "rejected"}.get(item.get("status", ""), "failed")
    error = None
    if status != "done":
        error = {"type": item.get("error_type", "Unknown"), "reason": item.get("error_reason", "internal_error"),
                 "message": item.get("error_message", "")}
    # Nothing is served for a rejected or failed upload: "remove" for bad media,
    # "review" (fail closed, a person looks) for an unexpected failure.
    action = item.get("action") or ("remove" if status == "rejected" else "review")
    return {
        "file": file,
        "media_id": media_id,
        "status": status,
        "action": action,
        "risk": float(item.get("risk") or 0.0),
        "signals": item.get("signals") or [],
        "fingerprints": {
            "sha256": item.get("sha256"),
            "pdq": item.get("pdq"),
            "pdq_quality": int(item["pdq_quality"]) if item.get("pdq_quality") is not None else None,
            "phash": item.get("phash"),
        },
        "media_type": item.get("media_type"),
        "frames": _frames_summary(item),
        "matches": [
            {"bank": m["bank"], "ref": m["ref"], "distance": m["distance"], "signal": m["signal"], "kind": m["kind"],
             **({"frames_matched": m["frames_matched"]} if m.get("frames_matched") is not None else {})}
            for m in item.get("matches") or []
        ],
        "metadata_removed": item.get("metadata_removed") or [],
        "provenance": _provenance_summary(item.get("provenance")),
        "policy_version": item.get("policy_version"),
        "error": error,
        "states": states,
    }


def _frames_summary(item: dict[str, Any]) -> dict[str, Any] | None:
    """How many frames were analysed and how they were chosen (a still is one frame)."""
    frames = item.get("frames")
    if frames:
        return {"count": int(frames["count"]), "method": frames["method"], "truncated": bool(frames.get("truncated"))}
    if item.get("media_type") == "image":
        return {"count": 1, "method": "still", "truncated": False}
    return None


def _provenance_summary(provenance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The contract's view of the forensics record (the item keeps the full one)."""
    if not provenance:
        return None
    c2pa = provenance["c2pa"]
    return {
        "c2pa": {key: c2pa.get(key) for key in ("present", "state", "generator", "digital_source_type")},
        "ai_markers": provenance["ai_markers"],
        "watermark": {key: provenance["watermark"].get(key) for key in ("detected", "kind")},
        "ai_generated": provenance["ai_generated"],
        "readers": provenance["readers"],
    }


def run_scan(paths: list[Path], banks: list[str], out: _Out, as_json: bool, log_level: str) -> int:
    from mediaguard.local.runtime import LocalCloud

    results: list[dict[str, Any]] = []
    exit_code = EXIT_OK
    with out.quiet_stdout(), LocalCloud(parameters={"LogLevel": log_level}) as cloud:
        load_banks(cloud, banks)
        for i, path in enumerate(paths, start=1):
            _progress(i - 1, len(paths), path.name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                result = {"file": str(path), "media_id": None, "status": "failed", "action": "review", "risk": 0.0,
                          "signals": [], "fingerprints": {}, "matches": [], "metadata_removed": [],
                          "policy_version": None, "states": [],
                          "error": {"type": type(exc).__name__, "reason": "unreadable", "message": exc.strerror or ""}}
                exit_code = EXIT_SOME_FAILED
            else:
                media_id = cloud.upload(data, _declared_type(path))
                run = cloud.wait(media_id)
                result = scan_result(str(path), media_id, cloud.item(media_id) or {}, run.states)
            results.append(result)
            if as_json:
                out.line(json.dumps(result, sort_keys=False))
            _progress(i, len(paths), path.name)
    if not as_json:
        out.line(render_table(results))
    return exit_code


def load_banks(cloud: Any, banks: list[str]) -> None:
    """Fill the local stack's bank tables from ``NAME[:KIND]=PATH`` specs and publish an index
    build, as the scheduled index function does on AWS (the same handler)."""
    from mediaguard.adapters.banks import dynamo_bank_service
    from mediaguard.analysis.banks.sources import load_entries, parse_bank_spec
    from mediaguard.analysis.banks.validation import content_ref
    from mediaguard.analysis.featurize import media_featurizer

    specs = [parse_bank_spec(b) for b in banks]
    if not specs:
        return
    settings = cloud.deps().settings
    service = dynamo_bank_service(settings)
    featurizer = media_featurizer(settings)
    for name, kind, source in specs:
        service.create_bank(name, kind, actor="cli:scan")
        if source.is_dir():
            count = 0
            for file in sorted(p for p in source.iterdir() if p.is_file()):
                try:
                    data = file.read_bytes()
                    count += service.add_media(name, content_ref(data), data, actor="cli:scan",
                                               declared=_declared_type(file), featurizer=featurizer).added
                except MediaguardError:
                    sys.stderr.write(f"bank {name}: skipped {file.name} (not usable media)\n")
        else:
            count = service.add_entries(name, load_entries(source, settings), actor="cli:scan").added
        sys.stderr.write(f"bank {name} ({kind}): {count} entries\n")
    cloud.invoke("IndexBuildFunction", {"source": "mediaguard.cli", "detail-type": "Scheduled Event", "detail": {}})


def render_table(results: list[dict[str, Any]]) -> str:
    rows = [("file", "status", "action", "risk", "top signal", "match")]
    for r in results:
        top = max(r["signals"], key=lambda s: s["contribution"], default=None)
        top_text = f"{top['name']}={top['value']:.3g} (+{top['contribution']:.2f})" if top else (
            (r["error"] or {}).get("reason", "-"))
        match = r["matches"][0] if r["matches"] else None
        match_text = f"{match['bank']}:{match['ref']} d={match['distance']}" if match else "-"
        rows.append((Path(r["file"]).name, r["status"], r["action"], f"{r['risk']:.2f}", top_text, match_text))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- hash / sanitize --------------------------------------------------------------


def run_hash(paths: list[Path], out: _Out, as_json: bool) -> int:
    from mediaguard.ingress.ingest import prepare

    exit_code = EXIT_OK
    settings = Settings()
    for i, path in enumerate(paths, start=1):
        _progress(i - 1, len(paths), path.name)
        record: dict[str, Any] = {"file": str(path)}
        try:
            prepared = prepare(path.read_bytes(), _declared_type(path), settings)
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
        _progress(i, len(paths), path.name)
    return exit_code


def run_sanitize(src: Path, dst: Path, out: _Out) -> int:
    from mediaguard.ingress.ingest import prepare

    try:
        prepared = prepare(src.read_bytes(), _declared_type(src), Settings())
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
    add_serve_parser(sub)

    sub.add_parser("demo", help="scan the bundled sample set against a demo bank and print a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = _Out()
    started = time.perf_counter()
    try:
        if args.command == "scan":
            code = run_scan(args.paths, args.bank, out, args.json, "INFO" if args.verbose else "WARNING")
        elif args.command == "hash":
            code = run_hash(args.paths, out, args.json)
        elif args.command == "sanitize":
            code = run_sanitize(args.src, args.dst, out)
        elif args.command == "geofence":
            code = run_geofence(args, out)
        elif args.command == "serve":
            from mediaguard.cli.serve import run_serve

            code = run_serve(args, out)
        elif args.command == "audit":
            code = run_audit(args, out)
        elif args.command == "bank":
            from mediaguard.analysis.featurize import media_featurizer

            code = run_bank(args, out, featurizer=media_featurizer())
        else:
            from mediaguard.cli.demo import run_demo

            code = run_demo(out)
    except ValueError as exc:  # bad arguments, e.g. a malformed --bank
        sys.stderr.write(f"mediaguard: {exc}\n")
        return EXIT_USAGE
    sys.stderr.write(f"mediaguard {args.command}: {time.perf_counter() - started:.1f}s\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
