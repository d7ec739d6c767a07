"""Unit and property tests of the feature transform: values, no look-ahead, boundaries.

The serving identity (raw prices -> the same rows) is tested with the serving path, in
tests/serving/test_features_from_prices.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.features.core import MIN_HISTORY, build_features
from components.features.tests.support import clean_frame
from pricecast.columns import FEATURE_COLUMNS
from pricecast.errors import SchemaValidationError

FRAME = clean_frame(n_tickers=3, n_days=90, seed=7, gaps={"T001": 50})
FEATURES = build_features(FRAME)


def _rows(features: pd.DataFrame) -> pd.DataFrame:
    return features.set_index(["ticker", "date"]).sort_index()


def test_values_match_a_pandas_groupby_rolling_reference() -> None:
    frame = clean_frame(n_tickers=2, n_days=60, seed=3)
    got = _rows(build_features(frame))
    groups = frame.groupby(["ticker", "segment"])["log_return"]
    ref = frame.assign(
        ret_lag_2=groups.shift(2),
        ret_mean_5=groups.transform(lambda s: s.rolling(5).mean()),
        ret_vol_20=groups.transform(lambda s: s.rolling(20).std()),
        price_vs_ma_20=np.log(frame["price"] / frame.groupby("ticker")["price"].transform(
            lambda s: s.rolling(20).mean())),
        dow=frame["date"].dt.day_of_week,
    ).set_index(["ticker", "date"]).loc[got.index]
    for column in ("ret_lag_2", "ret_mean_5", "ret_vol_20", "price_vs_ma_20"):
        np.testing.assert_allclose(got[column], ref[column], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got["dow_sin"], np.sin(2 * np.pi * ref["dow"] / 7), atol=1e-12)
    assert list(build_features(frame).columns[-len(FEATURE_COLUMNS):]) == FEATURE_COLUMNS


def test_output_has_clean_columns_target_and_features_without_nans() -> None:
    assert list(FEATURES.columns) == [*FRAME.columns, "target", "actual_return", *FEATURE_COLUMNS]
    assert not FEATURES[FEATURE_COLUMNS].isna().any().any()
    # Unclipped, from the prices; NaN exactly where the (clipped) target is.
    assert (FEATURES["actual_return"].isna() == FEATURES["target"].isna()).all()


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=89), perturb_seed=st.integers(0, 2**32 - 1))
def test_no_look_ahead_features_at_t_ignore_everything_after_t(cut: int, perturb_seed: int) -> None:
    """Features at t are identical whether the future is absent, or present with any values."""
    cut_date = FRAME["date"].unique()[cut]
    past = FRAME["date"] <= cut_date
    truncated = build_features(FRAME[past].reset_index(drop=True))

    rng = np.random.default_rng(perturb_seed)
    rewritten = FRAME.copy()
    shock = np.where(past, 0.0, rng.normal(0, 0.3, len(FRAME)))
    rewritten["price"] = FRAME["price"] * np.exp(shock)
    rewritten["log_return"] = rewritten.groupby("ticker")["price"].transform(lambda s: np.log(s).diff())
    rewritten.loc[FRAME["log_return"].isna(), "log_return"] = np.nan  # keep the gap's segment start
    future_changed = _rows(build_features(rewritten))

    full = _rows(FEATURES)
    at_or_before = full.index.get_level_values("date") <= cut_date
    expected = full.loc[at_or_before, FEATURE_COLUMNS]
    pd.testing.assert_frame_equal(_rows(truncated)[FEATURE_COLUMNS], expected, check_exact=True)
    pd.testing.assert_frame_equal(future_changed.loc[at_or_before, FEATURE_COLUMNS], expected, check_exact=True)


def test_target_is_the_next_rows_return_of_the_same_ticker_and_segment() -> None:
    clean = FRAME.set_index(["ticker", "date"])
    for ticker, rows in FEATURES.groupby("ticker"):
        dates = clean.loc[ticker].index
        nxt = {d: dates[i + 1] for i, d in enumerate(dates[:-1])}
        for date, target in zip(rows["date"], rows["target"], strict=True):
            if date in nxt and not np.isnan(clean.loc[(ticker, nxt[date]), "log_return"]):
                assert target == clean.loc[(ticker, nxt[date]), "log_return"]
            else:
                assert np.isnan(target)
    last_rows = FEATURES.groupby("ticker").tail(1)
    assert last_rows["date"].eq(FRAME["date"].max()).all()
    assert last_rows["target"].isna().all()


def test_windows_restart_after_a_gap_and_never_span_tickers() -> None:
    t001 = FEATURES[FEATURES["ticker"] == "T001"]
    dates = FRAME["date"].unique()
    # Segment 0 has rows 0..49: complete from row 20; its last row (49) is kept with target NaN.
    seg0 = t001[t001["segment"] == 0]
    assert seg0["date"].min() == dates[MIN_HISTORY - 1] and seg0["date"].max() == dates[49]
    assert np.isnan(seg0["target"].iloc[-1])
    # Segment 1 starts at row 50 (its return spans the gap: NaN) and, like a new ticker, needs
    # MIN_HISTORY prices of its own: first complete row is 50 + MIN_HISTORY - 1.
    assert t001[t001["segment"] == 1]["date"].min() == dates[50 + MIN_HISTORY - 1]

    # Each ticker alone gives exactly the rows it gets among the others: no leakage.
    for ticker in FRAME["ticker"].unique():
        alone = build_features(FRAME[FRAME["ticker"] == ticker].reset_index(drop=True))
        pd.testing.assert_frame_equal(
            alone.reset_index(drop=True),
            FEATURES[FEATURES["ticker"] == ticker].reset_index(drop=True),
            check_exact=True,
        )


def test_unsorted_or_incomplete_input_is_refused_with_the_fix() -> None:
    with pytest.raises(SchemaValidationError, match="sorted by \\(ticker, date\\)"):
        build_features(FRAME.sample(frac=1.0, random_state=0))
    with pytest.raises(SchemaValidationError, match="missing: log_return") as info:
        build_features(FRAME.drop(columns=["log_return"]))
    assert info.value.diff["missing"] == ["log_return"]


def test_empty_and_too_short_inputs_give_empty_frames_with_all_columns() -> None:
    for frame in (FRAME.iloc[:0], FRAME.iloc[: MIN_HISTORY - 1]):
        out = build_features(frame)
        assert out.empty and {"target", *FEATURE_COLUMNS} <= set(out.columns)


# --------------------------------------------------------------------------- frequency (issue 13)
def test_daily_data_keeps_the_served_feature_list_and_weekly_monthly_drop_the_weekday():
    from pricecast.columns import feature_columns

    assert feature_columns("business") == feature_columns("daily") == FEATURE_COLUMNS  # served format unchanged
    for frequency in ("weekly", "monthly"):
        names = feature_columns(frequency)
        assert names == [c for c in FEATURE_COLUMNS if not c.startswith("dow_")]
        assert {"month_sin", "month_cos"} <= set(names)


def test_monthly_features_are_month_of_year_and_windows_count_months():
    from components.clean.core import clean_prices
    from pricecast.columns import feature_columns
    from tests.support.prices import price_frame

    frame = price_frame("monthly", tickers=1, periods=40, start="2000-01-01")
    features = build_features(clean_prices(frame, frequency="monthly")[0], "monthly")
    assert list(features.columns[-len(feature_columns("monthly")):]) == feature_columns("monthly")
    assert "dow_sin" not in features
    assert len(features) == 40 - MIN_HISTORY + 1  # no month is a gap
    first = features.iloc[0]  # Sep 2001: the 21st month
    assert first["date"] == pd.Timestamp("2001-09-01")
    np.testing.assert_allclose([first["month_sin"], first["month_cos"]], [np.sin(2 * np.pi * 8 / 12), np.cos(2 * np.pi * 8 / 12)])
    assert first["target"] == pytest.approx(np.log(frame["price"].iloc[21] / frame["price"].iloc[20]))

