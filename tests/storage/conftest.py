"""Fixtures: one real SeaweedFS per module, and per test a fresh store prefix in the environment."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from pricecast.settings import get_settings
from tests.support.seaweed import SeaweedS3, seaweedfs


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def store_url(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    """``s3://pricecast/<test>-<uuid>`` with PRICECAST_* pointing at the server; settings re-read."""
    prefix = f"{re.sub(r'[^a-z0-9]+', '-', request.node.name.lower())[:40]}-{uuid.uuid4().hex[:8]}"
    for key, value in seaweed.env(prefix).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield seaweed.store_url(prefix)
    get_settings.cache_clear()  # monkeypatch restores the environment after this
