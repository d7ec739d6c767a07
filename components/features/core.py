"""Features: the one transform shared by the features stage and the model server (no skew).

Every feature at row t is a function of the prices and returns of the same ticker and segment
at t and before, never after (a property test proves it). Windows are computed by explicit,
position-ordered sums over shifted array slices rather than a global cumulative sum, so a row's
value depends only on its own window: the server, which sees a few dozen recent closes, gets
bit-for-bit the numbers the training stage computed from the full history.

The work is vectorized over all tickers at once: the clean frame is sorted by (ticker, date), so
groups are contiguous runs and a window is complete when the row sits far enough from its
group's first row.

Windows count periods of the data's frequency (:mod:`pricecast.frequency`): ``ret_mean_20`` is
20 days of daily closes or 20 months of monthly ones, and ``target`` is the next period's return.
The calendar features are the ones that carry information at that frequency
(:func:`pricecast.columns.feature_columns`): weekday and month for daily data, the month alone
for weekly and monthly closes, whose weekday never changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pricecast import frequency as freq
from pricecast.columns import (
    ACTUAL_RETURN,
    CLEAN_COLUMNS,
    FEATURE_COLUMNS,
    LONG_WINDOW,
    RETURN_LAGS,
    SHORT_WINDOW,
    TARGET,
    feature_columns,
)
from pricecast.errors import SchemaValidationError
from pricecast.history import MIN_HISTORY  # LONG_WINDOW returns need one price more

__all__ = ["FEATURE_COLUMNS", "MIN_HISTORY", "TARGET", "build_features", "feature_columns"]

# Weekday (Monday = 0, period 7 so weekend data also fits) and month on the unit circle: Friday
# sits next to Monday and December next to January.
_DOW_SIN, _DOW_COS = np.sin(2 * np.pi * np.arange(7) / 7), np.cos(2 * np.pi * np.arange(7) / 7)
_MONTH_SIN, _MONTH_COS = np.sin(2 * np.pi * np.arange(12) / 12), np.cos(2 * np.pi * np.arange(12) / 12)


# --------------------------------------------------------------------------- windows
def _window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Sum of ``x[i-w+1..i]`` at each i (NaN for i < w-1), added in window order.

    The fixed order (oldest to newest) makes each sum depend only on its window's values, which
    a cumulative sum over the whole array would not.
    """
    out = np.full(x.shape[0], np.nan)
    m = x.shape[0] - w + 1
    if m <= 0:
        return out
    acc = x[:m].copy()
    for j in range(1, w):
        acc += x[j:j + m]
    out[w - 1:] = acc
    return out


def _window_mean_std(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and sample standard deviation (ddof=1) by two passes over each window.

    Two passes instead of sum-of-squares: no cancellation when the mean dwarfs the spread.
    """
    mean = _window_sum(x, w) / w
    std = np.full(x.shape[0], np.nan)
    m = x.shape[0] - w + 1
    if m <= 0:
        return mean, std
    centre = mean[w - 1:]
    squares = np.zeros(m)
    tmp = np.empty(m)
    for j in range(w):
        np.subtract(x[j:j + m], centre, out=tmp)
        tmp *= tmp
        squares += tmp
    std[w - 1:] = np.sqrt(squares / (w - 1))
    return mean, std


# --------------------------------------------------------------------------- groups
def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in CLEAN_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaValidationError(
            f"The features stage needs the clean stage's columns; missing: {', '.join(missing)}.",
            "Feed it the output of the clean stage (columns: " + ", ".join(CLEAN_COLUMNS) + ").",
            diff={"expected": CLEAN_COLUMNS, "found": [str(c) for c in df.columns], "missing": missing},
        )


def _group_starts(df: pd.DataFrame) -> np.ndarray:
    """True on the first row of each (ticker, segment) run; checks the (ticker, date) order."""
    n = len(df)
    codes, uniques = pd.factorize(df["ticker"], sort=False)
    ticker_start = np.ones(n, dtype=bool)
    ticker_start[1:] = codes[1:] != codes[:-1]
    days = df["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    dates_rise = np.diff(days) > 0
    if int(ticker_start.sum()) != len(uniques) or not dates_rise[~ticker_start[1:]].all():
        raise SchemaValidationError(
            "The features stage needs rows sorted by (ticker, date) with one row per ticker and date.",
            "Run the clean stage first: it sorts and removes duplicates.",
        )
    segment = df["segment"].to_numpy()
    starts = ticker_start.copy()
    starts[1:] |= segment[1:] != segment[:-1]
    return starts


# --------------------------------------------------------------------------- public API
def build_features(clean_df: pd.DataFrame, frequency: freq.Frequency | str = freq.Frequency.BUSINESS) -> pd.DataFrame:
    """Add the next-period ``target`` and :func:`feature_columns` to a clean frame.

    Args:
        clean_df: The clean stage's output, sorted by (ticker, date), with columns
            :data:`CLEAN_COLUMNS`.
        frequency: The data's frequency; it picks the calendar features.

    Returns:
        The clean columns of every row whose feature windows are complete (at least
        :data:`MIN_HISTORY` prices of the same ticker and segment up to and including it), plus
        ``target`` (the next row's log return in the same ticker and segment; NaN on a segment's
        last row, which is kept because it is the row a forecast starts from), ``actual_return``
        (the same return unclipped, from the prices) and the features.
    """
    _check_columns(clean_df)
    names = feature_columns(frequency)
    n = len(clean_df)
    if n == 0:
        return clean_df.assign(**{TARGET: np.empty(0), ACTUAL_RETURN: np.empty(0),
                                  **{c: np.empty(0) for c in names}})

    starts = _group_starts(clean_df)
    idx = np.arange(n)
    position = idx - np.maximum.accumulate(np.where(starts, idx, 0))

    # A return at a group's first row spans a ticker change or a long gap: never usable.
    returns = clean_df["log_return"].to_numpy(dtype=np.float64, copy=True)
    returns[starts] = np.nan
    price = clean_df["price"].to_numpy(dtype=np.float64)

    nan_in_window = _window_sum(np.isnan(returns).astype(np.float64), LONG_WINDOW)
    keep = np.flatnonzero((position >= MIN_HISTORY - 1) & (nan_in_window == 0))

    target = np.full(n, np.nan)
    target[:-1] = returns[1:]  # NaN at the next group's start, so never crosses a boundary
    log_price = np.log(price)
    actual = np.full(n, np.nan)
    actual[:-1] = np.where(np.isnan(target[:-1]), np.nan, log_price[1:] - log_price[:-1])

    columns: dict[str, np.ndarray] = {TARGET: target[keep], ACTUAL_RETURN: actual[keep]}
    for k in range(RETURN_LAGS):
        columns[f"ret_lag_{k}"] = returns[keep - k]
    for w in (SHORT_WINDOW, LONG_WINDOW):
        mean, std = _window_mean_std(returns, w)
        columns[f"ret_mean_{w}"] = mean[keep]
        columns[f"ret_vol_{w}"] = std[keep]
    # Price relative to its rolling mean, in logs: scale-free, so a change of units is invisible.
    price_ma = _window_sum(price, LONG_WINDOW) / LONG_WINDOW
    columns[f"price_vs_ma_{LONG_WINDOW}"] = np.log(price[keep] / price_ma[keep])

    days = clean_df["date"].to_numpy().astype("datetime64[D]")[keep]
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    month = days.astype("datetime64[M]").astype(np.int64) % 12  # January = 0
    # Table lookups: a take of 7 or 12 values is far cheaper than sin/cos of millions.
    if "dow_sin" in names:
        columns["dow_sin"] = _DOW_SIN.take(weekday)
        columns["dow_cos"] = _DOW_COS.take(weekday)
    columns["month_sin"] = _MONTH_SIN.take(month)
    columns["month_cos"] = _MONTH_COS.take(month)

    out = {name: clean_df[name].array.take(keep) for name in clean_df.columns}
    out.update((c, columns[c]) for c in (TARGET, ACTUAL_RETURN, *names))
    return pd.DataFrame(out, copy=False)
