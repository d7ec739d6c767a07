"""Forecast metrics pooled over shards equal the metrics over all their rows (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from pricecast.forecast_metrics import forecast_metrics, pool


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    price = rng.lognormal(3, 1.5, n)  # prices from cents to thousands
    actual = rng.normal(0, 0.02, n)
    actual[rng.random(n) < 0.1] = 0.0  # unchanged prices: no direction to count
    predicted = 0.3 * actual + rng.normal(0, 0.01, n)
    return price, actual, predicted


@pytest.mark.parametrize("parts", [1, 2, 7, 16])
@pytest.mark.parametrize("forecaster", ["candidate", "naive"])
def test_pooled_shard_metrics_equal_the_metrics_over_all_rows(parts: int, forecaster: str) -> None:
    n = 20_000
    price, actual, predicted = _rows(n, seed=parts)
    rng = np.random.default_rng(parts + 1)
    shard = rng.integers(0, parts, n)  # uneven, like tickers hashed to shards
    pieces = [forecast_metrics(forecaster, price[shard == i], actual[shard == i],
                               None if forecaster == "naive" else predicted[shard == i])
              for i in range(parts) if (shard == i).any()]
    whole = forecast_metrics(forecaster, price, actual, None if forecaster == "naive" else predicted)
    pooled = pool(forecaster, pieces)
    assert (pooled.name, pooled.n, pooled.n_direction) == (whole.name, whole.n, whole.n_direction)
    for metric in ("mae", "rmse", "mape"):
        assert pooled.get(metric) == pytest.approx(whole.get(metric), rel=1e-12), metric
    if forecaster == "naive":
        assert pooled.directional_accuracy is None and whole.directional_accuracy is None
    else:
        assert pooled.directional_accuracy == pytest.approx(whole.directional_accuracy, rel=1e-12)


def test_a_shard_without_moving_prices_does_not_dilute_directional_accuracy() -> None:
    price, actual, predicted = _rows(1_000, seed=3)
    flat = forecast_metrics("candidate", price[:50], np.zeros(50), predicted[:50])
    moving = forecast_metrics("candidate", price[50:], actual[50:], predicted[50:])
    assert flat.directional_accuracy is None and flat.n_direction == 0
    whole = forecast_metrics("candidate", price, np.r_[np.zeros(50), actual[50:]], predicted)
    pooled = pool("candidate", [flat, moving])
    assert pooled.directional_accuracy == pytest.approx(whole.directional_accuracy, rel=1e-12)
    assert pooled.rmse == pytest.approx(whole.rmse, rel=1e-12) and pooled.n == 1_000
