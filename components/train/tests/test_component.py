"""The train component run through KFP local mode (SubprocessRunner, no Docker), fanning in
three shards' features, statistics and bounds with ``dsl.Collected`` as the pipeline does.

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from pathlib import Path
from typing import NamedTuple

from kfp import dsl

from components.features.core import build_features
from components.features.tests.support import (
    clean_frame, local_component, write_outlier_bounds, write_parquet, write_split,
)
from components.train.component import train
from components.train.core import Split, train_model
from pricecast import frames, modelio, storage
from pricecast.columns import FEATURE_COLUMNS
from pricecast.settings import get_settings
from pricecast.training_stats import shard_stats


def test_component_writes_the_model_its_description_and_reuses_its_checkpoint(kfp_local: Path, tmp_path: Path) -> None:
    clean = clean_frame(n_tickers=6, n_days=150, seed=8, ar=0.3)
    features = build_features(clean)
    split_uri = write_split(clean, tmp_path / "split.json", n_windows=2)
    split = Split.from_dict(json.loads(Path(split_uri).read_text()))
    which, which_clean = frames.shard_of(features["ticker"], 3), frames.shard_of(clean["ticker"], 3)
    shards = []
    for i in range(3):  # what clean and features write per shard
        part = features[which == i].reset_index(drop=True)
        stats = tmp_path / f"train_stats-{i}.json"
        stats.write_text(json.dumps(shard_stats(part, split, FEATURE_COLUMNS, "business", shard=i).to_dict()))
        shards.append({"features": write_parquet(part, tmp_path / f"features-{i}.parquet"), "stats": str(stats),
                       "bounds": write_outlier_bounds(clean[which_clean == i], tmp_path / f"bounds-{i}.json")})
    train_op = local_component(train)

    @dsl.pipeline
    def train_only() -> NamedTuple("Outputs", [("model", dsl.Model), ("model_info", dsl.Artifact)]):
        with dsl.ParallelFor(shards) as shard:
            imported = dsl.importer(artifact_uri=shard.features, artifact_class=dsl.Dataset)
            stats = dsl.importer(artifact_uri=shard.stats, artifact_class=dsl.Artifact)
            bounds = dsl.importer(artifact_uri=shard.bounds, artifact_class=dsl.Artifact)
        split = dsl.importer(artifact_uri=split_uri, artifact_class=dsl.Artifact)
        task = train_op(features=dsl.Collected(imported.output), train_stats=dsl.Collected(stats.output),
                        outlier_bounds=dsl.Collected(bounds.output), split=split.output, alpha=0.5)
        outputs = NamedTuple("Outputs", [("model", dsl.Model), ("model_info", dsl.Artifact)])  # noqa: UP014
        return outputs(task.outputs["model"], task.outputs["model_info"])

    first = train_only()
    model, info_artifact = first.outputs["model"], first.outputs["model_info"]
    model_bytes = Path(model.path).read_bytes()
    info = json.loads(Path(info_artifact.path).read_text())
    assert info["sha256"] == storage.sha256_bytes(model_bytes) == model.metadata["sha256"]
    assert model.metadata["version"] == info["version"] and model.metadata["framework"] == "sklearn"
    assert model.metadata["features"] == info["features"] == FEATURE_COLUMNS
    assert model.metadata["data_hash"] == info["data_hash"]
    assert model.metadata["metrics"] == info["metrics"] and "train_mape" in model.metadata["metrics"]
    assert info["alpha"] == 0.5 and len(info["split"]["windows"]) == 2
    # Every shard's clipping bounds travel with the model, for the server's raw-prices path.
    whole_bounds = json.loads(Path(write_outlier_bounds(clean, tmp_path / "whole.json")).read_text())
    assert info["outlier_bounds"] == whole_bounds
    assert set(info["outlier_bounds"]["tickers"]) == set(clean["ticker"])
    # The three shards make the model one process makes from all the rows.
    _, whole = train_model(features, split, alpha=0.5)
    assert info["rows"] == whole.rows and info["training_window"] == whole.training_window
    for name, value in whole.coefficients.items():
        assert abs(info["coefficients"][name] - value) <= 1e-9 * max(abs(value), 1e-12), name
    assert modelio.loads(model_bytes).predict(features[FEATURE_COLUMNS].head(3)).shape == (3,)

    second = train_only()  # same inputs and parameters: restored, same bytes and metadata
    assert Path(second.outputs["model"].path).read_bytes() == model_bytes
    assert second.outputs["model"].metadata == model.metadata
    assert "restored checkpoint" in (get_settings().log_dir / "train.log").read_text()
