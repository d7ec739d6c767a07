"""The features component run through KFP local mode (SubprocessRunner, no Docker).

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

from pathlib import Path

import pandas as pd
from kfp import dsl

from components.features.component import features
from components.features.core import build_features
from components.features.tests.support import clean_frame, local_component, write_parquet
from pricecast.columns import FEATURE_COLUMNS
from pricecast.settings import get_settings


def test_component_writes_features_and_reuses_its_checkpoint(kfp_local: Path, tmp_path: Path) -> None:
    frame = clean_frame(n_tickers=2, n_days=60, seed=5)
    clean_uri = write_parquet(frame, tmp_path / "clean.parquet")
    features_op = local_component(features)

    @dsl.pipeline
    def features_only() -> dsl.Dataset:
        clean = dsl.importer(artifact_uri=clean_uri, artifact_class=dsl.Dataset)
        return features_op(clean=clean.output).outputs["features"]

    first = features_only().output
    out = pd.read_parquet(first.path)
    pd.testing.assert_frame_equal(out, build_features(frame))
    assert first.metadata["rows"] == len(out)
    assert first.metadata["feature_columns"] == FEATURE_COLUMNS

    second = features_only().output
    pd.testing.assert_frame_equal(pd.read_parquet(second.path), out)
    log = (get_settings().log_dir / "features.log").read_text()
    assert log.count("START features") == 2
    assert "restored checkpoint" in log
