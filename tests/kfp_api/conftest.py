"""Fixtures: the KFP API stand-in, a compiled package, and a CLI with submit/schedule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli import cluster
from tests.kfp_api.standin_kfp_api import StandinKfpApi, standin_kfp_api


@pytest.fixture
def kfp_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StandinKfpApi]:
    # kfp.Client reads ~/.config/kfp/context.json; keep a developer's real one out of the test.
    monkeypatch.setenv("HOME", str(tmp_path))
    with standin_kfp_api() as server:
        yield server


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real pipeline, compiled for an image as `pricecast compile --image` would."""
    from pipelines.pricecast_pipeline import compile_pipeline

    return compile_pipeline(tmp_path_factory.mktemp("pkg") / "pricecast.yaml", image="pricecast:0.1.0")


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    cluster.register(app)
    return app


@pytest.fixture
def invoke(cli: typer.Typer):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return run
