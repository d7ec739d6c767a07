"""The import graph keeps its shape: cli -> pipelines | serving -> components -> pricecast, no stage
imports another, and no two sibling modules import each other.

The rules are import-linter contracts in pyproject.toml ([tool.importlinter]); this test runs them
so that `make test` fails on the first import that breaks one.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONTRACTS = {c["id"]: c for c in PYPROJECT["tool"]["importlinter"]["contracts"]}


def test_every_import_linter_contract_is_kept() -> None:
    # A subprocess from the repository root: import-linter builds the graph from the packages on
    # sys.path, and its cache must not hide a fresh import.
    script = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" KEPT") == len(CONTRACTS) == 3, done.stdout


def test_the_layers_cover_every_installed_package() -> None:
    """A new top-level package must get a place in the layers, or it could import anything."""
    installed = {pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    layered = {name for layer in CONTRACTS["layers"]["layers"] for name in layer.split(" | ")}
    assert layered == installed == set(PYPROJECT["tool"]["importlinter"]["root_packages"])


def test_the_independence_contract_names_every_stage() -> None:
    """A new stage under components/ is held to "a stage never imports another stage" too."""
    stages = {f"components.{d.name}" for d in (ROOT / "components").iterdir() if (d / "component.py").is_file()}
    assert stages == set(CONTRACTS["stages"]["modules"])
