"""Evaluate: score the candidate, the naive last-value forecast and the active model on one test window.

Every forecaster is scored on the same rows (dated inside the window, with a known next-day
return) in price space, against the next price as it happened (``actual_return``, unclipped:
a forecast that missed a spike is scored as having missed it); see
:mod:`pricecast.forecast_metrics`. The result also carries a small sample for the report's
plots: the chosen tickers' forecasts against the actual prices (the first few tickers unless the
run names them) and a strided sample of the candidate's percentage errors.

The active model is scored out of sample only. Its training window can reach into this run's
test windows (another ``test_fraction``, a longer history), and scored on rows it was fitted on
it would look better than it is, so an honest candidate would lose to an in-sample incumbent.
Rows dated on or before the active model's last training date are left out of its score, and
the candidate is also scored on exactly the active model's rows (``candidate_vs_active``), so
the gate still compares like with like.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pricecast.columns import ACTUAL_RETURN, FEATURE_COLUMNS
from pricecast.errors import ConfigError
from pricecast.forecast_metrics import WindowResult, forecast_metrics
from pricecast.time_split import Split, window_mask

SAMPLE_ROWS = 250
RESIDUAL_SAMPLE = 2000
DEFAULT_PLOT_TICKERS = 3  # plotted when the run names none: the first tickers in sort order
MAX_PLOT_TICKERS = 10  # one panel each in the report; more would not be read


def evaluate_window(
    features_df: pd.DataFrame,
    split: Split,
    window_index: int,
    model: Any,
    active_model: Any | None = None,
    active_version: str | None = None,
    active_trained_until: str | pd.Timestamp | None = None,
    feature_names: Sequence[str] = tuple(FEATURE_COLUMNS),
    plot_tickers: Sequence[str] = (),
) -> WindowResult:
    """Score the candidate, the naive forecast and (when given) the active model on one window.

    Args:
        features_df: The features stage's output (all rows, or at least the window's).
        split: The split the candidate was trained with (its ``model_info``).
        window_index: Which test window, from 0.
        model: The candidate: anything with ``predict(DataFrame[feature_names])`` returning
            next-period log returns.
        active_model: The registry's active model (same features), or None on a first run.
        active_version: The active model's version, recorded with its scores.
        active_trained_until: The last date of the active model's training rows (its
            ``training_window.end``); rows dated up to it are in-sample and not scored for it.
        feature_names: The candidate's inputs (model_info's ``features``; they depend on the
            data's frequency).
        plot_tickers: Tickers whose forecasts the report plots; empty: the first
            ``DEFAULT_PLOT_TICKERS`` in sort order.

    Returns:
        The window's metrics and plot samples.

    Raises:
        ConfigError: The window does not exist or holds no row with a target, or a plot ticker
            is not in it.
    """
    mask = window_mask(features_df, split, window_index)
    window = split.windows[window_index]
    if not mask.any():
        raise ConfigError(
            f"Test window {window_index} ({window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}) has no row "
            "with a next-day price to score against.",
            "Use fewer test windows (n_windows) or a larger test_fraction.",
        )
    rows = features_df.loc[mask, ["date", "ticker", "price", ACTUAL_RETURN]].reset_index(drop=True)
    x = features_df.loc[mask, list(feature_names)].reset_index(drop=True)
    price, target = rows["price"].to_numpy(), rows[ACTUAL_RETURN].to_numpy()
    predicted = np.asarray(model.predict(x), dtype=np.float64)

    active, candidate_vs_active, excluded, trained_until = None, None, 0, None
    if active_model is not None:
        out_of_sample = np.ones(len(rows), dtype=bool)
        if active_trained_until is not None:
            out_of_sample = (rows["date"] > pd.Timestamp(active_trained_until)).to_numpy()
        excluded = int((~out_of_sample).sum())
        if excluded:
            trained_until = f"{pd.Timestamp(active_trained_until):%Y-%m-%d}"
        if out_of_sample.any():
            p, t = price[out_of_sample], target[out_of_sample]
            active = forecast_metrics("active", p, t, np.asarray(active_model.predict(x[out_of_sample]),
                                                                 dtype=np.float64))
            if excluded:
                candidate_vs_active = forecast_metrics("candidate", p, t, predicted[out_of_sample])
    samples = {ticker: _forecast_sample(rows, predicted, ticker)
               for ticker in _plot_tickers(rows, plot_tickers, window_index)}
    return WindowResult(
        window_index=window_index,
        start=f"{window.start:%Y-%m-%d}",
        end=f"{window.end:%Y-%m-%d}",
        n=len(rows),
        candidate=forecast_metrics("candidate", price, target, predicted),
        naive=forecast_metrics("naive", price, target, None),
        active=active,
        active_version=active_version if active_model is not None else None,
        samples=samples,
        residuals_pct=_residual_sample(price, target, predicted),
        active_trained_until=trained_until,
        active_excluded_rows=excluded,
        candidate_vs_active=candidate_vs_active,
    )


def parse_plot_tickers(text: str) -> list[str]:
    """``"AAA, BBB"`` -> ``["AAA", "BBB"]`` (a KFP parameter is a string; duplicates dropped).

    Raises:
        ConfigError: More than ``MAX_PLOT_TICKERS`` tickers.
    """
    tickers = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if len(tickers) > MAX_PLOT_TICKERS:
        raise ConfigError(f"report_tickers names {len(tickers)} tickers; the report plots at most {MAX_PLOT_TICKERS}.",
                          "Name fewer tickers (comma-separated), e.g. report_tickers: T0001,T0005.")
    return tickers


def _plot_tickers(rows: pd.DataFrame, wanted: Sequence[str], window_index: int) -> list[str]:
    present = sorted(map(str, rows["ticker"].unique()))
    if not wanted:
        return present[:DEFAULT_PLOT_TICKERS]
    missing = [t for t in wanted if t not in set(present)]
    if missing:
        shown = ", ".join(present[:10]) + (" …" if len(present) > 10 else "")
        raise ConfigError(
            f"report_tickers names {', '.join(missing)}, not in test window {window_index} (tickers: {shown}).",
            "Name tickers the data has (comma-separated), or leave report_tickers empty for the first few.",
        )
    return list(wanted)


def _forecast_sample(rows: pd.DataFrame, predicted: np.ndarray, ticker: str) -> list[dict[str, Any]]:
    """One ticker's forecasts next to the actual next prices (at most SAMPLE_ROWS rows)."""
    picked = np.flatnonzero((rows["ticker"].astype(str) == ticker).to_numpy())[:SAMPLE_ROWS]
    one = rows.iloc[picked]
    price = one["price"].to_numpy()
    forecast_date = one["date"].to_numpy()
    return [
        {"date": f"{pd.Timestamp(d):%Y-%m-%d}", "price": float(p), "actual": float(a),
         "forecast": float(f), "naive": float(p)}
        for d, p, a, f in zip(forecast_date, price, price * np.exp(one[ACTUAL_RETURN].to_numpy()),
                              price * np.exp(predicted[picked]), strict=True)
    ]


def _residual_sample(price: np.ndarray, target: np.ndarray, predicted: np.ndarray) -> list[float]:
    """Candidate errors in percent of the actual price, evenly strided so the sample is stable."""
    actual = price * np.exp(target)
    error_pct = 100.0 * (actual - price * np.exp(predicted)) / actual
    stride = max(1, len(error_pct) // RESIDUAL_SAMPLE)
    return [float(v) for v in error_pct[::stride][:RESIDUAL_SAMPLE]]
