"""``pricecast serve``: options become settings, bad ones a clean error, metrics dirs are prepared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.serve import MULTIPROC_ENV, _prepare_multiprocess_dir
from tests.support.server import REPO


def _forget_multiproc_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the variable so that whatever the code under test sets is undone after the test."""
    monkeypatch.setenv(MULTIPROC_ENV, "recorded")  # records the previous state for the undo
    monkeypatch.delenv(MULTIPROC_ENV)


def test_an_invalid_option_is_a_clean_error_with_what_to_do() -> None:
    run = subprocess.run([sys.executable, "-m", "cli.serve", "serve", "--track", "blue"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 2
    assert "Invalid server setting track" in run.stderr and "what to do" in run.stderr
    assert "Traceback" not in run.stderr


def test_one_worker_keeps_metrics_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_multiproc_dir(monkeypatch)
    assert _prepare_multiprocess_dir(1) is None
    assert MULTIPROC_ENV not in os.environ


def test_several_workers_get_a_fresh_shared_metrics_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_multiproc_dir(monkeypatch)
    created = _prepare_multiprocess_dir(2)
    try:
        assert created is not None and created.is_dir() and not any(created.iterdir())
        assert os.environ[MULTIPROC_ENV] == str(created)
    finally:
        if created is not None:
            created.rmdir()


def test_a_given_metrics_directory_is_cleared_of_a_previous_run(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old values")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert _prepare_multiprocess_dir(2) is None  # given by the operator: not ours to remove later
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
