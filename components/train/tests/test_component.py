"""The train component run through KFP local mode (SubprocessRunner, no Docker).

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
from pricecast import modelio, storage
from pricecast.columns import FEATURE_COLUMNS
from pricecast.settings import get_settings


def test_component_writes_the_model_its_description_and_reuses_its_checkpoint(kfp_local: Path, tmp_path: Path) -> None:
    clean = clean_frame(n_tickers=3, n_days=150, seed=8, ar=0.3)
    features = build_features(clean)
    features_uri = write_parquet(features, tmp_path / "features.parquet")
    bounds_uri = write_outlier_bounds(clean, tmp_path / "outlier_bounds.json")
    split_uri = write_split(clean, tmp_path / "split.json", n_windows=2)
    train_op = local_component(train)

    @dsl.pipeline
    def train_only() -> NamedTuple("Outputs", [("model", dsl.Model), ("model_info", dsl.Artifact)]):
        imported = dsl.importer(artifact_uri=features_uri, artifact_class=dsl.Dataset)
        bounds = dsl.importer(artifact_uri=bounds_uri, artifact_class=dsl.Artifact)
        split = dsl.importer(artifact_uri=split_uri, artifact_class=dsl.Artifact)
        task = train_op(features=imported.output, outlier_bounds=bounds.output, split=split.output, alpha=0.5)
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
    # The clean stage's clipping bounds travel with the model, for the server's raw-prices path.
    assert info["outlier_bounds"] == json.loads(Path(bounds_uri).read_text())
    assert set(info["outlier_bounds"]["tickers"]) == set(clean["ticker"])
    assert modelio.loads(model_bytes).predict(features[FEATURE_COLUMNS].head(3)).shape == (3,)

    second = train_only()  # same inputs and parameters: restored, same bytes and metadata
    assert Path(second.outputs["model"].path).read_bytes() == model_bytes
    assert second.outputs["model"].metadata == model.metadata
    assert "restored checkpoint" in (get_settings().log_dir / "train.log").read_text()
