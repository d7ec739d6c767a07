"""Fixtures of the fault tests: one real SeaweedFS per module and a fresh S3 store per test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pricecast.settings import reload_settings
from tests.support.seaweed import SeaweedS3, seaweedfs


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_store(seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             request: pytest.FixtureRequest) -> Iterator[str]:
    """``s3://pricecast/<test>-<uuid>``, PRICECAST_* pointing at it (and logs in tmp_path)."""
    seaweed.start()  # a no-op unless an earlier test left it stopped
    prefix = f"{re.sub(r'[^a-z0-9]+', '-', request.node.name.lower())[:40]}-{uuid.uuid4().hex[:8]}"
    for key, value in seaweed.env(prefix).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PRICECAST_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)
    reload_settings()
    yield seaweed.store_url(prefix)
    monkeypatch.undo()
    reload_settings()
