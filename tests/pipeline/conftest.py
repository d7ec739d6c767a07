"""One trained store for the pipeline tests: a full local run, copied by each test that needs it."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.local_run import RunOutcome, run_local
from pricecast.settings import reload_settings

SMALL = {"tickers": 4, "days": 320, "n_windows": 2}


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file below root (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")
    }


@dataclass(frozen=True)
class Trained:
    store: Path
    outcome: RunOutcome
    events: list[tuple[str, str]]


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Iterator[Trained]:
    """The first run of the pipeline on generator data, into a store of its own."""
    base = tmp_path_factory.mktemp("trained")
    env = {"PRICECAST_STORE_URL": f"file://{base / 'store'}", "PRICECAST_LOG_DIR": str(base / "logs")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reload_settings()
    events: list[tuple[str, str]] = []
    try:
        outcome = run_local(dict(SMALL), pipeline_root=base / "kfp", on_event=lambda t, s: events.append((t, s)))
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        reload_settings()
    yield Trained(base / "store", outcome, events)


@pytest.fixture
def trained_copy(trained: Trained, isolated_store, tmp_path) -> Path:
    """A private copy of the trained store, set as PRICECAST_STORE_URL for this test."""
    store = Path(isolated_store.store_url.removeprefix("file://"))
    shutil.copytree(trained.store, store)
    return store
