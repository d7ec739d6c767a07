"""The evaluate component run through KFP local mode (SubprocessRunner, no Docker).

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from pathlib import Path

from kfp import dsl

from components.evaluate.component import evaluate
from components.features.core import build_features
from components.features.tests.support import (
    clean_frame,
    local_component,
    write_parquet,
)
from components.train.core import time_split, train_model
from pricecast.columns import FEATURE_COLUMNS
from pricecast.registry import ModelVersion, RegistryStore, now_iso, register
from pricecast.settings import Settings, get_settings


def _activate(store_url: str, model_bytes: bytes, info) -> None:
    """Put a model in the registry as the active version, as the promote stage would."""
    store = RegistryStore(store_url)
    artifact = store.put_model(info.version, model_bytes, info.to_dict()).artifact
    version = ModelVersion(version=info.version, created_at=now_iso(), sha256=info.sha256,
                           data_hash=info.data_hash, artifact=artifact, features=FEATURE_COLUMNS,
                           decision="promoted", reason="test")
    store.update(lambda reg: register(reg, version))


def test_component_compares_with_the_active_model_and_rechecks_when_it_changes(
    kfp_local: Path, tmp_path: Path, isolated_store: Settings
) -> None:
    features = build_features(clean_frame(n_tickers=3, n_days=150, seed=9, ar=0.3))
    split = time_split(features)
    _, candidate = train_model(features, split)
    _, active = train_model(features, split, alpha=500.0)
    (tmp_path / "model.skops").write_bytes(candidate.model_bytes)
    (tmp_path / "model_info.json").write_text(json.dumps(candidate.to_dict()))
    uris = {"features": write_parquet(features, tmp_path / "features.parquet"),
            "model": str(tmp_path / "model.skops"), "info": str(tmp_path / "model_info.json")}
    evaluate_op = local_component(evaluate)

    @dsl.pipeline
    def evaluate_one() -> dsl.Artifact:
        f = dsl.importer(artifact_uri=uris["features"], artifact_class=dsl.Dataset)
        m = dsl.importer(artifact_uri=uris["model"], artifact_class=dsl.Model)
        i = dsl.importer(artifact_uri=uris["info"], artifact_class=dsl.Artifact)
        return evaluate_op(features=f.output, model=m.output, model_info=i.output, window=1).outputs["window_result"]

    first = evaluate_one().output
    result = json.loads(Path(first.path).read_text())
    assert result["window_index"] == 1 and result["start"] == split.to_dict()["windows"][1]["start"]
    assert result["active"] is None and result["candidate"]["n"] == result["n"] > 0
    assert first.metadata["rows"] == result["n"]

    _activate(isolated_store.store_url, active.model_bytes, active)
    second = evaluate_one().output  # the active model changed: the checkpoint key changes too
    result = json.loads(Path(second.path).read_text())
    assert result["active_version"] == active.version
    assert result["active"]["n"] == result["n"] and result["active"]["mae"] != result["candidate"]["mae"]

    log = (get_settings().log_dir / "evaluate-w1.log").read_text()
    assert log.count("START evaluate-w1") == 2 and "restored checkpoint" not in log


def test_an_active_model_of_another_frequency_is_no_reference(
    kfp_local: Path, tmp_path: Path, isolated_store: Settings
) -> None:
    # Calendar-day and business-day models share their features, not their data or horizon.
    import dataclasses

    features = build_features(clean_frame(n_tickers=3, n_days=150, seed=9, ar=0.3))
    split = time_split(features)
    _, candidate = train_model(features, split)
    _, active = train_model(features, split, alpha=500.0)
    _activate(isolated_store.store_url, active.model_bytes, dataclasses.replace(active, frequency="daily"))
    (tmp_path / "model.skops").write_bytes(candidate.model_bytes)
    (tmp_path / "model_info.json").write_text(json.dumps(candidate.to_dict()))
    uris = {"features": write_parquet(features, tmp_path / "features.parquet"),
            "model": str(tmp_path / "model.skops"), "info": str(tmp_path / "model_info.json")}
    evaluate_op = local_component(evaluate)

    @dsl.pipeline
    def evaluate_one() -> dsl.Artifact:
        f = dsl.importer(artifact_uri=uris["features"], artifact_class=dsl.Dataset)
        m = dsl.importer(artifact_uri=uris["model"], artifact_class=dsl.Model)
        i = dsl.importer(artifact_uri=uris["info"], artifact_class=dsl.Artifact)
        return evaluate_op(features=f.output, model=m.output, model_info=i.output, window=0).outputs["window_result"]

    result = json.loads(Path(evaluate_one().output.path).read_text())
    assert result["active"] is None and result["active_version"] is None
    log = (get_settings().log_dir / "evaluate-w0.log").read_text()
    assert f"Active model {active.version} forecasts daily data, the candidate business" in log
