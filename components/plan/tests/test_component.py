"""validate per shard -> plan -> clean per shard through KFP's own local runner (issue 14's DAG).

No ``from __future__ import annotations``: KFP reads the pipeline's real annotation objects.
"""

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from kfp import dsl, local

from components.clean.component import clean
from components.clean.core import clean_for_training
from components.plan.component import plan
from components.validate.component import validate
from pricecast import frames
from pricecast.errors import SchemaValidationError
from pricecast.stage import latest_checkpoint
from pricecast.time_split import Split, time_split
from tests.support.prices import price_frame

SHARDS = 3


def _op(func):
    return dsl.component(func, base_image="python:3.11-slim", install_kfp_package=False)


@dsl.pipeline(name="sharded-data-stages")
def sharded_stages(uri: str, shards: int = SHARDS, min_rows: int = 100):
    raw = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset, reimport=False)
    with dsl.ParallelFor(items=list(range(SHARDS)), parallelism=2) as shard:
        checked = _op(validate)(raw=raw.output, shard=shard, shards=shards, min_rows=min_rows)
    planned = _op(plan)(profiles=dsl.Collected(checked.outputs["profile"]),
                        validated=dsl.Collected(checked.outputs["validated"]), min_rows=min_rows)
    with dsl.ParallelFor(items=planned.outputs["Output"], parallelism=2) as item:
        _op(clean)(validated=planned.outputs["validated_shards"], split=planned.outputs["split"],
                   shard=item.shard, shards=shards, frequency=item.frequency)


@pytest.fixture
def kfp_root(isolated_store, tmp_path) -> Path:
    root = tmp_path / "kfp"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


def _whole() -> pd.DataFrame:
    return pd.concat([price_frame("weekly", tickers=1, periods=70 + 3 * k, start=f"2001-0{1 + k % 4}-05", seed=k)
                      .assign(ticker=f"T{k:02d}") for k in range(9)], ignore_index=True)


def _sharded_raw(tmp_path: Path, whole: pd.DataFrame) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    shard = frames.shard_of(whole["ticker"], SHARDS)
    for i in range(SHARDS):
        part = whole[shard == i].assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d"))
        part.to_parquet(frames.shard_path(raw, i), index=False)
    return raw


