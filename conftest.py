"""Fixtures every test directory can use: an isolated store and log directory per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pricecast.settings import Settings, reload_settings


@pytest.fixture
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """PRICECAST_STORE_URL and PRICECAST_LOG_DIR in tmp_path; settings re-read; restored after."""
    monkeypatch.setenv("PRICECAST_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("PRICECAST_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)
    yield reload_settings()
    monkeypatch.undo()
    reload_settings()


@pytest.fixture(autouse=True)
def _builtin_print_restored() -> Iterator[None]:
    """kfp.local indents task output by swapping ``builtins.print``; overlapping tasks can leave
    the swap in place, and a later test's CLI output then starts with four spaces."""
    import builtins

    original = builtins.print
    yield
    builtins.print = original
