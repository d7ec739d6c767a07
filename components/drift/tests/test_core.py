"""The drift stage's core: windows from train's model_info, returns-based features only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from components.drift import core
from components.drift.tests.support import model_info_for, regime_features, write_shards
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


@pytest.mark.parametrize("current_days", [0, 7])
def test_one_shard_and_four_shards_of_the_same_rows_give_the_same_report(tmp_path: Path, current_days: int) -> None:
    features = regime_features(change_at=430, seed=5)
    info = model_info_for(features)
    one, rows_one = core.drift_for_shards(write_shards(features, tmp_path / "one", 1), info, current_days=current_days)
    four, rows_four = core.drift_for_shards(write_shards(features, tmp_path / "four", 4), info,
                                            current_days=current_days)
    assert rows_one == rows_four == len(features)
    assert one.context == four.context == core.drift_for_model(features, info, current_days=current_days).context
    assert (one.score, one.level) == (four.score, four.level)
    for a, b in zip(one.features, four.features, strict=True):
        # Sketch counts are exact whatever the sharding: PSI and KS are the very same floats.
        assert (a.feature, a.psi, a.ks_statistic, a.ks_p_value, a.level, a.ks_breach, a.n_reference, a.n_current) \
            == (b.feature, b.psi, b.ks_statistic, b.ks_p_value, b.level, b.ks_breach, b.n_reference, b.n_current)
        for stat in ("reference_mean", "current_mean", "reference_std", "current_std"):
            assert getattr(a, stat) == pytest.approx(getattr(b, stat), rel=1e-12, abs=1e-15)
    if current_days:
        assert four.context["current_rows"] == current_days * features["ticker"].nunique()
    else:
        assert four.level == "alert"


def test_windows_in_shards_follow_the_whole_data(tmp_path: Path) -> None:
    """A shard may hold no current (or no reference) row: the windows are decided over all shards."""
    features = regime_features(n_days=200, n_tickers=6, seed=2)
    info = model_info_for(features)
    late = features["ticker"].isin(["T0", "T1"]) | (features["date"] < pd.Timestamp(info["training_window"]["end"]))
    paths = write_shards(features[late], tmp_path, 3)
    report, _ = core.drift_for_shards(paths, info, current_days=3)
    assert report.context["current_rows"] == 3 * 2  # the last 3 dates exist only for T0 and T1
    with pytest.raises(ConfigError, match="current_days"):
        core.drift_for_shards(paths, info, current_days=-1)
