"""The validate component through KFP's own local runner: artifacts, failure reports, reruns.

No ``from __future__ import annotations``: KFP reads the pipelines' real annotation objects.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl, local

from components.ingest.component import ingest
from components.validate.component import validate
from components.validate.tests.conftest import good_frame
from pricecast.storage import sha256_file


def _op(func):
    return dsl.component(func, base_image="python:3.11-slim", install_kfp_package=False)


@dsl.pipeline(name="validate-only")
def validate_only(uri: str, min_rows: int = 100):
    raw = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset, reimport=False)
    _op(validate)(raw=raw.output, min_rows=min_rows)


@dsl.pipeline(name="ingest-validate")
def ingest_then_validate(source: str, date_format: str):
    raw = _op(ingest)(source=source, date_format=date_format)
    _op(validate)(raw=raw.outputs["raw"], min_rows=10)  # no date_format: taken from the raw artifact


@pytest.fixture
def kfp_root(isolated_store, tmp_path) -> Path:
    root = tmp_path / "kfp"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


def _task_dirs(root: Path, pipeline: str) -> list[Path]:
    return sorted(root.glob(f"{pipeline}-*/validate"))


def _raw_parquet(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "raw.parquet"
    frame.to_parquet(path, index=False)
    return str(path)


def test_valid_data_writes_the_three_artifacts_and_a_rerun_restores_them(kfp_root, isolated_store, tmp_path):
    uri = _raw_parquet(tmp_path, good_frame())
    validate_only(uri=uri)
    validate_only(uri=uri)

    first, second = _task_dirs(kfp_root, "validate-only")
    validated = pd.read_parquet(first / "validated")
    assert str(validated["date"].dtype) == "datetime64[ns]" and len(validated) == 150
    assert json.loads((first / "schema_diff").read_text())["valid"] is True
    assert "# Schema check: PASSED" in (first / "schema_report").read_text()
    assert sha256_file(first / "validated") == sha256_file(second / "validated")
    log = (Path(isolated_store.log_dir) / "validate.log").read_text()
    assert log.count("restored checkpoint") == 1


def test_invalid_data_keeps_the_diff_everywhere_and_writes_no_dataset(kfp_root, isolated_store, tmp_path):
    bad = good_frame()
    bad.loc[5, "price"] = -3.0
    with pytest.raises(RuntimeError):
        validate_only(uri=_raw_parquet(tmp_path, bad))

    task = _task_dirs(kfp_root, "validate-only")[0]
    assert not (task / "validated").exists()
    diff = json.loads((task / "schema_diff").read_text())
    assert diff["valid"] is False and diff["checks"][0]["sample"][0]["row"] == 6
    assert "price > 0" in (task / "schema_report").read_text()

    kept = sorted((Path(isolated_store.store_url.removeprefix("file://")) / "validation").iterdir())
    assert [p.suffix for p in kept] == [".json", ".md"]
    assert json.loads(kept[0].read_text()) == diff

    failure = json.loads((Path(isolated_store.log_dir) / "validate.failure.json").read_text())
    assert failure["error"] == "SchemaValidationError" and failure["exit_code"] == 4
    assert "price > 0" in failure["problem"] and "Full report:" in failure["fix"]
    assert "Schema diff (validation failed)" in (Path(isolated_store.log_dir) / "validate.log").read_text()


def test_the_date_format_given_to_ingest_reaches_validate(kfp_root, isolated_store, tmp_path):
    frame = good_frame(rows=40)  # 34 business days at least: the model's history
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%b %d %Y")
    source = tmp_path / "months.csv"
    frame.to_csv(source, index=False)

    ingest_then_validate(source=str(source), date_format="%b %d %Y")

    task = _task_dirs(kfp_root, "ingest-validate")[0]
    assert pd.read_parquet(task / "validated")["date"].iloc[0] == pd.Timestamp("2021-01-01")
    assert json.loads((task / "schema_diff").read_text())["date_format"] == "%b %d %Y"
