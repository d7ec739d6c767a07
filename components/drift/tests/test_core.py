"""The drift stage's core: windows from train's model_info, returns-based features only."""

from __future__ import annotations

import pandas as pd
import pytest

from components.drift import core
from components.drift.tests.support import model_info_for, regime_features
from pricecast.columns import FEATURE_COLUMNS
from pricecast.errors import ConfigError


def test_drift_features_are_the_returns_based_ones() -> None:
    assert [c for c in FEATURE_COLUMNS if not c.startswith(("dow_", "month_"))] == core.DRIFT_FEATURES
    assert set(core.DRIFT_FEATURES) >= {"ret_lag_0", "ret_vol_20", "price_vs_ma_20"}


def test_windows_follow_trains_training_window() -> None:
    features = regime_features()
    info = model_info_for(features)
    reference, current, context = core.split_windows(features, info)
    end = pd.Timestamp(info["training_window"]["end"])
    assert reference["date"].min() == pd.Timestamp(info["training_window"]["start"])
    assert reference["date"].max() == end and current["date"].min() > end
    assert current["date"].max() == features["date"].max()
    assert context["model_version"] == info["version"] and context["current_rows"] == len(current)

    _, last5, _ = core.split_windows(features, info, current_days=5)
    assert last5["date"].nunique() == 5 and len(last5) == 5 * features["ticker"].nunique()


def test_a_volatility_regime_after_training_is_an_alert_and_none_is_ok() -> None:
    # 20 tickers x 100 held-out dates: rolling 20-day features are autocorrelated, so fewer rows
    # than this leave PSI noisy enough to warn on calm data (see README).
    calm = regime_features(seed=1)
    assert core.drift_for_model(calm, model_info_for(calm)).level == "ok"

    wild = regime_features(change_at=420, seed=1)  # the held-out 20 % starts near row 400
    report = core.drift_for_model(wild, model_info_for(wild))
    assert report.level == "alert"
    assert report.worst.feature in {"ret_vol_5", "ret_vol_20"}
    assert report.context["reference_window"].startswith("2021-")


def test_model_info_shapes_and_empty_windows_are_clear_errors() -> None:
    features = regime_features(n_days=120, n_tickers=2)
    first, last = features["date"].min(), features["date"].max()
    older_shape = {"training_window": {"first": str(first.date()), "last": str((last - pd.Timedelta(days=30)).date())}}
    assert core.drift_for_model(features, older_shape).features  # first/last accepted as well
    with pytest.raises(ConfigError, match="training_window"):
        core.split_windows(features, {})
    with pytest.raises(ConfigError, match="after the training window"):
        core.split_windows(features, {"training_window": {"start": str(first.date()), "end": str(last.date())}})
    with pytest.raises(ConfigError, match="No feature row lies in the training window"):
        core.split_windows(features, {"training_window": {"start": "1990-01-01", "end": "1990-02-01"}})
    with pytest.raises(ConfigError, match="current_days"):
        core.split_windows(features, older_shape, current_days=-1)
