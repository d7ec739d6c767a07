"""The whole pipeline locally (kfp.local SubprocessRunner) with model store and registry on S3."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from pipelines.local_run import run_local
from pricecast import storage
from pricecast.registry import RegistryStore
from tests.support.seaweed import SeaweedS3

pytestmark = [
    pytest.mark.s3, pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*no effect in the current local runner:UserWarning"),
]

SMALL = {"tickers": 5, "days": 320, "n_windows": 2}


def test_local_run_keeps_every_artifact_and_the_registry_on_s3(
    store_url: str, seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRICECAST_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)

    outcome = run_local({**SMALL, "store_url": store_url}, pipeline_root=tmp_path / "kfp")

    assert outcome.decision == "promoted", outcome.reason
    assert outcome.registry_url == storage.join(store_url, "registry.json")
    store = RegistryStore(store_url)
    registry = store.load()
    assert registry.active == outcome.version
    active = registry.get(outcome.version)
    assert storage.sha256_bytes(store.fetch_verified(active)) == active.sha256
    assert storage.exists(outcome.report_url)
    # Checkpoints live in the object store too, so a rerun on another machine resumes from them.
    assert {"ingest", "train"} <= set(storage.listdir(storage.join(store_url, "checkpoints")))
    assert not (tmp_path / ".pricecast").exists(), "something fell back to the local default store"

    listed = CliRunner().invoke(app, ["registry", "list", "--store", store_url])
    assert listed.exit_code == 0, listed.output
    assert outcome.version in listed.output
