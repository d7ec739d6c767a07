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
    first = ingest_op(tickers=3, days=60, seed=5).outputs["raw"]
    second = ingest_op(tickers=3, days=60, seed=5).outputs["raw"]

    assert first.metadata["rows"] == 180 and first.metadata["restored_from_checkpoint"] is False
    assert second.metadata["restored_from_checkpoint"] is True
    assert sha256_file(first.path) == sha256_file(second.path)
    assert "restored checkpoint" in _log(isolated_store)
    frame = pd.read_parquet(second.path)
    assert list(frame.columns) == ["date", "ticker", "price"] and len(frame) == 180


def test_shards_make_a_directory_of_partitions_and_return_the_shard_numbers(ingest_op, isolated_store):
    first = ingest_op(tickers=12, days=20, seed=5, shards=3)
    second = ingest_op(tickers=12, days=20, seed=5, shards=3)
    single = ingest_op(tickers=12, days=20, seed=5).outputs

    assert first.outputs["Output"] == second.outputs["Output"] == [0, 1, 2]
    assert single["Output"] == [0] and single["raw"].metadata["shards"] == 1
    raw = first.outputs["raw"]
    assert raw.metadata["shards"] == 3 and sum(raw.metadata["rows_per_shard"]) == raw.metadata["rows"] == 240
    assert second.outputs["raw"].metadata["restored_from_checkpoint"] is True
    parts = sorted(p.name for p in Path(second.outputs["raw"].path).iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    union = pd.concat(pd.read_parquet(Path(raw.path) / name) for name in parts)
    pd.testing.assert_frame_equal(union.sort_values(["ticker", "date"], ignore_index=True),
                                  pd.read_parquet(single["raw"].path))


def test_a_bad_shard_count_fails_the_task_with_the_fix(ingest_op, isolated_store):
    with pytest.raises(RuntimeError):
        ingest_op(tickers=3, days=20, shards=0)
    failure = json.loads((Path(isolated_store.log_dir) / "ingest.failure.json").read_text())
    assert failure["error"] == "ConfigError" and "shards=0" in failure["problem"] and "shards=1" in failure["fix"]


def test_an_edited_file_is_read_again(ingest_op, isolated_store, tmp_path):
    source = tmp_path / "prices.csv"
    source.write_bytes(CSV)
    first = ingest_op(source=str(source)).outputs["raw"]
    source.write_bytes(CSV + b"2021-01-06,AAA,11.0\n")
    second = ingest_op(source=str(source)).outputs["raw"]

    assert first.metadata["rows"] == 2
    assert second.metadata["rows"] == 3 and second.metadata["restored_from_checkpoint"] is False


def test_an_http_source_is_fetched_on_every_run(ingest_op, isolated_store, http_server):
    server = http_server(Reply(200, CSV))
    ingest_op(source=server.url)
    task = ingest_op(source=server.url)

    assert len(server.hits) == 2
    assert task.outputs["raw"].metadata["restored_from_checkpoint"] is False
    assert "fetched on every run" in _log(isolated_store)


def test_a_bad_source_fails_the_task_and_records_why(ingest_op, isolated_store, tmp_path):
    source = tmp_path / "header.csv"
    source.write_bytes(b"date,ticker,price\n")
    with pytest.raises(RuntimeError):
        ingest_op(source=str(source))

    failure = json.loads((Path(isolated_store.log_dir) / "ingest.failure.json").read_text())
    assert failure["error"] == "DataFormatError" and "header but no rows" in failure["problem"]
    assert "FAILED ingest" in _log(isolated_store)
