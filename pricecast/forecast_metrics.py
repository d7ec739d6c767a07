"""Forecast metrics in price space, shared by train (in-sample), evaluate (test windows) and report.

Not the server's Prometheus metrics (``serving/metrics.py``): these score forecasts.

A model predicts the next-day log return r̂; its price forecast is ``price_t * exp(r̂)`` and the
actual next price is ``price_t * exp(r)``. The naive last-value forecast predicts r̂ = 0.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from pricecast.errors import NumericRangeError


@dataclasses.dataclass(frozen=True)
class ForecastMetrics:
    """Errors of one forecaster on one set of rows. Lower is better except directional accuracy."""

    name: str
    n: int
    mae: float
    rmse: float
    mape: float
    directional_accuracy: float | None
    n_direction: int

    def get(self, metric: str) -> float | None:
        if metric not in METRICS:
            raise KeyError(metric)
        return getattr(self, metric)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForecastMetrics:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


METRICS: tuple[str, ...] = ("mae", "rmse", "mape", "directional_accuracy")
HIGHER_IS_BETTER: frozenset[str] = frozenset({"directional_accuracy"})


def forecast_metrics(
    name: str,
    price: np.ndarray,
    actual_return: np.ndarray,
    predicted_return: np.ndarray | None,
) -> ForecastMetrics:
    """MAE, RMSE, MAPE (percent) of price forecasts and directional accuracy of returns.

    Args:
        name: Who forecast: ``candidate``, ``active`` or ``naive``.
        price: Price at the forecast origin t (> 0).
        actual_return: The realised log return from t to t+1 (the ``target``).
        predicted_return: The forecast log return; None for the naive forecast (r̂ = 0), whose
            direction is undefined so its directional accuracy is None.

    Returns:
        The metrics. Directional accuracy counts only rows whose actual return is not zero.

    Raises:
        NumericRangeError: A forecast or an actual price overflows float64 (prices near 1e300
            with large returns, or a forecast of an absurd return), so no error is finite.
    """
    price = np.asarray(price, dtype=np.float64)
    actual_return = np.asarray(actual_return, dtype=np.float64)
    n = int(price.shape[0])
    if n == 0:
        raise ValueError("forecast_metrics needs at least one row")
    pred = np.zeros(n) if predicted_return is None else np.asarray(predicted_return, dtype=np.float64)
    actual = price * np.exp(actual_return)
    with np.errstate(over="ignore", invalid="ignore"):
        abs_error = np.abs(price * np.exp(pred) - actual)
    if not np.isfinite(abs_error).all():
        bad = int((~np.isfinite(abs_error)).sum())
        raise NumericRangeError(
            f"The {name} forecast errors overflow float64 on {bad:,} of {n:,} rows (prices up to "
            f"{np.nanmax(price):.3g}, predicted log returns up to {np.nanmax(np.abs(pred)):.3g}).",
            "Rescale the prices to a moderate range (the model uses returns, units do not matter) and "
            "check the source for spikes that clean could not clip (fewer than 20 returns per ticker).",
        )

    moved = actual_return != 0
    n_direction = int(moved.sum())
    direction: float | None = None
    if predicted_return is not None and n_direction:
        direction = float(np.mean(np.sign(pred[moved]) == np.sign(actual_return[moved])))
    return ForecastMetrics(
        name=name,
        n=n,
        mae=float(abs_error.mean()),
        rmse=_rms(abs_error, np.ones(n)),
        mape=float(100.0 * np.mean(abs_error / actual)),
        directional_accuracy=direction,
        n_direction=n_direction,
    )


def pool(name: str, parts: list[ForecastMetrics]) -> ForecastMetrics:
    """Metrics over the union of disjoint row sets, from each set's metrics.

    MAE and MAPE are row-weighted means; RMSE pools the mean squared errors (so it equals the RMSE
    over all rows); directional accuracy is weighted by the rows whose direction counts.
    """
    n = sum(p.n for p in parts)
    if n == 0:
        raise ValueError("pool needs at least one row")
    directional = [p for p in parts if p.directional_accuracy is not None]
    n_direction = sum(p.n_direction for p in directional)
    return ForecastMetrics(
        name=name,
        n=n,
        mae=sum(p.mae * p.n for p in parts) / n,
        rmse=_rms(np.array([p.rmse for p in parts]), np.array([p.n for p in parts], dtype=np.float64)),
        mape=sum(p.mape * p.n for p in parts) / n,
        directional_accuracy=(
            sum(p.directional_accuracy * p.n_direction for p in directional) / n_direction  # type: ignore[operator]
            if directional and n_direction else None
        ),
        n_direction=sum(p.n_direction for p in parts),
    )


def _rms(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted root mean square, scaled by the largest value first: squares of errors near 1e300
    overflow and of errors near 1e-300 vanish, their ratios to the largest do neither."""
    largest = float(np.max(values)) if values.size else 0.0
    if largest == 0.0:
        return 0.0
    ratio = values / largest
    return largest * math.sqrt(float(np.sum(weights * ratio * ratio) / np.sum(weights)))


def format_metric(metric: str, value: float | None) -> str:
    """A metric value as a person reads it, with the same decimals wherever it appears.

    MAPE in percent with 3 decimals, directional accuracy in percent with 1, MAE and RMSE (in
    price units) with 3, row counts as whole numbers.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if metric == "mape":
        return f"{value:.3f}%"
    if metric == "directional_accuracy":
        return f"{100 * value:.1f}%"
    if metric in ("n", "n_direction"):
        return f"{int(value):,}"
    return f"{value:.3f}"


@dataclasses.dataclass(frozen=True)
class WindowResult:
    """The scores of one test window, and what the report plots from it.

    The evaluate stage writes it (one entry per window of its ``window_results`` artifact) and the
    report stage reads it.
    """

    window_index: int
    start: str
    end: str
    n: int
    candidate: ForecastMetrics
    naive: ForecastMetrics
    active: ForecastMetrics | None
    active_version: str | None
    samples: dict[str, list[dict[str, Any]]]  # ticker -> its forecasts next to the actual prices
    residuals_pct: list[float]
    # The active model's last training date, when it falls inside this window: its rows up to
    # that date (active_excluded_rows) are not scored, and the candidate is also scored on the
    # rest (candidate_vs_active). None and 0 when the active model is out of sample throughout.
    active_trained_until: str | None = None
    active_excluded_rows: int = 0
    candidate_vs_active: ForecastMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("candidate", "naive", "active", "candidate_vs_active"):
            metrics = getattr(self, name)
            data[name] = metrics.to_dict() if metrics else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowResult:
        metrics = {name: ForecastMetrics.from_dict(data[name]) if data.get(name) else None
                   for name in ("candidate", "naive", "active", "candidate_vs_active")}
        return cls(**{**data, **metrics})
