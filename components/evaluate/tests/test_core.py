"""Unit tests of the forecast metrics and the per-window evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.evaluate.core import SAMPLE_ROWS, evaluate_window, parse_plot_tickers
from components.features.core import build_features
from components.features.tests.support import clean_frame
from components.train.core import time_split, train_model, window_mask
from pricecast.errors import ConfigError
from pricecast.forecast_metrics import WindowResult, forecast_metrics, pool

PRICE = np.array([100.0, 200.0])
ACTUAL = np.log([1.10, 0.90])  # next prices 110 and 180
PREDICTED = np.log([1.05, 0.95])  # forecasts 105 and 190


def test_metrics_by_hand() -> None:
    m = forecast_metrics("candidate", PRICE, ACTUAL, PREDICTED)
    assert m.mae == pytest.approx(7.5)
    assert m.rmse == pytest.approx(math.sqrt((25 + 100) / 2))
    assert m.mape == pytest.approx(100 * (5 / 110 + 10 / 180) / 2)
    assert m.directional_accuracy == 1.0 and m.n == 2 and m.n_direction == 2


def test_naive_forecast_is_the_last_price_and_has_no_direction() -> None:
    m = forecast_metrics("naive", PRICE, ACTUAL, None)
    assert m.mae == pytest.approx(15.0)
    assert m.mape == pytest.approx(100 * (10 / 110 + 20 / 180) / 2)
    assert m.directional_accuracy is None


def test_directional_accuracy_skips_rows_that_did_not_move() -> None:
    m = forecast_metrics("candidate", np.ones(3), np.array([0.0, 0.01, -0.02]), np.array([0.5, 0.01, 0.01]))
    assert m.n_direction == 2 and m.directional_accuracy == 0.5


def test_pooled_metrics_equal_metrics_over_all_rows() -> None:
    rng = np.random.default_rng(1)
    price, actual, pred = rng.uniform(10, 100, 90), rng.normal(0, 0.02, 90), rng.normal(0, 0.01, 90)
    parts = [forecast_metrics("c", price[s], actual[s], pred[s]) for s in (slice(0, 20), slice(20, 90))]
    whole = forecast_metrics("c", price, actual, pred)
    pooled = pool("c", parts)
    for metric in ("mae", "rmse", "mape", "directional_accuracy"):
        assert pooled.get(metric) == pytest.approx(whole.get(metric), rel=1e-12)
    assert pooled.n == whole.n and pooled.n_direction == whole.n_direction


@pytest.fixture(scope="module")
def trained():
    features = build_features(clean_frame(n_tickers=4, n_days=300, seed=2, ar=0.3))
    split = time_split(features)
    model, _ = train_model(features, split)
    return features, split, model


def test_window_scores_every_row_with_a_target(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 1, model)
    assert result.n == window_mask(features, split, 1).sum()
    assert (result.start, result.end) == (f"{split.windows[1].start:%Y-%m-%d}", f"{split.windows[1].end:%Y-%m-%d}")
    assert result.active is None and result.active_version is None
    assert result.naive.directional_accuracy is None and result.candidate.directional_accuracy is not None


def test_active_model_is_scored_on_the_same_rows(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 0, model, active_model=model, active_version="v1")
    assert result.active is not None and result.active_version == "v1"
    assert {**result.active.to_dict(), "name": "x"} == {**result.candidate.to_dict(), "name": "x"}


def test_plot_samples_are_the_first_tickers_by_default_and_bounded(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 2, model)
    assert list(result.samples) == ["T000", "T001", "T002"]  # DEFAULT_PLOT_TICKERS of the four
    for ticker, sample in result.samples.items():
        assert 0 < len(sample) <= SAMPLE_ROWS
        first = sample[0]
        row = features[(features["ticker"] == ticker) & (features["date"] == first["date"])].iloc[0]
        assert first["actual"] == pytest.approx(row["price"] * math.exp(row["target"]))
        assert first["naive"] == row["price"]
    assert 0 < len(result.residuals_pct) <= result.n


def test_the_run_chooses_the_plotted_tickers(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 0, model, plot_tickers=parse_plot_tickers(" T003, T001,T003"))
    assert list(result.samples) == ["T003", "T001"]
    with pytest.raises(ConfigError, match="report_tickers names NOPE, not in test window 0"):
        evaluate_window(features, split, 0, model, plot_tickers=["NOPE"])
    with pytest.raises(ConfigError, match="at most 10"):
        parse_plot_tickers(",".join(f"T{i}" for i in range(11)))


def test_window_result_round_trips_through_json(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 0, model, active_model=model, active_version="v1")
    assert WindowResult.from_dict(result.to_dict()) == result


def test_window_without_rows_is_refused(trained) -> None:
    features, split, model = trained
    with pytest.raises(ConfigError, match="no row"):
        evaluate_window(features[features["date"] < split.test_start], split, 0, model)
    with pytest.raises(ConfigError, match="does not exist"):
        evaluate_window(features, split, 7, model)


# --------------------------------------------------------------------------- numeric extremes (issue 13)
@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e300])
def test_price_space_metrics_stay_finite_and_exact_at_any_price_scale(scale) -> None:
    price = np.array([100.0, 101.0, 99.0, 102.0]) * scale
    actual = np.array([0.01, -0.02, 0.03, 0.0])
    predicted = np.array([0.0, 0.01, -0.01, 0.02])
    scaled = forecast_metrics("candidate", price, actual, predicted)
    unit = forecast_metrics("candidate", price / scale, actual, predicted)
    # Squares of 1e300 errors overflowed to inf (RMSE inf, the KFP metadata crash); of 1e-300 ones, to 0.
    assert math.isfinite(scaled.rmse) and scaled.rmse > 0
    assert scaled.rmse == pytest.approx(unit.rmse * scale, rel=1e-12)
    assert scaled.mape == pytest.approx(unit.mape, rel=1e-12)
    pooled = pool("candidate", [scaled, scaled])
    assert pooled.rmse == pytest.approx(scaled.rmse, rel=1e-12)


def test_forecasts_that_overflow_are_a_named_error_not_an_infinite_metric() -> None:
    from pricecast.errors import NumericRangeError

    with pytest.raises(NumericRangeError, match="overflow float64 on 1 of 2 rows"):
        forecast_metrics("candidate", np.array([1e300, 1.0]), np.array([0.0, 0.0]), np.array([50.0, 0.0]))
