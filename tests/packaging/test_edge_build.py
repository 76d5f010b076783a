"""`sam build` of edge/template.yaml: the packages fit Lambda@Edge's limits, carry the
baked-in config, and the origin package runs on its own (no layer, no site-packages)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SAM = REPO / ".tools" / "sam" / "bin" / "sam"
VIEWER_ZIPPED_LIMIT = 1 * 1024 * 1024  # viewer triggers
ORIGIN_ZIPPED_LIMIT = 50 * 1024 * 1024  # origin triggers
BAKED = {"GEOFENCE_TABLE": "prod-geofence", "GEOFENCE_REGION": "eu-west-1"}


@pytest.fixture(scope="module")
def edge_build(tmp_path_factory) -> Path:
    assert SAM.exists(), "the SAM CLI is installed by `make setup` (scripts/setup.sh)"
    out = tmp_path_factory.mktemp("edge-build")
    env = {**os.environ, **BAKED, "SAM_CLI_TELEMETRY": "0",
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(SAM), "build", "--template", str(REPO / "edge" / "template.yaml"), "--build-dir", str(out),
         "--cache-dir", str(out / ".cache")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def zipped_size(folder: Path, tmp_path: Path) -> int:
    """Size of the deployment zip as `sam package` would upload it (deflate)."""
    archive = tmp_path / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder))
    return archive.stat().st_size


@pytest.mark.slow
def test_packages_fit_the_lambda_at_edge_limits(edge_build, tmp_path):
    viewer = zipped_size(edge_build / "ViewerRequestFunction", tmp_path)
    origin = zipped_size(edge_build / "OriginRequestFunction", tmp_path)
    print({"viewer_zipped_kb": round(viewer / 1024, 1), "origin_zipped_mb": round(origin / 2**20, 1)})
    assert viewer <= VIEWER_ZIPPED_LIMIT
    assert origin <= ORIGIN_ZIPPED_LIMIT


@pytest.mark.slow
def test_viewer_package_is_stdlib_plus_runtime_boto3_with_baked_config(edge_build):
    folder = edge_build / "ViewerRequestFunction"
    assert sorted(p.name for p in folder.iterdir()) == ["app.py", "edge_config.json"]
    config = json.loads((folder / "edge_config.json").read_text())
    assert (config["table"], config["region"]) == (BAKED["GEOFENCE_TABLE"], BAKED["GEOFENCE_REGION"])
    imported = set()
    for node in ast.walk(ast.parse((folder / "app.py").read_text())):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) <= {"boto3"}


@pytest.mark.slow
def test_origin_package_runs_the_sample_on_its_own(edge_build):
    # -S: no site-packages, so only what the package carries can be imported.
    folder = edge_build / "OriginRequestFunction"
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import app, mediaguard, numpy; "
        "assert mediaguard.__file__.startswith(sys.argv[1]) and numpy.__file__.startswith(sys.argv[1]); "
        "event = json.load(open(sys.argv[2])); request = app.handler(event, None); "
        "print(json.dumps({k: v[0]['value'] for k, v in request['headers'].items() if 'mediaguard' in k}))"
    )
    sample = REPO / "events" / "edge-origin-request.json"
    result = subprocess.run([sys.executable, "-S", "-c", script, str(folder), str(sample)],
                            capture_output=True, text=True, timeout=120, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    headers = json.loads(result.stdout.strip().splitlines()[-1])
    assert headers["x-amz-meta-mediaguard-edge"] == "sanitized"
    assert len(headers["x-amz-meta-mediaguard-pdq"]) == 64
    assert not (folder / "mediaguard" / "local").exists()  # the moto runtime stays out
