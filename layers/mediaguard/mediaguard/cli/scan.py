"""``mediaguard scan``: files through the local stack (the real template and state machine),
one result per file; also what ``mediaguard demo`` runs."""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mediaguard.errors import MediaguardError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class Out:
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


def progress(i: int, n: int, label: str) -> None:
    if n > 1:
        width = 24
        done = int(width * i / n)
        sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {label[:40]:<40}")
        if i == n:
            sys.stderr.write("\n")
        sys.stderr.flush()


def declared_type(path: Path) -> str:
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
        "audio": _audio_summary(item),
        "matches": [
            {"bank": m["bank"], "ref": m["ref"], "distance": m["distance"], "signal": m["signal"], "kind": m["kind"],
             **({"frames_matched": m["frames_matched"]} if m.get("frames_matched") is not None else {})}
            for m in item.get("matches") or []
        ],
        "metadata_removed": item.get("metadata_removed") or [],
        "provenance": _provenance_summary(item.get("provenance")),
        "faces": _faces_summary(item.get("faces")),
        "policy_version": item.get("policy_version"),
        "error": error,
        "states": states,
    }


def _audio_summary(item: dict[str, Any]) -> dict[str, Any]:
    """``{present, codec, duration_s, fingerprint_kind}`` of the first audio track. Media
    without one (a still, a silent or rejected video) says ``present: false`` with the other
    fields null, so the object always has the same keys."""
    audio = item.get("audio") or {}
    return {"present": bool(audio.get("present")), "codec": audio.get("codec"),
            "duration_s": audio.get("duration_s"), "fingerprint_kind": audio.get("fingerprint_kind")}


def _frames_summary(item: dict[str, Any]) -> dict[str, Any] | None:
    """How many frames were analysed and how they were chosen (a still is one frame)."""
    frames = item.get("frames")
    if frames:
        return {"count": int(frames["count"]), "method": frames["method"], "truncated": bool(frames.get("truncated"))}
    if item.get("media_type") == "image":
        return {"count": 1, "method": "still", "truncated": False}
    return None


def _faces_summary(faces: dict[str, Any] | None) -> dict[str, Any] | None:
    """Faces of the analysed frame with the most (a still has one frame): boxes are
    ``[x, y, w, h, score]`` in pixels of that frame (the sanitized image for a still)."""
    if not faces:
        return None
    return {"count": int(faces["count"]), "model": faces.get("model"),
            "boxes": [[float(v) for v in box] for box in faces.get("boxes") or []]}


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


def scan_file(cloud: Any, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """One file through ``cloud`` (a ``LocalCloud``) as a client uploads it: the contract's
    result and the media item it left (``scan`` and ``eval`` share this). An unreadable
    file is a ``failed`` result with no media id."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        # Every key of the contract, as for any failed upload (nulls, audio absent): a
        # consumer reading the JSON never meets a missing field.
        return scan_result(str(path), None, {"status": "failed", "error_type": type(exc).__name__,
                                             "error_reason": "unreadable", "error_message": exc.strerror or ""}, []), {}
    media_id = cloud.upload(data, declared_type(path))
    run = cloud.wait(media_id)
    item = cloud.item(media_id) or {}
    return scan_result(str(path), media_id, item, run.states), item


def run_scan(paths: list[Path], banks: list[str], out: Out, as_json: bool, log_level: str,
             jobs: int | None = None) -> int:
    """Scan ``paths`` through one local stack, ``jobs`` files at a time (default: one per
    core), printing each result in input order as soon as it and those before it are done."""
    from concurrent.futures import ThreadPoolExecutor

    from mediaguard.local.runtime import LocalCloud

    results: list[dict[str, Any]] = []
    exit_code = EXIT_OK
    jobs = max(1, jobs or os.cpu_count() or 1)
    with out.quiet_stdout(), LocalCloud(parameters={"LogLevel": log_level}) as cloud:
        load_banks(cloud, banks)
        # Threads, not processes: every upload must go through the one moto stack (its
        # buckets, tables, banks and state machine). Handlers mostly wait on C code that
        # releases the GIL (decoders, onnxruntime, hashing), so threads do overlap.
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="scan") as pool:
            pending = [pool.submit(scan_file, cloud, path) for path in paths]
            progress(0, len(paths), paths[0].name if paths else "")
            for i, (path, future) in enumerate(zip(paths, pending, strict=True), start=1):
                try:
                    result, _ = future.result()
                except BaseException:  # an unexpected error or Ctrl-C: files not started stay unscanned
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                if result["media_id"] is None:
                    exit_code = EXIT_SOME_FAILED
                results.append(result)
                if as_json:
                    out.line(json.dumps(result, sort_keys=False))
                progress(i, len(paths), path.name)
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
                                               declared=declared_type(file), featurizer=featurizer).added
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
