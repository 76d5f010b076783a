"""Import time of every Lambda handler in a fresh interpreter, against ``import boto3`` alone.

A Lambda cold start pays for every module its handler imports. Each figure is the median
of ``--runs`` fresh interpreters importing one handler module (``functions/<name>/app.py``)
with the package on the path, as on Lambda; the baseline, measured in the same run, is an
interpreter that only imports boto3 (which the runtime ships and every stage needs).
Bytecode caches are warmed first, so both sides compare imports, not compilation
(the layer ships precompiled bytecode: layers/mediaguard/Makefile).

    python -m bench.coldstart [--runs 7] [--repo PATH] [--json]

``--repo`` points at another checkout (e.g. an older commit in a git worktree) so a
before/after comparison runs on the same machine in the same session.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("PIL", "numpy", "onnxruntime")

_PROBE = """
import sys, time
t0 = time.perf_counter()
{body}
ms = (time.perf_counter() - t0) * 1000
import json
print(json.dumps({{"ms": ms, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def _handler_body(app: Path) -> str:
    return ("import importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('app', {str(app)!r})\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)")


def measure(body: str, repo: Path, runs: int) -> tuple[float, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(repo / "layers" / "mediaguard"), "POWERTOOLS_SERVICE_NAME": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}
    code = _PROBE.format(body=body, heavy=HEAVY)
    samples, heavy = [], []
    for _ in range(runs + 1):  # the first run warms bytecode caches and is dropped
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=repo,
                             timeout=120, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        samples.append(result["ms"])
        heavy = result["heavy"]
    return statistics.median(samples[1:]), heavy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to measure (default: this one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    baseline, _ = measure("import boto3", repo, args.runs)
    rows = []
    for app in sorted((repo / "functions").glob("*/app.py")):
        ms, heavy = measure(_handler_body(app), repo, args.runs)
        rows.append({"function": app.parent.name, "import_ms": round(ms, 1), "vs_boto3": round(ms / baseline, 2),
                     "heavy": heavy})
    if args.json:
        print(json.dumps({"boto3_ms": round(baseline, 1), "functions": rows}))
        return 0
    print(f"import boto3 alone: {baseline:.1f} ms (median of {args.runs})")
    print(f"{'function':<12} {'import ms':>10} {'x boto3':>8}  heavy modules loaded")
    for row in rows:
        print(f"{row['function']:<12} {row['import_ms']:>10.1f} {row['vs_boto3']:>8.2f}  {', '.join(row['heavy']) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
