"""`make run` installs the package alone; `make test` adds the test extras (issue 13, item 8).

Read with `make -n` (print, do not run) against a stand-in venv, so nothing is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A directory that looks like a created venv (bin/python newer than pyproject.toml)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").touch()
    return tmp_path


def dry_run(target: str, venv: Path) -> str:
    done = subprocess.run(["make", "-n", target, f"VENV={venv}"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def installs(plan: str) -> list[str]:
    return [line.strip() for line in plan.splitlines() if "pip install" in line]


def test_run_installs_the_package_without_the_test_extras(venv: Path) -> None:
    plan = installs(dry_run("run", venv))
    assert plan and all("[test]" not in line for line in plan), plan
    assert any(line.endswith("pip install --quiet -e .") or "pip install --quiet -e . " in line for line in plan), plan


def test_test_installs_the_test_extras(venv: Path) -> None:
    assert any('-e ".[test]"' in line for line in installs(dry_run("test", venv)))


def test_run_after_a_test_install_installs_nothing_more(venv: Path) -> None:
    stamps = installs(dry_run("test", venv))
    assert stamps
    # What `make test` leaves behind: the test stamp (and the run stamp with it).
    plan = dry_run("venv", venv)
    test_stamp = next(w for w in plan.split() if ".installed-test-" in w)
    Path(test_stamp).touch()
    run_plan = dry_run("run", venv)
    # The run stamp's recipe only touches itself when the test stamp is there: its shell test
    # sees the file, so the lean install never runs in a full venv.
    assert f"[ -e {test_stamp} ]" in run_plan
    done = subprocess.run(["make", "-q", str(test_stamp), f"VENV={venv}"], cwd=REPO, timeout=60)
    assert done.returncode == 0  # the test install is up to date: `make test` installs nothing
