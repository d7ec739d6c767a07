"""Unit tests of the split and the training core."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from components.features.core import build_features
from components.features.tests.support import clean_frame
from components.train.core import (
    Split,
    TrainInfo,
    target_dates,
    time_split,
    train_mask,
    train_model,
    window_mask,
)
from pricecast import modelio, storage
from pricecast.columns import FEATURE_COLUMNS
from pricecast.errors import ConfigError

FEATURES = build_features(clean_frame(n_tickers=3, n_days=200, seed=11, ar=0.3, gaps={"T002": 120}))


def test_split_windows_are_consecutive_latest_dates_and_train_comes_strictly_before() -> None:
    split = time_split(FEATURES, test_fraction=0.2, n_windows=3)
    dates = np.sort(FEATURES["date"].unique())
    test_dates = dates[dates >= np.datetime64(split.test_start)]
    assert len(test_dates) == round(len(dates) * 0.2)
    covered = np.concatenate([dates[(dates >= np.datetime64(w.start)) & (dates <= np.datetime64(w.end))]
                              for w in split.windows])
    np.testing.assert_array_equal(covered, test_dates)  # consecutive, ascending, no overlap, no hole
    assert [w.start for w in split.windows] == sorted(w.start for w in split.windows)

    train = FEATURES[train_mask(FEATURES, split)]
    assert train["date"].max() < split.test_start
    assert (target_dates(FEATURES)[train_mask(FEATURES, split)] < np.datetime64(split.test_start)).all()


def test_split_depends_on_dates_only_never_on_row_order() -> None:
    shuffled = FEATURES.sample(frac=1.0, random_state=3)
    assert time_split(shuffled) == time_split(FEATURES)
    # Each row keeps the date its target is realised on (the stored table is date-major),
    # including across T002's gap, where a segment ends without a next row.
    expected = pd.Series(target_dates(FEATURES), index=FEATURES.index)
    np.testing.assert_array_equal(target_dates(shuffled), expected.loc[shuffled.index].to_numpy())
    assert pd.isna(expected).sum() >= FEATURES["ticker"].nunique() + 1
    split = time_split(FEATURES)
    assert train_mask(shuffled, split).sum() == train_mask(FEATURES, split).sum()


def test_the_row_whose_target_falls_in_the_test_period_is_purged() -> None:
    split = time_split(FEATURES)
    dates = np.sort(FEATURES["date"].unique())
    last_before_test = dates[dates < np.datetime64(split.test_start)][-1]
    rows = FEATURES["date"] == last_before_test
    assert FEATURES.loc[rows, "target"].notna().all()  # it has a label...
    assert not train_mask(FEATURES, split)[rows.to_numpy()].any()  # ...realised in the test period
    earlier = (FEATURES["date"] < last_before_test) & FEATURES["target"].notna()
    assert train_mask(FEATURES, split)[earlier.to_numpy()].all()


def test_window_masks_select_their_dates_with_targets() -> None:
    split = time_split(FEATURES, n_windows=2)
    total = sum(window_mask(FEATURES, split, i).sum() for i in range(2))
    in_test = (FEATURES["date"] >= split.test_start) & FEATURES["target"].notna()
    assert total == in_test.sum()
    with pytest.raises(ConfigError, match="window 2 does not exist"):
        window_mask(FEATURES, split, 2)


@pytest.mark.parametrize(
    ("fraction", "windows", "message"),
    [(0.0, 3, "between 0 and 1"), (1.0, 3, "between 0 and 1"), (0.2, 0, "at least 1"), (0.01, 3, "cannot hold")],
)
def test_split_refuses_impossible_parameters(fraction: float, windows: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        time_split(FEATURES, test_fraction=fraction, n_windows=windows)


def test_split_round_trips_through_json_dict() -> None:
    split = time_split(FEATURES)
    assert Split.from_dict(split.to_dict()) == split


def test_train_info_describes_exactly_the_written_model() -> None:
    split = time_split(FEATURES)
    model, info = train_model(FEATURES, split, alpha=2.0, now=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC))
    assert info.sha256 == storage.sha256_bytes(info.model_bytes)
    assert re.fullmatch(r"20240506-070809-[0-9a-f]{8}", info.version) and info.version.endswith(info.sha256[:8])
    loaded = modelio.loads(info.model_bytes)
    x = FEATURES[FEATURE_COLUMNS].iloc[:50]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert list(loaded.feature_names_in_) == FEATURE_COLUMNS

    train = FEATURES[train_mask(FEATURES, split)]
    assert info.rows == len(train)
    assert info.training_window == {"start": f"{train['date'].min():%Y-%m-%d}",
                                    "end": f"{train['date'].max():%Y-%m-%d}"}
    assert info.features == FEATURE_COLUMNS and info.alpha == 2.0 and info.split == split.to_dict()
    assert {"train_mape", "train_naive_mape", "train_directional_accuracy"} <= set(info.metrics)
    assert "model_bytes" not in info.to_dict()
    assert TrainInfo.from_dict(info.to_dict()) == info


def test_data_hash_covers_the_training_rows_and_nothing_else() -> None:
    split = time_split(FEATURES)
    base = train_model(FEATURES, split)[1].data_hash
    assert train_model(FEATURES.copy(), split)[1].data_hash == base

    train_row = int(np.flatnonzero(train_mask(FEATURES, split))[5])
    changed = FEATURES.copy()
    changed.loc[train_row, "ret_vol_5"] += 1e-9
    assert train_model(changed, split)[1].data_hash != base

    test_row = int(np.flatnonzero(window_mask(FEATURES, split, 0))[0])
    changed = FEATURES.copy()
    changed.loc[test_row, "ret_vol_5"] += 1.0
    assert train_model(changed, split)[1].data_hash == base


def test_training_refuses_bad_alpha_and_no_training_rows() -> None:
    split = time_split(FEATURES)
    with pytest.raises(ConfigError, match="alpha"):
        train_model(FEATURES, split, alpha=-1)
    late = Split(split.train_start, pd.Timestamp("1990-01-01"), split.windows, 0.2, 3)
    with pytest.raises(ConfigError, match="nothing to train on"):
        train_model(FEATURES, late)


def test_the_fewest_dates_validate_accepts_train_and_score_every_window():
    # history.min_dates (validate's rule): 28 months with the defaults. One fewer leaves the last
    # test window only the final date, which has no next month to score.
    from components.clean.core import clean_for_training
    from pricecast import history
    from tests.support.prices import price_frame

    least = history.min_dates(0.2, 3)
    for periods, scorable in ((least, True), (least - 1, False)):
        frame = price_frame("monthly", tickers=2, periods=periods)
        clean, _, split = clean_for_training(frame, test_fraction=0.2, n_windows=3, frequency="monthly")
        features = build_features(clean, "monthly")
        assert all(window_mask(features, split, i).any() for i in range(3)) is scorable
        assert train_mask(features, split).any()


def test_monthly_model_records_its_frequency_and_monthly_features():
    from components.clean.core import clean_prices
    from pricecast.columns import feature_columns
    from tests.support.prices import price_frame

    frame = price_frame("monthly", tickers=5, periods=120, start="2000-01-01")
    features = build_features(clean_prices(frame, frequency="monthly")[0], "monthly")
    split = time_split(features, 0.2, 3)  # was: "0 feature dates cannot hold 3 test windows"
    model, info = train_model(features, split, frequency="monthly")
    assert info.frequency == "monthly" and info.features == feature_columns("monthly")
    assert list(model.feature_names_in_) == info.features
    assert TrainInfo.from_dict(info.to_dict()) == info
    assert TrainInfo.from_dict({k: v for k, v in info.to_dict().items() if k != "frequency"}).frequency == "business"


@pytest.mark.parametrize("scale", [1e-298, 1e297])
def test_prices_near_the_float_limits_train_to_finite_metadata(scale):
    import json

    from components.clean.core import clean_prices
    from tests.support.prices import price_frame

    frame = price_frame("business", tickers=3, periods=120, scale=scale)
    features = build_features(clean_prices(frame)[0])
    _, info = train_model(features, time_split(features, 0.2, 3))
    json.dumps(info.to_dict(), allow_nan=False)  # what KFP's protobuf metadata cannot take: NaN, Infinity
    # RMSE is at least MAE: squares near 1e-300 used to vanish (RMSE 0) and near 1e300 to overflow.
    assert 0 < info.metrics["train_mae"] <= info.metrics["train_rmse"] < float("inf")
