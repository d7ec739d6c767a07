# Two commands for a fresh clone: `make run` (the whole pipeline locally, no cluster, no Docker)
# and `make test` (every test). Both create the virtualenv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: run test venv test-prereqs cluster-tools compile bench clean help

help:
	@echo "make run   - set up and run the whole pipeline locally (kfp.local)"
	@echo "make test  - set up and run every test (starts Docker/SeaweedFS/Prometheus as needed)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/pricecast run

# Machine-level tools the tests use for real (Prometheus, wrk, Docker); see scripts/test-prereqs.sh.
test-prereqs:
	@bash scripts/test-prereqs.sh

# The control plane, kwok, skaffold, kubectl and helm the cluster tests run, built once per pinned
# version into .cache/cluster (tools/cluster/versions.env; without Go the cluster tests skip).
cluster-tools:
	@bash tools/cluster/build.sh

test: $(STAMP) test-prereqs cluster-tools
	$(BIN)/python -m pytest

compile: $(STAMP)
	$(BIN)/pricecast compile

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py

clean:
	rm -rf .pricecast logs .pytest_cache  # .cache/cluster (Go builds) is kept: rm -rf .cache to rebuild