def test_shards_validate_plan_and_clean_as_the_whole_table_would(kfp_root, isolated_store, tmp_path):
    whole = _whole()
    sharded_stages(uri=str(_sharded_raw(tmp_path, whole)))

    run = next(kfp_root.glob("sharded-data-stages-*"))
    gathered = run / "plan" / "validated_shards"
    assert [p.name for p in frames.shard_paths(gathered)] == [frames.SHARD_FILE.format(i) for i in range(SHARDS)]
    profiles = {}
    for task in run.glob("for-loop-*/validate"):
        profile = json.loads((task / "profile").read_text())
        profiles[profile["shard"]] = profile
        # Each gathered shard is its validate task's table, by shard index, linked not copied.
        assert os.path.samefile(task / "validated", frames.shard_path(gathered, profile["shard"]))
    assert sorted(profiles) == [0, 1, 2] and sum(p["rows"] for p in profiles.values()) == len(whole)
    # crc32 puts none of the nine tickers in shard 0: an empty shard goes through every stage.
    assert profiles[0]["rows"] == 0 and profiles[0]["frequency"] is None
    assert {profiles[1]["frequency"], profiles[2]["frequency"]} == {"weekly"}

    split = Split.from_dict(json.loads((run / "plan" / "split").read_text()))
    assert split == time_split(whole)
    assert (run / "plan" / "split").read_text() == json.dumps(split.to_dict(), indent=2)

    cleaned = pd.concat([pd.read_parquet(p) for p in run.glob("for-loop-*/clean/cleaned")], ignore_index=True)
    expected, _, _ = clean_for_training(whole, frequency="weekly", split=split)
    cleaned = cleaned.sort_values(["ticker", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(cleaned, expected, check_dtype=False)
    bounds = {}
    for path in run.glob("for-loop-*/clean/outlier_bounds"):
        bounds.update(json.loads(path.read_text())["tickers"])
    assert sorted(bounds) == sorted(whole["ticker"].unique())

    logs = Path(isolated_store.log_dir)
    for stage in ("validate-s0", "validate-s1", "validate-s2", "plan", "clean-s0", "clean-s1", "clean-s2"):
        assert (logs / f"{stage}.log").exists(), stage


def test_a_check_only_the_whole_table_answers_fails_in_plan(kfp_root, isolated_store, tmp_path):
    with pytest.raises(RuntimeError):
        sharded_stages(uri=str(_sharded_raw(tmp_path, _whole())), min_rows=10_000)
    failure = json.loads((Path(isolated_store.log_dir) / "plan.failure.json").read_text())
    assert failure["error"] == "SchemaValidationError"
    assert failure["problem"].endswith("row(s) found, fewer than the minimum 10000.")
    run = next(kfp_root.glob("sharded-data-stages-*"))
    assert not (run / "plan" / "split").exists() and not (run / "plan" / "validated_shards").exists()


# --------------------------------------------------------------------------- the function itself
def _artifact(path: Path, **metadata) -> SimpleNamespace:
    return SimpleNamespace(path=str(path), metadata=dict(metadata))


def _validated_shards(tmp_path: Path, whole: pd.DataFrame, ingest_key: str = "") -> tuple[list, list]:
    """What the validate tasks hand plan: a profile and a table per shard."""
    validate_fn = validate.python_func if hasattr(validate, "python_func") else validate
    raw = _sharded_raw(tmp_path, whole)
    profiles, tables = [], []
    for shard in range(SHARDS):
        out = tmp_path / f"validate-{shard}"
        outputs = {name: _artifact(out / name) for name in ("validated", "schema_diff", "schema_report", "profile")}
        validate_fn(raw=_artifact(raw, checkpoint_key=ingest_key), shard=shard, shards=SHARDS, **outputs)
        profiles.append(outputs["profile"])
        tables.append(outputs["validated"])
    return profiles, tables


def test_tables_are_matched_to_shards_by_their_index_and_ingest_latest_moves(isolated_store, tmp_path):
    profiles, tables = _validated_shards(tmp_path, _whole(), ingest_key="ingest-key-1")
    assert latest_checkpoint("ingest") is None  # validate no longer moves it
    out = {"validated_shards": _artifact(tmp_path / "plan" / "validated_shards"),
           "split": _artifact(tmp_path / "plan" / "split")}

    items, found = plan(profiles=profiles[::-1], validated=[tables[1], tables[2], tables[0]], **out)

    assert items == [{"shard": i, "frequency": "weekly"} for i in range(SHARDS)] and found == "weekly"
    for shard, table in enumerate(tables):
        assert table.metadata["shard"] == shard
        assert os.path.samefile(table.path, frames.shard_path(out["validated_shards"].path, shard))
    assert latest_checkpoint("ingest") == "ingest-key-1"  # every shard passed
    assert out["validated_shards"].metadata["linked"] == SHARDS


def test_a_failed_plan_leaves_no_outputs_and_ingest_latest_where_it_was(isolated_store, tmp_path):
    profiles, tables = _validated_shards(tmp_path, _whole(), ingest_key="ingest-key-2")
    out = {"validated_shards": _artifact(tmp_path / "plan" / "validated_shards"),
           "split": _artifact(tmp_path / "plan" / "split")}
    with pytest.raises(SchemaValidationError, match="fewer than the minimum"):
        plan(profiles=profiles, validated=tables, min_rows=10_000, **out)
    assert not Path(out["split"].path).exists() and not Path(out["validated_shards"].path).exists()
    assert latest_checkpoint("ingest") is None
