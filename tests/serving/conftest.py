"""Fixtures for the model server: a fresh store and registry per test, an in-process client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pricecast.columns import FEATURE_COLUMNS
from serving.main import create_app
from serving.settings import ServerSettings
from tests.support.server import publish_model


@pytest.fixture
def store_url(tmp_path: Any) -> str:
    """An empty model store (its own registry) for this test only."""
    return f"file://{tmp_path}/store"


@pytest.fixture
def published(store_url: str) -> Any:
    """Version v1, promoted (active), on the pipeline's FEATURE_COLUMNS."""
    return publish_model(store_url, "v1", seed=1)


@pytest.fixture
def make_client(store_url: str) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)``: a started app (lifespan run) over this test's store."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            settings = ServerSettings(**{"load_retry_s": 0, **overrides})
            app = create_app(settings, store_url=store_url)
            # `with TestClient(app)` runs the lifespan: the model is loaded before the first call.
            return stack.enter_context(TestClient(app, raise_server_exceptions=False))

        yield make


@pytest.fixture
def client(published: Any, make_client: Callable[..., TestClient]) -> TestClient:
    """A ready server with v1 loaded, in process."""
    return make_client()


@pytest.fixture
def rows() -> list[list[float]]:
    """Three plausible feature rows (returns, vols, calendar terms) in FEATURE_COLUMNS order."""
    rng = np.random.default_rng(7)
    return (rng.normal(0.0, 0.01, size=(3, len(FEATURE_COLUMNS)))).tolist()

