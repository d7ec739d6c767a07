"""The features component run through KFP local mode (SubprocessRunner, no Docker).

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from kfp import dsl

from components.features.component import features
from components.features.core import build_features
from components.features.tests.support import clean_frame, local_component, write_parquet, write_split
from pricecast.columns import FEATURE_COLUMNS
from pricecast.settings import get_settings
from pricecast.time_split import Split
from pricecast.training_stats import ShardStats, shard_stats


def test_component_writes_features_and_training_statistics_and_reuses_its_checkpoint(
        kfp_local: Path, tmp_path: Path) -> None:
    frame = clean_frame(n_tickers=2, n_days=60, seed=5)
    clean_uri = write_parquet(frame, tmp_path / "clean.parquet")
    split_uri = write_split(frame, tmp_path / "split.json", n_windows=2)
    features_op = local_component(features)

    class Outputs(NamedTuple):
        features: dsl.Dataset
        train_stats: dsl.Artifact

    @dsl.pipeline
    def features_only() -> Outputs:
        clean = dsl.importer(artifact_uri=clean_uri, artifact_class=dsl.Dataset)
        split = dsl.importer(artifact_uri=split_uri, artifact_class=dsl.Artifact)
        task = features_op(clean=clean.output, split=split.output, shard=2, shards=4)
        return Outputs(features=task.outputs["features"], train_stats=task.outputs["train_stats"])

    first = features_only().outputs
    out = pd.read_parquet(first["features"].path)
    pd.testing.assert_frame_equal(out, build_features(frame))
    assert first["features"].metadata["rows"] == len(out)
    assert first["features"].metadata["feature_columns"] == FEATURE_COLUMNS
    assert first["features"].metadata["shard"] == 2
    # The shard's training rows, summed up for train: what the core computes from the features.
    stats = ShardStats.from_dict(json.loads(Path(first["train_stats"].path).read_text()))
    split = Split.from_dict(json.loads(Path(split_uri).read_text()))
    expected = shard_stats(out, split, FEATURE_COLUMNS, "business", shard=2)
    assert stats.to_dict() == json.loads(json.dumps(expected.to_dict()))
    assert stats.shard == 2 and stats.rows > 0 and first["train_stats"].metadata["training_rows"] == stats.rows

    second = features_only().outputs
    pd.testing.assert_frame_equal(pd.read_parquet(second["features"].path), out)
    assert Path(second["train_stats"].path).read_text() == Path(first["train_stats"].path).read_text()
    # Logged and checkpointed under the shard's own name.
    log = (get_settings().log_dir / "features-s2.log").read_text()
    assert log.count("START features-s2") == 2
    assert "restored checkpoint" in log
