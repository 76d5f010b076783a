# Every target sets itself up first, so `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SAM := .tools/sam/bin/sam
# sam build (no container) needs python3.12 on PATH: the venv's own comes first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: setup demo test lint build build-edge bench clean checkov

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/bin/mediaguard demo

# The whole suite: ruff, sam validate --lint, ASL parse, unit + functional + contract
# tests, and a real `sam build` with the package-size check (tests/packaging; pytest never collects a folder named build).
test: setup lint
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(SAM) validate --lint --template template.yaml
	$(PY) -m mediaguard.local.check

build: setup
	$(SAM) build --template template.yaml --parallel

# Lambda@Edge lives in its own stack in us-east-1 (edge/README.md).
build-edge: setup
	$(SAM) build --template edge/template.yaml --build-dir .aws-sam/edge

# Security scan of both templates (scripts/checkov.sh installs checkov into .tools/checkov).
# Not part of `make test`: it needs the package index once, and its findings are reviewed
# in README.md ("checkov"), not gated per test run.
checkov:
	@scripts/checkov.sh

bench: setup
	$(PY) -m bench.pipeline
	$(PY) -m bench.ingest
	$(PY) -m bench.frames
	$(PY) -m bench.classify
	$(PY) -m bench.embedding
	$(PY) -m bench.index --sizes 1M

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache
