"""Evaluate: score the candidate, the naive last-value forecast and the active model on the test windows.

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

Sharded features are scored one shard at a time (:func:`evaluate_shards`): each shard gives a
:class:`WindowPart` per window (metrics, ticker names, plot and residual samples of its rows),
and :func:`combine` pools the parts into the window's :class:`WindowResult`. The metrics pool
from their sums (:func:`pricecast.forecast_metrics.pool`), never as means of shard means, and
the samples are cut from the window's rows in shard order, so one shard and the same rows split
into many give the same result. :func:`evaluate_window` is the one-frame case of the same code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pricecast import frames, modelio
from pricecast.columns import ACTUAL_RETURN, FEATURE_COLUMNS, TARGET
from pricecast.errors import ConfigError
from pricecast.forecast_metrics import ForecastMetrics, WindowResult, forecast_metrics, pool
from pricecast.time_split import DateLike, Split, day, iso_day, window_mask

if TYPE_CHECKING:  # the task reads features as frames.Columns, not as pandas frames
    import pandas as pd

SAMPLE_ROWS = 250
RESIDUAL_SAMPLE = 2000
DEFAULT_PLOT_TICKERS = 3  # plotted when the run names none: the first tickers in sort order
MAX_PLOT_TICKERS = 10  # one panel each in the report; more would not be read

@dataclasses.dataclass(frozen=True)
class WindowPart:
    """One window's scores on one part of its rows (a shard's): what :func:`combine` pools.

    Metrics are None when the part has no such rows. ``samples`` holds the first
    ``SAMPLE_ROWS`` forecasts of the part's candidate plot tickers (the wanted ones it holds, or
    its first ``DEFAULT_PLOT_TICKERS`` in sort order, which include every ticker among the first
    ``DEFAULT_PLOT_TICKERS`` of the union); ``residuals_pct`` the part's share of the window's
    strided residual sample.
    """

    n: int
    candidate: ForecastMetrics | None
    naive: ForecastMetrics | None
    active: ForecastMetrics | None  # on the rows after the active model's training window
    candidate_vs_active: ForecastMetrics | None  # the candidate on those same rows
    active_excluded_rows: int
    tickers: frozenset[str]
    samples: dict[str, list[dict[str, Any]]]
    residuals_pct: list[float]


@dataclasses.dataclass(frozen=True)
class AffineModel:
    """A pricecast model as the server runs it: one affine map, ``x @ weights + intercept``."""

    form: modelio.LinearForm

    def predict(self, x: Mapping[str, np.ndarray] | pd.DataFrame) -> np.ndarray:
        """Forecasts of the rows of ``x``: its feature columns by name (a frame or a dict of arrays)."""
        columns = list(self.form.feature_names) or list(x.keys())
        matrix = np.column_stack([np.asarray(x[c], dtype=np.float64) for c in columns])
        return matrix @ self.form.weights + self.form.intercept


def predict(model: Any, x: dict[str, np.ndarray]) -> np.ndarray:
    """``model``'s forecasts of the rows whose feature columns ``x`` holds, as float64."""
    if isinstance(model, AffineModel):
        return model.predict(x)
    import pandas as pd  # another model (scikit-learn's) reads a frame with its feature names

    return np.asarray(model.predict(pd.DataFrame(x)), dtype=np.float64)


def load_model(data: bytes) -> Any:
    """A model's verified skops bytes as something with ``predict``, without scikit-learn if it can.

    A pricecast model (scalers then Ridge) is read as its affine map
    (:func:`pricecast.modelio.read_linear`, as the model server reads it), so the task never
    imports scikit-learn, SciPy and skops (about 2 s of its start on 2 busy cores) and scores
    exactly the map that is served. Anything else goes through :func:`pricecast.modelio.loads`.
    """
    form = modelio.read_linear(data)
    return AffineModel(form) if form is not None else modelio.loads(data)


