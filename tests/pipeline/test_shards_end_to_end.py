"""The whole pipeline with shards (kfp.local): the same data in 3 shards trains the same model.

The trained fixture ran ``SMALL`` in one shard; here the same generator data runs in three, in a
store of its own. Everything that crosses shards is pooled from sums, so the model, its in-sample
metrics, the test-window metrics, the drift report and the served drift profile match the
one-shard run (the version differs: it carries the creation time).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.local_run import run_local
from pricecast.registry import RegistryStore
from pricecast.settings import get_settings

from .conftest import SMALL

pytestmark = pytest.mark.slow


def _model_info(root: Path) -> dict:
    (path,) = root.glob("*/train/model_info")
    return json.loads(path.read_text())


def _output(root: Path, pattern: str) -> dict:
    (path,) = root.glob(pattern)
    return json.loads(path.read_text())


def test_three_shards_train_and_score_what_one_shard_does(trained, isolated_store, tmp_path):
    one_root = trained.store.parent / "kfp"
    three = run_local({**SMALL, "shards": 3}, pipeline_root=tmp_path / "kfp")
    assert three.decision == "promoted", three.reason

    # Each per-ticker stage ran once per shard, under its own name; train once.
    stages = [json.loads(line)["stage"] for line in
              (get_settings().log_dir / "stage-metrics.jsonl").read_text().splitlines()]
    for stage in ("validate", "clean", "features"):
        assert sorted(s for s in stages if s.startswith(f"{stage}-s")) == [f"{stage}-s{i}" for i in range(3)]
    assert stages.count("plan") == stages.count("train") == stages.count("evaluate") == 1

    one, many = _model_info(one_root), _model_info(tmp_path / "kfp")
    assert many["rows"] == one["rows"] and many["training_window"] == one["training_window"]
    assert many["split"] == one["split"] and many["features"] == one["features"]
    for name, value in one["coefficients"].items():
        assert many["coefficients"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    for name, value in one["metrics"].items():
        assert many["metrics"][name] == pytest.approx(value, rel=1e-9), name
    assert many["reference_profile"]["features"].keys() == one["reference_profile"]["features"].keys()
    for name, profile in one["reference_profile"]["features"].items():
        assert many["reference_profile"]["features"][name]["edges"] == profile["edges"], name
        assert many["reference_profile"]["features"][name]["proportions"] == pytest.approx(profile["proportions"])
    assert many["outlier_bounds"] == one["outlier_bounds"]

    # The gate saw the same numbers: candidate and naive per window from summed errors.
    windows_one = _output(one_root, "*/evaluate/window_results")
    windows_many = _output(tmp_path / "kfp", "*/evaluate/window_results")
    assert [w["n"] for w in windows_many] == [w["n"] for w in windows_one]
    for a, b in zip(windows_many, windows_one, strict=True):
        for forecaster in ("candidate", "naive"):
            for metric in ("mae", "rmse", "mape", "directional_accuracy"):
                if b[forecaster][metric] is None:  # the naive forecast calls no direction
                    assert a[forecaster][metric] is None, (forecaster, metric)
                    continue
                assert a[forecaster][metric] == pytest.approx(b[forecaster][metric], rel=1e-9, abs=1e-15), \
                    (forecaster, metric)
    drift_one, drift_many = _output(one_root, "*/drift/drift_report"), _output(tmp_path / "kfp", "*/drift/drift_report")
    assert [(f["feature"], f["n_reference"], f["n_current"]) for f in drift_many["features"]] == \
        [(f["feature"], f["n_reference"], f["n_current"]) for f in drift_one["features"]]
    assert drift_many["score"] == pytest.approx(drift_one["score"], rel=1e-9)
    assert RegistryStore().load().active == three.version
