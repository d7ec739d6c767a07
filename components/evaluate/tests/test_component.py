"""The evaluate component run through KFP local mode (SubprocessRunner, no Docker).

The features arrive as shards collected from a ``ParallelFor``, as the pipeline hands them over.

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.evaluate.component import evaluate
from components.evaluate.core import evaluate_window, load_model
from components.features.core import build_features
from components.features.tests.support import (
    clean_frame,
    local_component,
    write_parquet,
)
from components.train.core import time_split, train_model
from pricecast import frames
from pricecast.columns import FEATURE_COLUMNS
from pricecast.registry import ModelVersion, RegistryStore, now_iso, register
from pricecast.settings import Settings, get_settings


def _write_shards(features: pd.DataFrame, folder: Path, shards: int) -> list[str]:
    """The features as ``shards`` ticker-hash parts, one Parquet file each (as the features tasks write them)."""
    shard = frames.shard_of(features["ticker"], shards)
    return [write_parquet(features[shard == k], folder / f"features-{k}.parquet") for k in range(shards)]


def _evaluate_pipeline(uris: dict, report_tickers: str = ""):
    evaluate_op = local_component(evaluate)

    @dsl.pipeline
    def evaluate_all() -> dsl.Artifact:
        with dsl.ParallelFor(uris["features"]) as uri:
            f = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset)
        m = dsl.importer(artifact_uri=uris["model"], artifact_class=dsl.Model)
        i = dsl.importer(artifact_uri=uris["info"], artifact_class=dsl.Artifact)
        return evaluate_op(features=dsl.Collected(f.output), model=m.output, model_info=i.output,
                           report_tickers=report_tickers).outputs["window_results"]

    return evaluate_all


def _activate(store_url: str, model_bytes: bytes, info) -> None:
    """Put a model in the registry as the active version, as the promote stage would."""
    store = RegistryStore(store_url)
    artifact = store.put_model(info.version, model_bytes, info.to_dict()).artifact
    version = ModelVersion(version=info.version, created_at=now_iso(), sha256=info.sha256,
                           data_hash=info.data_hash, artifact=artifact, features=FEATURE_COLUMNS,
                           decision="promoted", reason="test")
    store.update(lambda reg: register(reg, version))


def _candidate_and_active(tmp_path: Path, shards: int):
    """Features, split, a candidate written where the pipeline would hand it over, and a second
    model to make active; ``uris`` are the importer inputs of :func:`_evaluate_pipeline`."""
    features = build_features(clean_frame(n_tickers=3, n_days=150, seed=9, ar=0.3))
    split = time_split(features)
    _, candidate = train_model(features, split)
    _, active = train_model(features, split, alpha=500.0)
    (tmp_path / "model.skops").write_bytes(candidate.model_bytes)
    (tmp_path / "model_info.json").write_text(json.dumps(candidate.to_dict()))
    uris = {"features": _write_shards(features, tmp_path, shards),
            "model": str(tmp_path / "model.skops"), "info": str(tmp_path / "model_info.json")}
    return features, split, candidate, active, uris


def test_component_compares_with_the_active_model_and_rechecks_when_it_changes(
    kfp_local: Path, tmp_path: Path, isolated_store: Settings
) -> None:
    features, split, candidate, active, uris = _candidate_and_active(tmp_path, shards=3)
    evaluate_all = _evaluate_pipeline(uris, report_tickers="T002")

    first = evaluate_all().output
    results = json.loads(Path(first.path).read_text())
    assert [r["window_index"] for r in results] == [0, 1, 2]
    assert [r["start"] for r in results] == [w["start"] for w in split.to_dict()["windows"]]
    for window, result in enumerate(results):
        assert result["active"] is None and result["candidate"]["n"] == result["n"] > 0
        assert list(result["samples"]) == ["T002"]
        # Shards pooled: the one-table numbers (the shard test in test_core checks to 1e-12).
        whole = evaluate_window(features, split, window, load_model(candidate.model_bytes), plot_tickers=["T002"])
        assert result["n"] == whole.n and result["samples"] == whole.samples
        assert result["candidate"]["mape"] == pytest.approx(whole.candidate.mape, rel=1e-12)
    assert [w["rows"] for w in first.metadata["windows"]] == [r["n"] for r in results]
    assert first.metadata["shards"] == 3 and first.metadata["active_version"] == ""

    _activate(isolated_store.store_url, active.model_bytes, active)
    second = evaluate_all().output  # the active model changed: the checkpoint key changes too
    for result in json.loads(Path(second.path).read_text()):
        assert result["active_version"] == active.version
        assert result["active"]["n"] == result["n"] and result["active"]["mae"] != result["candidate"]["mae"]
    assert second.metadata["active_version"] == active.version

    log = (get_settings().log_dir / "evaluate.log").read_text()
    assert log.count("START evaluate ") == 2 and "restored checkpoint" not in log


def test_an_active_model_of_another_frequency_is_no_reference(
    kfp_local: Path, tmp_path: Path, isolated_store: Settings
) -> None:
    # Calendar-day and business-day models share their features, not their data or horizon.
    import dataclasses

    _, _, _, active, uris = _candidate_and_active(tmp_path, shards=1)
    _activate(isolated_store.store_url, active.model_bytes, dataclasses.replace(active, frequency="daily"))

    results = json.loads(Path(_evaluate_pipeline(uris)().output.path).read_text())
    assert all(r["active"] is None and r["active_version"] is None for r in results)
    log = (get_settings().log_dir / "evaluate.log").read_text()
    assert f"Active model {active.version} forecasts daily data, the candidate business" in log