def evaluate_window(
    features_df: pd.DataFrame,
    split: Split,
    window_index: int,
    model: Any,
    active_model: Any | None = None,
    active_version: str | None = None,
    active_trained_until: DateLike | None = None,
    feature_names: Sequence[str] = tuple(FEATURE_COLUMNS),
    plot_tickers: Sequence[str] = (),
) -> WindowResult:
    """Score the candidate, the naive forecast and (when given) the active model on one window.

    Args:
        features_df: The features stage's output (all rows, or at least the window's): a
            pandas frame or :class:`pricecast.frames.Columns`.
        split: The split the candidate was trained with (its ``model_info``).
        window_index: Which test window, from 0.
        model: The candidate: anything with ``predict(DataFrame[feature_names])`` returning
            next-period log returns (an :class:`AffineModel` also takes a dict of columns).
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
    rows = int(window_mask(features_df, split, window_index).sum())
    part = score_part(features_df, split, window_index, model, active_model, active_trained_until,
                      feature_names, plot_tickers, offset=0, window_rows=rows)
    return combine([part], split, window_index, active_model is not None, active_version,
                   active_trained_until, plot_tickers)


def evaluate_shards(
    paths: Sequence[str | Path],
    split: Split,
    model: Any,
    active_model: Any | None = None,
    active_version: str | None = None,
    active_trained_until: DateLike | None = None,
    feature_names: Sequence[str] = tuple(FEATURE_COLUMNS),
    plot_tickers: Sequence[str] = (),
) -> list[WindowResult]:
    """Score every test window of ``split`` on sharded features, holding one shard at a time.

    Two passes over the shards, each reading only the rows dated from the first test date on:
    the first reads two columns to count each window's rows per shard (the residual sample's
    stride depends on the window's total, and each shard must know where its rows fall in it),
    the second scores. Memory is bounded by one shard's test rows, not by the total.

    Args:
        paths: The shards' Parquet files, in shard order.
        split, model, active_model, active_version, active_trained_until, feature_names,
        plot_tickers: As for :func:`evaluate_window`.

    Returns:
        One result per window, in window order; each equals :func:`evaluate_window` on the
        shards' rows concatenated in shard order (metrics up to rounding, to about 1e-15).

    Raises:
        ConfigError: A window holds no row with a target, or a plot ticker is in none of the
            window's shards (the message names the tickers present).
    """
    paths = list(paths)
    test_rows = [("date", ">=", split.test_start)]
    windows = range(len(split.windows))
    counts = np.array([[int(window_mask(shard, split, w).sum()) for w in windows]
                       for shard in frames.read_shards(paths, columns=["date", TARGET], filters=test_rows)],
                      dtype=np.int64).reshape(len(paths), len(split.windows))
    offsets = np.cumsum(counts, axis=0) - counts  # where each shard's rows start in each window
    columns = list(dict.fromkeys(["date", "ticker", "price", ACTUAL_RETURN, TARGET, *feature_names]))
    parts: list[list[WindowPart]] = [[] for _ in windows]
    for k, shard in enumerate(frames.read_shards(paths, columns=columns, filters=test_rows)):
        for w in windows:
            parts[w].append(score_part(shard, split, w, model, active_model, active_trained_until,
                                       feature_names, plot_tickers, offset=int(offsets[k, w]),
                                       window_rows=int(counts[:, w].sum())))
        del shard
    return [combine(parts[w], split, w, active_model is not None, active_version, active_trained_until,
                    plot_tickers) for w in windows]


def score_part(
    features_df: pd.DataFrame,
    split: Split,
    window_index: int,
    model: Any,
    active_model: Any | None,
    active_trained_until: DateLike | None,
    feature_names: Sequence[str],
    plot_tickers: Sequence[str],
    *,
    offset: int,
    window_rows: int,
) -> WindowPart:
    """Score one part of a window's rows (one shard's) for :func:`combine`.

    Args:
        offset: How many of the window's rows come before this part's (earlier shards').
        window_rows: The window's rows over all parts: the residual sample's stride.
        Others: as for :func:`evaluate_window`.
    """
    mask = window_mask(features_df, split, window_index)
    codes, names = frames.factorize(features_df["ticker"])
    codes = codes[mask]
    present = np.unique(codes[codes >= 0])
    tickers = frozenset(names[c] for c in present)
    if not mask.any():
        return WindowPart(0, None, None, None, None, 0, tickers, {}, [])
    x = {c: np.asarray(features_df[c], dtype=np.float64)[mask] for c in feature_names}
    price = np.asarray(features_df["price"], dtype=np.float64)[mask]
    target = np.asarray(features_df[ACTUAL_RETURN], dtype=np.float64)[mask]
    dates = np.asarray(features_df["date"])[mask]
    predicted = predict(model, x)

    active, candidate_vs_active, excluded = None, None, 0
    if active_model is not None:
        out_of_sample = np.ones(len(price), dtype=bool)
        if active_trained_until is not None:
            out_of_sample = dates > day(active_trained_until)
        excluded = int((~out_of_sample).sum())
        if out_of_sample.any():
            p, t = price[out_of_sample], target[out_of_sample]
            in_active = {c: v[out_of_sample] for c, v in x.items()}
            active = forecast_metrics("active", p, t, predict(active_model, in_active))
            candidate_vs_active = forecast_metrics("candidate", p, t, predicted[out_of_sample])
    wanted = [t for t in plot_tickers if t in tickers] if plot_tickers else sorted(tickers)[:DEFAULT_PLOT_TICKERS]
    code_of = {names[c]: c for c in present}
    return WindowPart(
        n=len(price),
        candidate=forecast_metrics("candidate", price, target, predicted),
        naive=forecast_metrics("naive", price, target, None),
        active=active,
        candidate_vs_active=candidate_vs_active,
        active_excluded_rows=excluded,
        tickers=tickers,
        samples={ticker: _forecast_sample(codes == code_of[ticker], dates, price, target, predicted)
                 for ticker in wanted},
        residuals_pct=_residual_sample(price, target, predicted, offset, window_rows),
    )


def combine(
    parts: Sequence[WindowPart],
    split: Split,
    window_index: int,
    has_active: bool,
    active_version: str | None,
    active_trained_until: DateLike | None,
    plot_tickers: Sequence[str] = (),
) -> WindowResult:
    """One window's result from its parts (in shard order): metrics pooled from their sums.

    Args:
        has_active: Whether an active model was scored (its version is recorded only then).
        Others: as for :func:`evaluate_window`.

    Raises:
        ConfigError: No part holds a row with a target, or a plot ticker is in no part.
    """
    window = split.window(window_index)
    scored = [p for p in parts if p.n]
    if not scored:
        raise ConfigError(
            f"Test window {window_index} ({iso_day(window.start)}..{iso_day(window.end)}) has no row "
            "with a next-day price to score against.",
            "Use fewer test windows (n_windows) or a larger test_fraction.",
        )
    present = frozenset().union(*(p.tickers for p in parts))
    samples = {}
    for ticker in _plot_tickers(present, plot_tickers, window_index):
        rows = [row for p in scored for row in p.samples.get(ticker, ())]
        samples[ticker] = rows[:SAMPLE_ROWS]
    excluded = sum(p.active_excluded_rows for p in scored)
    out_of_sample = [p for p in scored if p.active is not None]
    return WindowResult(
        window_index=window_index,
        start=iso_day(window.start),
        end=iso_day(window.end),
        n=sum(p.n for p in scored),
        candidate=_pooled("candidate", [p.candidate for p in scored]),
        naive=_pooled("naive", [p.naive for p in scored]),
        active=_pooled("active", [p.active for p in out_of_sample]) if out_of_sample else None,
        active_version=active_version if has_active else None,
        samples=samples,
        residuals_pct=[v for p in scored for v in p.residuals_pct],
        active_trained_until=iso_day(active_trained_until) if excluded else None,
        active_excluded_rows=excluded,
        candidate_vs_active=(_pooled("candidate", [p.candidate_vs_active for p in out_of_sample])
                             if excluded and out_of_sample else None),
    )


def _pooled(name: str, parts: list[ForecastMetrics | None]) -> ForecastMetrics:
    """``pool`` over the parts; one part is returned as it is, so one frame scores exactly as before."""
    metrics = [p for p in parts if p is not None]
    return metrics[0] if len(metrics) == 1 else pool(name, metrics)


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


def _plot_tickers(tickers: frozenset[str], wanted: Sequence[str], window_index: int) -> list[str]:
    present = sorted(tickers)
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


def _forecast_sample(of_ticker: np.ndarray, dates: np.ndarray, price: np.ndarray, actual_return: np.ndarray,
                     predicted: np.ndarray) -> list[dict[str, Any]]:
    """One ticker's forecasts next to the actual next prices (at most SAMPLE_ROWS rows).

    ``of_ticker`` marks the ticker's rows among the window's rows (``dates``, ``price``...).
    """
    picked = np.flatnonzero(of_ticker)[:SAMPLE_ROWS]
    price = price[picked]
    days = np.datetime_as_string(np.asarray(dates[picked], dtype="datetime64[D]"), unit="D")
    return [
        {"date": str(d), "price": float(p), "actual": float(a), "forecast": float(f), "naive": float(p)}
        for d, p, a, f in zip(days, price, price * np.exp(actual_return[picked]),
                              price * np.exp(predicted[picked]), strict=True)
    ]


def _residual_sample(price: np.ndarray, target: np.ndarray, predicted: np.ndarray,
                     offset: int, window_rows: int) -> list[float]:
    """Candidate errors in percent of the actual price, evenly strided so the sample is stable.

    The window's rows 0, s, 2s, ... (s = window_rows // RESIDUAL_SAMPLE, at most RESIDUAL_SAMPLE
    of them) counted over all parts; this part holds rows offset .. offset + len(price) - 1.
    """
    stride = max(1, window_rows // RESIDUAL_SAMPLE)
    picked = np.arange((-offset) % stride, len(price), stride)
    picked = picked[offset + picked < RESIDUAL_SAMPLE * stride]
    actual = price[picked] * np.exp(target[picked])
    error_pct = 100.0 * (actual - price[picked] * np.exp(predicted[picked])) / actual
    return [float(v) for v in error_pct]
