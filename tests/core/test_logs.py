"""Task logs: stdout and a rotating <log_dir>/<task>.log that keeps a bounded number of files."""

from __future__ import annotations

import logging

import pytest

from pricecast import logs
from pricecast.settings import reload_settings


def test_a_task_log_rotates_at_its_size_and_keeps_the_configured_backups(isolated_store, monkeypatch, capsys):
    monkeypatch.setenv("PRICECAST_LOG_MAX_BYTES", "10000")
    monkeypatch.setenv("PRICECAST_LOG_BACKUPS", "2")
    settings = reload_settings()
    log = logs.configure("ingest", settings)
    for i in range(400):  # ~40 kB of lines: rotates several times
        log.info("line %04d %s", i, "x" * 60)
    files = sorted(p.name for p in settings.log_dir.iterdir())
    assert files == ["ingest.log", "ingest.log.1", "ingest.log.2"], files
    assert all((settings.log_dir / f).stat().st_size <= 10_000 for f in files)
    assert "line 0399" in (settings.log_dir / "ingest.log").read_text()  # the newest lines stay
    assert "line 0399" in capsys.readouterr().out  # and stdout had every line too


def test_configuring_twice_does_not_duplicate_lines(isolated_store, capsys):
    logs.configure("clean")
    log = logs.configure("clean")
    log.warning("only once")
    assert capsys.readouterr().out.count("only once") == 1
    assert (isolated_store.log_dir / "clean.log").read_text().count("only once") == 1


@pytest.fixture(autouse=True)
def _close_handlers():
    yield
    for name in ("pricecast", "components", "pipelines", "serving"):
        for handler in list(logging.getLogger(name).handlers):
            logging.getLogger(name).removeHandler(handler)
            handler.close()
