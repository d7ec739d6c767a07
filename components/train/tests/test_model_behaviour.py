"""Model behaviour: a known dynamic is learned, invariances hold, the direction is right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.clean.core import clean_prices
from components.evaluate.core import evaluate_window
from components.features.core import build_features
from components.features.tests.support import clean_frame
from components.train.core import time_split, train_model
from pricecast.columns import FEATURE_COLUMNS

AR = 0.5


@pytest.fixture(scope="module")
def ar_data() -> pd.DataFrame:
    return build_features(clean_frame(n_tickers=20, n_days=400, seed=21, ar=AR))


@pytest.fixture(scope="module")
def ar_model(ar_data: pd.DataFrame):
    split = time_split(ar_data)
    model, info = train_model(ar_data, split)
    return model, info, split


def _response_to_latest_return(coefficients: dict[str, float], lag: int) -> float:
    """d prediction / d r_{t-lag}: the return enters its lag and both rolling means linearly."""
    return coefficients[f"ret_lag_{lag}"] + coefficients["ret_mean_5"] / 5 + coefficients["ret_mean_20"] / 20


def test_ar1_coefficient_is_recovered(ar_model) -> None:
    _, info, _ = ar_model
    assert _response_to_latest_return(info.coefficients, 0) == pytest.approx(AR, abs=0.03)
    for lag in (1, 2, 3, 4):  # an AR(1) has no memory beyond one day
        assert abs(_response_to_latest_return(info.coefficients, lag)) < 0.03


def test_ar1_model_beats_the_naive_forecast_on_every_test_window(ar_data, ar_model) -> None:
    model, _, split = ar_model
    for i in range(len(split.windows)):
        result = evaluate_window(ar_data, split, i, model)
        assert result.candidate.mae < 0.95 * result.naive.mae
        assert result.candidate.rmse < 0.95 * result.naive.rmse
        assert result.candidate.directional_accuracy > 0.6


def test_predictions_ignore_the_price_level(ar_data, ar_model) -> None:
    """Multiplying a ticker's prices by 1000 (a constant on the log level) changes no prediction."""
    model, _, _ = ar_model
    clean = clean_frame(n_tickers=20, n_days=400, seed=21, ar=AR)
    scaled = clean.assign(price=clean["price"] * 1000.0)
    scaled["log_return"] = scaled.groupby("ticker")["price"].transform(lambda s: np.log(s).diff())
    before = model.predict(ar_data[FEATURE_COLUMNS])
    after = model.predict(build_features(scaled)[FEATURE_COLUMNS])
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-9)


def test_predictions_ignore_ticker_names(ar_data, ar_model) -> None:
    """Renaming tickers (which reorders the rows) leaves each row's prediction unchanged."""
    model, _, _ = ar_model
    clean = clean_frame(n_tickers=20, n_days=400, seed=21, ar=AR)
    rng = np.random.default_rng(0)
    names = dict(zip(sorted(clean["ticker"].unique()), rng.permutation([f"Z{i:02d}" for i in range(20)]), strict=True))
    renamed = clean.assign(ticker=clean["ticker"].map(names)).sort_values(["ticker", "date"], ignore_index=True)
    renamed_features = build_features(renamed)
    renamed_features["ticker"] = renamed_features["ticker"].map({v: k for k, v in names.items()})

    key = ["ticker", "date"]
    before = ar_data[key].assign(pred=model.predict(ar_data[FEATURE_COLUMNS]))
    after = renamed_features[key].assign(pred=model.predict(renamed_features[FEATURE_COLUMNS]))
    merged = before.merge(after, on=key, suffixes=("_before", "_after"), validate="one_to_one")
    assert len(merged) == len(before)
    np.testing.assert_array_equal(merged["pred_before"], merged["pred_after"])


def test_direction_follows_the_latest_move_under_positive_autocorrelation(ar_model) -> None:
    model, _, _ = ar_model
    dates = pd.bdate_range("2024-01-01", periods=40)
    flat = np.full(40, 100.0)
    up, down = flat.copy(), flat.copy()
    up[-1], down[-1] = 103.0, 97.0
    # The pipeline's clean + features on one series, as the server runs them on a request.
    def latest_row(prices: np.ndarray) -> pd.DataFrame:
        clean, _ = clean_prices(pd.DataFrame({"date": dates, "ticker": "SERIES", "price": prices}))
        return build_features(clean)[FEATURE_COLUMNS].tail(1)

    predict = {name: model.predict(latest_row(p))[0] for name, p in (("up", up), ("down", down), ("flat", flat))}
    assert predict["up"] > predict["flat"] > predict["down"]
    assert predict["up"] > 0 > predict["down"]
