"""The ingest component run in-process through KFP's own local runner (no cluster, no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl, local

from components.ingest.component import ingest
from components.ingest.tests.conftest import Reply
from pricecast.storage import sha256_file

CSV = b"date,ticker,price\n2021-01-04,AAA,10.0\n2021-01-05,AAA,10.5\n"


@pytest.fixture
def ingest_op(isolated_store, tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"))
    return dsl.component(ingest, base_image="python:3.11-slim", install_kfp_package=False)


def _log(settings) -> str:
    return (Path(settings.log_dir) / "ingest.log").read_text()


def test_generator_rerun_restores_the_checkpoint(ingest_op, isolated_store):
    first = ingest_op(tickers=3, days=60, seed=5).output
    second = ingest_op(tickers=3, days=60, seed=5).output

    assert first.metadata["rows"] == 180 and first.metadata["restored_from_checkpoint"] is False
    assert second.metadata["restored_from_checkpoint"] is True
    assert sha256_file(first.path) == sha256_file(second.path)
    assert "restored checkpoint" in _log(isolated_store)
    frame = pd.read_parquet(second.path)
    assert list(frame.columns) == ["date", "ticker", "price"] and len(frame) == 180


def test_an_edited_file_is_read_again(ingest_op, isolated_store, tmp_path):
    source = tmp_path / "prices.csv"
    source.write_bytes(CSV)
    first = ingest_op(source=str(source)).output
    source.write_bytes(CSV + b"2021-01-06,AAA,11.0\n")
    second = ingest_op(source=str(source)).output

    assert first.metadata["rows"] == 2
    assert second.metadata["rows"] == 3 and second.metadata["restored_from_checkpoint"] is False


def test_an_http_source_is_fetched_on_every_run(ingest_op, isolated_store, http_server):
    server = http_server(Reply(200, CSV))
    ingest_op(source=server.url)
    task = ingest_op(source=server.url)

    assert len(server.hits) == 2
    assert task.output.metadata["restored_from_checkpoint"] is False
    assert "fetched on every run" in _log(isolated_store)


def test_a_bad_source_fails_the_task_and_records_why(ingest_op, isolated_store, tmp_path):
    source = tmp_path / "header.csv"
    source.write_bytes(b"date,ticker,price\n")
    with pytest.raises(RuntimeError):
        ingest_op(source=str(source))

    failure = json.loads((Path(isolated_store.log_dir) / "ingest.failure.json").read_text())
    assert failure["error"] == "DataFormatError" and "header but no rows" in failure["problem"]
    assert "FAILED ingest" in _log(isolated_store)
