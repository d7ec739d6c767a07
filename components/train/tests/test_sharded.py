"""Exact distributed training: K shards' pooled statistics give the single-process ridge fit.

The reference is sklearn itself (``StandardScaler + Ridge`` fitted on every training row in one
process); the sharded path never sees the rows together, only each shard's ShardStats document
(round-tripped through JSON as it travels between tasks) and one shard at a time for scoring.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components.features.core import build_features
from components.features.tests.support import clean_frame
from components.train.core import coefficients, make_model, time_split, train_from_stats, train_mask, train_model
from pricecast import frames, modelio, training_stats
from pricecast.columns import DRIFT_FEATURES, FEATURE_COLUMNS, TARGET
from pricecast.moments import RidgeFit
from pricecast.training_stats import ShardStats, shard_stats

FEATURES = build_features(clean_frame(n_tickers=12, n_days=260, seed=5, ar=0.3, gaps={"T003": 150}))
SPLIT = time_split(FEATURES, test_fraction=0.2, n_windows=3)
NOW = pd.Timestamp("2026-12-05T00:00:00Z").to_pydatetime()


def _shards(frame: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    """``frame`` partitioned by ticker hash, as ingest does, each part in (ticker, date) order."""
    which = frames.shard_of(frame["ticker"], k)
    return [frame[which == i].reset_index(drop=True) for i in range(k)]


def _fit_sharded(parts: list[pd.DataFrame], alpha: float):
    documents = [json.dumps(shard_stats(p, SPLIT, FEATURE_COLUMNS, "business", shard=i).to_dict())
                 for i, p in enumerate(parts)]
    stats = [ShardStats.from_dict(json.loads(d)) for d in documents]
    return train_from_stats(stats, SPLIT, alpha, iter(parts), now=NOW)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize("k", [1, 2, 3, 7])
@pytest.mark.parametrize("alpha", [0.0, 1.0, 250.0])
def test_pooled_fit_equals_a_single_process_sklearn_fit_to_1e_9(k: int, alpha: float) -> None:
    mask = train_mask(FEATURES, SPLIT)
    x = FEATURES.loc[mask, FEATURE_COLUMNS].reset_index(drop=True)
    reference = make_model(alpha).fit(x, FEATURES.loc[mask, TARGET].to_numpy())

    fit, info = _fit_sharded(_shards(FEATURES, k), alpha)

    theirs = RidgeFit.from_pipeline(reference)
    assert _relative(fit.mean, theirs.mean) < 1e-9
    assert _relative(fit.scale, theirs.scale) < 1e-9
    assert info.rows == int(mask.sum())
    # The served format is unchanged: the same skops bytes load and predict like sklearn's fit.
    loaded = modelio.loads(info.model_bytes)
    np.testing.assert_allclose(loaded.predict(x), reference.predict(x), rtol=1e-9, atol=1e-15)
    if alpha == 0:
        # The weekday and month circles make the centered design rank-deficient (rank 13 of 14):
        # least squares has a line of equal solutions, and only the predictions are unique.
        return
    assert _relative(fit.coef, theirs.coef) < 1e-9
    assert abs(fit.intercept - theirs.intercept) <= 1e-9 * abs(theirs.intercept)
    ours, reference_units = coefficients(fit), coefficients(theirs)
    assert ours.keys() == reference_units.keys()
    assert _relative(np.array(list(ours.values())), np.array(list(reference_units.values()))) < 1e-9


def test_sharded_run_describes_the_model_as_one_shard_does() -> None:
    _, one = train_model(FEATURES, SPLIT, alpha=1.0, now=NOW)
    _, many = _fit_sharded(_shards(FEATURES, 5), 1.0)
    assert many.rows == one.rows and many.training_window == one.training_window
    assert many.features == one.features and many.split == one.split
    for name, value in one.metrics.items():  # in-sample metrics pooled from per-shard sums
        assert many.metrics[name] == pytest.approx(value, rel=1e-12), name
    # The drift reference comes from merged sketches: exactly what one shard's sketch gives.
    assert set(many.reference_profile["features"]) == set(DRIFT_FEATURES)
    for name, profile in one.reference_profile["features"].items():
        other = many.reference_profile["features"][name]
        assert other["edges"] == profile["edges"] and other["n"] == profile["n"], name
        np.testing.assert_allclose(other["proportions"], profile["proportions"], rtol=1e-12, atol=0)
        assert other["mean"] == pytest.approx(profile["mean"], rel=1e-12, abs=1e-18)
        assert other["std"] == pytest.approx(profile["std"], rel=1e-9)


def test_a_shard_without_training_rows_is_skipped_and_an_empty_run_refused() -> None:
    late = FEATURES[FEATURES["date"] >= SPLIT.test_start].reset_index(drop=True)
    assert shard_stats(late, SPLIT, FEATURE_COLUMNS, "business").moments is None
    parts = _shards(FEATURES, 3)
    _, info = _fit_sharded([*parts, late], 1.0)
    assert info.rows == int(train_mask(FEATURES, SPLIT).sum())
    from pricecast.errors import ConfigError
    with pytest.raises(ConfigError, match="nothing to train on"):
        _fit_sharded([late], 1.0)


@pytest.mark.parametrize("chunk", [1, 97, 1_000])
def test_a_shard_summarised_in_chunks_is_the_shard_summarised_at_once(chunk: int, monkeypatch) -> None:
    whole = shard_stats(FEATURES, SPLIT, FEATURE_COLUMNS, "business")
    assert whole.rows < training_stats.CHUNK_ROWS  # one chunk: the reference
    monkeypatch.setattr(training_stats, "CHUNK_ROWS", chunk)
    chunked = shard_stats(FEATURES, SPLIT, FEATURE_COLUMNS, "business")
    assert chunked.data_hash == whole.data_hash and chunked.rows == whole.rows  # the same bytes hashed
    assert (chunked.first_date, chunked.last_date) == (whole.first_date, whole.last_date)
    for name in ("mean_x", "cxx", "cxy"):
        np.testing.assert_allclose(getattr(chunked.moments, name), getattr(whole.moments, name), rtol=1e-11,
                                   atol=1e-13 * np.abs(getattr(whole.moments, name)).max(), err_msg=name)
    assert chunked.moments.n == whole.moments.n
    for c, sketch in whole.sketches.items():  # bin counts merge exactly
        assert np.array_equal(chunked.sketches[c].keys, sketch.keys) and np.array_equal(chunked.sketches[c].counts,
                                                                                       sketch.counts), c
        assert chunked.sketches[c].mean == pytest.approx(sketch.mean, rel=1e-12, abs=1e-18)
