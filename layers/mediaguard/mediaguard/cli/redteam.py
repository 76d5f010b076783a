"""``mediaguard redteam``: every evasion transform of ``analysis.transforms`` applied to
banked media, each copy run through the same local pipeline as ``mediaguard scan``;
one line per transform says how many copies still matched their banked original.

Without ``--bank`` the inputs themselves are banked (block bank ``redteam``) and a
copy counts as matched when it matches its own input's entry. With ``--bank`` the
banks are built as ``scan --bank`` builds them, each input is first scanned as it is,
and its copies count as matched when they match an entry the untouched input matched.
An input that matches nothing untouched cannot be red-teamed and is left out (stderr).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaguard.cli.scan import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    Out,
    declared_type,
    load_banks,
    progress,
    scan_result,
)
from mediaguard.errors import MediaguardError

DEFAULT_BANK = "redteam"
# The AI-image detector's signal and decision point. 0.5 is the linear probe's own
# (sigmoid) boundary; when the detector publishes a calibrated threshold, use it here.
AIGEN_SIGNAL = "classifier.aigen.ai"
AIGEN_THRESHOLD = 0.5
# Signals whose distance is a PDQ Hamming distance (vpdq: the median over matched frames).
PDQ_SIGNALS = ("pdq", "pdq_dihedral", "vpdq")
# A transform under which fewer than half the copies still match is a gap to close.
GAP_BELOW = 0.5
# Other pictures for the collage when only one image is red-teamed (scikit-image's
# bundled photos, as the demo uses; seeded colour fields if it is not installed).
_NEIGHBOUR_PHOTOS = ("coffee", "rocket", "chelsea")
_MAX_NEIGHBOURS = 3


@dataclass
class Subject:
    """One input: its bytes, which transforms apply, and the bank entries it stands for."""

    path: Path
    data: bytes
    media: str
    targets: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class Outcome:
    """What the pipeline made of one transformed copy."""

    matched: bool
    signal: str | None  # the signal of the closest match to a target
    distance: int | None  # its PDQ distance (None for an embedding-only match)
    ai: bool | None  # None: the AI-image signal is absent
    faces: bool | None  # None: the result carries no face detection
    status: str


def outcome(result: dict[str, Any], targets: set[tuple[str, str]]) -> Outcome:
    """Judge one ``scan`` result against the bank entries its original stands for."""
    hits = [m for m in result["matches"] if (m["bank"], m["ref"]) in targets]
    pdq = [m for m in hits if m["signal"] in PDQ_SIGNALS]
    best = min(pdq, key=lambda m: m["distance"]) if pdq else (hits[0] if hits else None)
    ai = next((s["value"] >= AIGEN_THRESHOLD for s in result["signals"] if s["name"] == AIGEN_SIGNAL), None)
    faces = result.get("faces")
    return Outcome(matched=bool(hits), signal=best["signal"] if best else None,
                   distance=int(best["distance"]) if pdq else None, ai=ai,
                   faces=(int(faces.get("count") or 0) > 0) if isinstance(faces, dict) else None,
                   status=result["status"])


def _share(values: list[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 3) if known else None


def transform_line(name: str, outcomes: list[Outcome]) -> dict[str, Any]:
    """The contract line for one transform: ``{transform, n, matched, match_rate,
    mean_distance, detected_ai, detected_faces}``."""
    matched = sum(o.matched for o in outcomes)
    distances = [o.distance for o in outcomes if o.matched and o.distance is not None]
    return {
        "transform": name,
        "n": len(outcomes),
        "matched": matched,
        "match_rate": round(matched / len(outcomes), 3) if outcomes else None,
        "mean_distance": round(statistics.fmean(distances), 1) if distances else None,
        "detected_ai": _share([o.ai for o in outcomes]),
        "detected_faces": _share([o.faces for o in outcomes]),
    }


def summary_line(inputs: int, unbanked: int, lines: list[dict[str, Any]]) -> dict[str, Any]:
    copies = sum(line["n"] for line in lines)
    matched = sum(line["matched"] for line in lines)
    return {"summary": True, "inputs": inputs, "unbanked": unbanked, "transforms": len(lines), "copies": copies,
            "match_rate": round(matched / copies, 3) if copies else None,
            "gaps": [line["transform"] for line in lines if line["match_rate"] is not None
                     and line["match_rate"] < GAP_BELOW]}


def add_redteam_parser(sub: Any) -> None:
    p = sub.add_parser("redteam", help="apply the evasion transforms to banked media and report what still matches")
    p.add_argument("--json", action="store_true", help="one JSON line per transform, then a summary line")
    p.add_argument("--bank", action="append", default=[], metavar="NAME[:KIND]=PATH",
                   help="banks as for scan --bank (default: bank the inputs themselves as block bank 'redteam')")
    p.add_argument("paths", nargs="+", type=Path)


def run_redteam(args: argparse.Namespace, out: Out, transforms: list[str] | None = None) -> int:
    """``transforms`` narrows the catalogue (tests); the command runs all of it."""
    from mediaguard.analysis.transforms import CATALOGUE, media_of
    from mediaguard.local.runtime import LocalCloud

    exit_code = EXIT_OK
    subjects: list[Subject] = []
    for path in args.paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            sys.stderr.write(f"redteam: cannot read {path}: {exc.strerror}\n")
            exit_code = EXIT_SOME_FAILED
            continue
        subjects.append(Subject(path, data, media_of(data)))
    catalogue = [CATALOGUE[name] for name in transforms] if transforms else list(CATALOGUE.values())
    outcomes: dict[str, list[Outcome]] = {t.name: [] for t in catalogue}

    with out.quiet_stdout(), LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud, \
            tempfile.TemporaryDirectory(prefix="mediaguard-redteam-") as tmp:
        _bank(cloud, subjects, args.bank, Path(tmp))

        def scan(data: bytes, content_type: str, label: str) -> dict[str, Any]:
            media_id = cloud.upload(data, content_type)
            run = cloud.wait(media_id)
            return scan_result(label, media_id, cloud.item(media_id) or {}, run.states)

        # The untouched input first: with --bank it names the entries its copies must match.
        for subject in subjects:
            baseline = scan(subject.data, declared_type(subject.path), str(subject.path))
            matched = {(m["bank"], m["ref"]) for m in baseline["matches"]}
            subject.targets = (subject.targets & matched) if not args.bank else matched
            if not subject.targets:
                sys.stderr.write(f"redteam: {subject.path} matches no bank entry as it is; left out\n")
        usable = [s for s in subjects if s.targets]
        jobs = [(s, t) for s in usable for t in catalogue if t.media == s.media]
        neighbours = _neighbours(usable)
        for i, (subject, transform) in enumerate(jobs):
            progress(i, len(jobs), transform.name)
            copy = _make_copy(transform, subject, neighbours)
            if copy is not None:
                result = scan(copy.data, copy.content_type, f"{subject.path}#{transform.name}")
                if result["status"] != "done":
                    sys.stderr.write(f"redteam: {transform.name} of {subject.path}: {result['status']} "
                                     f"({(result['error'] or {}).get('reason')})\n")
                outcomes[transform.name].append(outcome(result, subject.targets))
            progress(i + 1, len(jobs), transform.name)

    lines = [transform_line(name, outs) for name, outs in outcomes.items() if outs]
    summary = summary_line(len(usable), len(subjects) - len(usable), lines)
    if args.json:
        for line in lines:
            out.line(json.dumps(line))
        out.line(json.dumps(summary))
    else:
        out.line(render_table(lines, outcomes, summary))
    return exit_code if usable else EXIT_SOME_FAILED


def _bank(cloud: Any, subjects: list[Subject], banks: list[str], tmp: Path) -> None:
    """Build the named banks, or bank the inputs themselves (each under its content ref,
    which is how ``load_banks`` names media from a folder)."""
    if banks:
        load_banks(cloud, banks)
        return
    from mediaguard.analysis.banks.validation import content_ref

    folder = tmp / "bank"
    folder.mkdir()
    for n, subject in enumerate(subjects):
        (folder / f"{n:04d}{subject.path.suffix}").write_bytes(subject.data)
        subject.targets = {(DEFAULT_BANK, content_ref(subject.data))}
    load_banks(cloud, [f"{DEFAULT_BANK}:block={folder}"])


def _neighbours(subjects: list[Subject]) -> dict[int, list[Any]]:
    """For each image input, the pictures a collage puts beside it: the other image
    inputs, else scikit-image's bundled photos when installed (else none: seeded fields)."""
    from mediaguard.analysis.transforms import decode

    pictures = []
    for s in subjects:
        if s.media == "image":
            try:
                pictures.append((id(s), decode(s.data)))
            except MediaguardError:
                continue
    if len(pictures) < 2:
        try:
            from PIL import Image
            from skimage import data as skdata

            pictures += [(-n - 1, Image.fromarray(getattr(skdata, name)()).convert("RGB"))
                         for n, name in enumerate(_NEIGHBOUR_PHOTOS)]
        except ImportError:
            pass
    return {id(s): [img for key, img in pictures if key != id(s)][:_MAX_NEIGHBOURS] for s in subjects}


