"""`pricecast store init` and `pricecast store check` against a real SeaweedFS and a local store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from pricecast import storage
from pricecast.errors import StorageError

runner = CliRunner()


@pytest.mark.s3
def test_check_passes_on_seaweedfs_which_refuses_stale_conditional_writes(store_url: str) -> None:
    result = runner.invoke(app, ["store", "check", "--store", store_url])
    assert result.exit_code == 0, result.output
    assert "refuses stale conditional writes" in result.output
    fs, root = storage.filesystem(store_url)
    fs.invalidate_cache()
    # SeaweedFS may keep the (empty) folders as entries; no probe object may remain in them.
    assert [p for p in fs.find(root) if "/.pricecast-probe/" in p] == [], "the probe object is removed"


@pytest.mark.s3
def test_init_creates_a_missing_bucket_that_runs_then_use(store_url: str) -> None:
    url = f"s3://fresh-{uuid.uuid4().hex[:10]}/pricecast"
    with pytest.raises(StorageError, match="does not exist"):
        storage.write_text(storage.join(url, "x.txt"), "before init")
    result = runner.invoke(app, ["store", "init", "--store", url])
    assert result.exit_code == 0, result.output
    storage.write_text(storage.join(url, "x.txt"), "after init")
    assert storage.read_text(storage.join(url, "x.txt")) == "after init"


def test_check_passes_on_a_local_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["store", "check", "--store", f"file://{tmp_path}"])
    assert result.exit_code == 0, result.output


def test_check_fails_on_a_backend_that_ignores_conditions_fake_old_store() -> None:
    # No old S3 server runs here; fsspec's in-memory backend ignores If-Match/If-None-Match the
    # same way, which is exactly what the check must catch.
    url = f"memory://probe-{uuid.uuid4().hex[:8]}/store"
    assert storage.conditional_writes_honoured(url) is False
    result = runner.invoke(app, ["store", "check", "--store", url])
    assert result.exit_code == StorageError.exit_code, result.output
    assert "could overwrite each other's registry update" in result.output
    assert "one pipeline at a time" in result.output
