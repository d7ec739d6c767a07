"""The seeded generator: deterministic, the documented shape, and a learnable AR(1) signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.ingest.generator import generate_prices, ticker_names

PARAMS = {"start_date": "2020-01-01", "drift": 0.05, "volatility": 0.25, "ar_coef": 0.15}


def _returns(frame: pd.DataFrame) -> pd.Series:
    returns = np.log(frame["price"]).diff()
    return returns[frame["ticker"] == frame["ticker"].shift()]


def test_same_seed_same_frame_other_seed_other_prices():
    a = generate_prices(5, 100, seed=7, **PARAMS)
    b = generate_prices(5, 100, seed=7, **PARAMS)
    c = generate_prices(5, 100, seed=8, **PARAMS)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["price"], c["price"])


def test_shape_dtypes_calendar_and_order():
    frame = generate_prices(3, 50, seed=1, **PARAMS)
    assert len(frame) == 150
    assert list(frame.columns) == ["date", "ticker", "price"]
    assert str(frame["date"].dtype) == "datetime64[ns]" and frame["price"].dtype == np.float64
    assert frame["ticker"].unique().tolist() == ["T0001", "T0002", "T0003"]
    dates = frame.loc[frame["ticker"] == "T0001", "date"]
    assert dates.iloc[0] == pd.Timestamp("2020-01-01") and (dates.dt.day_of_week < 5).all()
    assert frame.equals(frame.sort_values(["ticker", "date"]))
    assert (frame["price"] > 0).all()


def test_the_ar1_term_is_in_the_returns_and_volatility_is_as_asked():
    frame = generate_prices(40, 1500, seed=3, **{**PARAMS, "ar_coef": 0.3})
    returns = _returns(frame)
    lag1 = returns.groupby(frame["ticker"]).apply(lambda r: r.autocorr(1)).mean()
    assert lag1 == pytest.approx(0.3, abs=0.03)
    annual_vol = returns.std() * np.sqrt(252)
    assert annual_vol == pytest.approx(0.25, rel=0.15)


def test_no_ar_term_means_no_autocorrelation():
    frame = generate_prices(40, 1500, seed=3, **{**PARAMS, "ar_coef": 0.0})
    lag1 = _returns(frame).groupby(frame["ticker"]).apply(lambda r: r.autocorr(1)).mean()
    assert abs(lag1) < 0.02


def test_ticker_names_sort_like_their_numbers():
    names = ticker_names(12_000)
    assert names[0] == "T00001" and names == sorted(names)


def test_up_to_one_block_of_tickers_the_data_is_what_one_stream_of_the_seed_always_made():
    # Block 0's stream is SeedSequence([seed, 0]), which numpy hashes exactly as SeedSequence(seed)
    # (trailing zero words do not change the pool): up to 256 tickers (make run's 20, the
    # examples' 5) every price is what np.random.default_rng(seed) made before blocks existed.
    frame = generate_prices(3, 4, seed=7, **PARAMS)
    assert frame["price"].tolist() == [12.58, 12.4454, 12.4464, 12.5943, 412.4019, 416.5231, 409.2192, 396.9957,
                                       400.564, 403.2162, 403.3285, 399.7905]
