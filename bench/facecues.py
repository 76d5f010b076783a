"""How well the face-manipulation cues separate synthetic swaps from real faces.

Builds the swaps of ``bench/swaps.py`` (targets x donors x blends x final JPEG quality x
resize) and, for each, its control (the same target through the same re-saves, no swap),
scores the face box of both with ``mediaguard.analysis.facecues.face_cues``, and prints per
cue: ROC AUC (swaps vs controls; 0.5 is chance), the paired win rate (how often a swap
scores above its own control) and the medians, overall and per final quality, blend,
donor kind and resize; the same against a grid of face-sized boxes on eight unswapped
photos (false positives on real content); what one more step after the swap (heavy
JPEG, added noise, halving, blur) does to the AUC; and the time per face at one thread.

    .venv/bin/python -m bench.facecues [--lfw 6] [--json]
"""

from __future__ import annotations

import os

# One core, as on a Lambda: set before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from bench._timing import median_ms  # noqa: E402
from bench.swaps import CONTROL_PHOTOS, control_recipes, jpeg, make, recipes  # noqa: E402
from mediaguard.analysis.facecues import face_cues  # noqa: E402


def roc_auc(pos: list[float], neg: list[float]) -> float:
    """Mann-Whitney: the chance a random swap scores above a random control (ties count half)."""
    p, n = np.asarray(pos, dtype=float), np.asarray(neg, dtype=float)
    p, n = p[np.isfinite(p)], n[np.isfinite(n)]
    if not p.size or not n.size:
        return float("nan")
    ranks = np.argsort(np.argsort(np.concatenate([p, n]), kind="stable"), kind="stable").astype(float)
    # Mid-ranks for ties.
    allv = np.concatenate([p, n])
    for v in np.unique(allv):
        idx = allv == v
        if idx.sum() > 1:
            ranks[idx] = ranks[idx].mean()
    return float((ranks[: p.size].sum() - p.size * (p.size - 1) / 2) / (p.size * n.size))


def measure(lfw: int) -> tuple[list[dict], list[dict]]:
    rows, controls = [], {}
    for r in recipes(donors_per_target=lfw):
        img, box = make(r, swap=True)
        row = {"recipe": r, "swap": face_cues(img, box)}
        key = (r.target, r.box, r.prejpeg, r.scale, r.quality)
        if key not in controls:
            cimg, cbox = make(r, swap=False)
            controls[key] = face_cues(cimg, cbox)
        row["control"] = controls[key]
        rows.append(row)
    extra = [face_cues(*make(r, swap=False)) for r in control_recipes()]
    return rows, list(controls.values()), extra


def summarise(rows: list[dict], controls: list[dict], cue: str) -> dict:
    pos = [r["swap"][cue] for r in rows]
    neg = [c[cue] for c in controls]
    wins = [r["swap"][cue] > r["control"][cue] for r in rows
            if math.isfinite(r["swap"][cue]) and math.isfinite(r["control"][cue])]
    return {"auc": round(roc_auc(pos, neg), 3), "paired_win": round(float(np.mean(wins)), 3) if wins else None,
            "median_swap": round(float(np.nanmedian(pos)), 3), "median_control": round(float(np.nanmedian(neg)), 3),
            "p95_control": round(float(np.nanpercentile(neg, 95)), 3),
            "swaps_above_control_p95": round(float(np.mean(np.asarray(pos) > np.nanpercentile(neg, 95))), 3),
            "n_swaps": len(pos), "n_controls": len(neg)}


EVASIONS = {
    "none": lambda im: im,
    "jpeg_q40": lambda im: jpeg(im, 40),
    "noise_sigma3": lambda im: Image.fromarray(np.clip(np.asarray(im, dtype=np.float32) + np.random.default_rng(0).normal(
        0, 3, (im.height, im.width, 3)), 0, 255).astype(np.uint8)),
    "half_size": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "blur_r1": lambda im: im.filter(ImageFilter.GaussianBlur(1)),
}


