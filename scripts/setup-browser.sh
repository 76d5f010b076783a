#!/usr/bin/env bash
# The browser the e2e tests drive: Debian's chromium, installed with apt when missing.
# Playwright is told to use this binary (executable_path): it cannot download its own
# browser builds here, and a distribution package is patched by the distribution.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: no apt-get; install chromium and put it on PATH for tests/e2e" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup-browser: not root and no sudo; install chromium yourself (tests/e2e skips without it)" >&2
    exit 0
  fi
  SUDO=(sudo)
fi
echo "setup-browser: apt-get install chromium" >&2
"${SUDO[@]}" apt-get update -qq >/dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