def _make_copy(transform: Any, subject: Subject, neighbours: dict[int, list[Any]]) -> Any:
    from mediaguard.analysis.transforms import apply

    try:
        return apply(transform, subject.data, others=neighbours.get(id(subject), []))
    except (MediaguardError, OSError, subprocess.SubprocessError) as exc:
        sys.stderr.write(f"redteam: {transform.name} of {subject.path} not made: {type(exc).__name__}\n")
        return None


def render_table(lines: list[dict[str, Any]], outcomes: dict[str, list[Outcome]], summary: dict[str, Any]) -> str:
    def fmt(value: float | None, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    rows = [("transform", "n", "matched", "rate", "mean d", "ai", "faces", "closest match by")]
    for line in lines:
        via = Counter(o.signal for o in outcomes[line["transform"]] if o.matched)
        rows.append((line["transform"], str(line["n"]), str(line["matched"]), fmt(line["match_rate"], "{:.2f}"),
                     fmt(line["mean_distance"], "{:.1f}"), fmt(line["detected_ai"], "{:.2f}"),
                     fmt(line["detected_faces"], "{:.2f}"), " ".join(f"{k}:{v}" for k, v in sorted(via.items()))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    text = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append(f"\n{summary['inputs']} inputs ({summary['unbanked']} left out), {summary['transforms']} transforms, "
                f"{summary['copies']} copies, match rate {fmt(summary['match_rate'], '{:.2f}')}; "
                f"gaps (< {GAP_BELOW:.0%} matched): {', '.join(summary['gaps']) or 'none'}")
    return "\n".join(text)