def evasion() -> dict:
    """What one more step after the swap does (applied to swap and control alike): AUC of ``score``."""
    out = {}
    rs = [r for r in recipes(donors_per_target=2, qualities=(80,), scales=(1.0,), blends=("feather",))]
    for name, fn in EVASIONS.items():
        pos, neg = [], []
        for r in rs:
            for swap, acc in ((True, pos), (False, neg)):
                img, box = make(r, swap=swap)
                img = fn(img)
                if name == "half_size":
                    box = tuple(v // 2 for v in box)
                acc.append(face_cues(img, box))
        out[name] = {c: round(roc_auc([p[c] for p in pos], [n[c] for n in neg]), 3) for c in pos[0]}
        out[name]["n"] = len(rs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=int, default=6, help="LFW donor faces per target")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows, controls, extra = measure(args.lfw)
    cues = list(rows[0]["swap"])
    report: dict = {"overall": {c: summarise(rows, controls, c) for c in cues},
                    "vs_grid_controls": {c: summarise(rows, extra, c) for c in cues}}
    groups: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        rec = r["recipe"]
        for name, val in (("quality", rec.quality), ("blend", rec.blend), ("donor", rec.donor.split(":")[0]),
                          ("scale", rec.scale), ("target", rec.target)):
            groups[name][str(val)].append(r)
    for name, by in groups.items():
        report[name] = {}
        for val, rs in by.items():
            # Controls of the same subset (same final quality / scale / target) where that applies.
            ctl = {(x["recipe"].target, x["recipe"].box, x["recipe"].scale, x["recipe"].quality): x["control"] for x in rs}
            report[name][val] = {c: summarise(rs, list(ctl.values()), c) for c in cues}

    img, box = make(recipes(donors_per_target=1)[0], swap=True)
    report["ms_per_face"] = round(median_ms(lambda: face_cues(img, box), 50), 2)
    report["face_box"] = box
    # A 300 px face: the astronaut photo upscaled 2.5x (the cost grows with the face's area).
    big = img.resize((img.width * 5 // 2, img.height * 5 // 2), Image.Resampling.BICUBIC)
    big_box = tuple(v * 5 // 2 for v in box)
    report["ms_per_300px_face"] = round(median_ms(lambda: face_cues(big, big_box), 20), 2)
    report["big_face_box"] = big_box
    report["evasion"] = evasion()
    if args.json:
        print(json.dumps(report, indent=1, default=str))
        return
    print(f"{len(rows)} swaps; {len(controls)} paired controls (the swap targets, no swap); "
          f"{len(extra)} grid controls (face-sized boxes across {len(CONTROL_PHOTOS)} photos)")
    print(f"{report['ms_per_face']} ms per face (box {box}), {report['ms_per_300px_face']} ms per face "
          f"(box {report['big_face_box']}), 1 thread")
    for title, key in (("swaps vs paired controls", "overall"), ("swaps vs grid controls", "vs_grid_controls")):
        print(f"\n{title}:\n{'cue':18} {'AUC':>6} {'paired':>7} {'med swap':>9} {'med ctl':>8} {'ctl p95':>8}")
        for c, s in report[key].items():
            print(f"{c:18} {s['auc']:6.3f} {s['paired_win']:7.3f} {s['median_swap']:9.3f} {s['median_control']:8.3f} "
                  f"{s['p95_control']:8.3f}")
    for name in ("quality", "blend", "donor", "scale", "target"):
        print(f"\nAUC by {name}:")
        print(f"{'':18} " + " ".join(f"{v:>10}" for v in report[name]))
        for c in cues:
            print(f"{c:18} " + " ".join(f"{report[name][v][c]['auc']:10.3f}" for v in report[name]))
    n = report["evasion"]["none"]["n"]
    print(f"\nAUC after one more step on swap and control alike ({n} swap/control pairs, q80, feather):")
    print(f"{'':18} " + " ".join(f"{v:>12}" for v in report["evasion"]))
    for c in cues:
        print(f"{c:18} " + " ".join(f"{report['evasion'][v][c]:12.3f}" for v in report["evasion"]))


if __name__ == "__main__":
    main()
