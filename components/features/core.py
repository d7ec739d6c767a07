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
(:func:`feature_columns`): weekday and month for daily data, the month alone for weekly and
monthly closes, whose weekday never changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from components.clean.core import CLEAN_COLUMNS, clean_prices
from pricecast import frequency as freq
from pricecast import history
from pricecast.errors import ConfigError, SchemaValidationError

RETURN_LAGS = 5
SHORT_WINDOW = 5
LONG_WINDOW = history.FEATURE_WINDOW

FEATURE_COLUMNS: list[str] = [
    *(f"ret_lag_{k}" for k in range(RETURN_LAGS)),
    f"ret_mean_{SHORT_WINDOW}",
    f"ret_mean_{LONG_WINDOW}",
    f"ret_vol_{SHORT_WINDOW}",
    f"ret_vol_{LONG_WINDOW}",
    f"price_vs_ma_{LONG_WINDOW}",
    "dow_sin",
    "dow_cos",
    "month_sin",
    "month_cos",
]
# LONG_WINDOW returns need LONG_WINDOW + 1 prices: the first price of a segment has no return.
MIN_HISTORY: int = history.MIN_HISTORY
TARGET = "target"
CALENDAR_FEATURES = {"dow": ("dow_sin", "dow_cos"), "month": ("month_sin", "month_cos")}


def feature_columns(frequency: freq.Frequency | str = freq.Frequency.BUSINESS) -> list[str]:
    """The model's inputs at ``frequency``: :data:`FEATURE_COLUMNS` (business and calendar days),
    without the weekday features at weekly and monthly frequency."""
    kept = freq.spacing(frequency).calendar_features
    dropped = {c for kind, names in CALENDAR_FEATURES.items() if kind not in kept for c in names}
    return [c for c in FEATURE_COLUMNS if c not in dropped]

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
        last row, which is kept because it is the row a forecast starts from) and the features.
    """
    _check_columns(clean_df)
    names = feature_columns(frequency)
    n = len(clean_df)
    if n == 0:
        return clean_df.assign(**{TARGET: np.empty(0), **{c: np.empty(0) for c in names}})

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

    columns: dict[str, np.ndarray] = {TARGET: target[keep]}
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
    out.update((c, columns[c]) for c in (TARGET, *names))
    return pd.DataFrame(out, copy=False)


def features_from_prices(
    dates: Sequence[object] | pd.Series | np.ndarray,
    prices: Sequence[float] | pd.Series | np.ndarray,
    ticker: str = "SERIES",
    outlier_bounds: Mapping[str, Sequence[float] | None] | None = None,
    frequency: freq.Frequency | str = freq.Frequency.BUSINESS,
) -> pd.DataFrame:
    """One ticker's recent closes -> the clean stage's transform -> :func:`build_features`.

    This is the serving path: the model server calls it per request, so it runs exactly the code
    the pipeline ran on the training data (``clean_prices`` with its default gap and outlier
    rules, then the same features).

    Args:
        dates: Close dates, oldest first (anything :func:`pandas.to_datetime` reads).
        prices: Closing prices, one per date, all > 0.
        ticker: Name of the series: it picks the ticker's entry in ``outlier_bounds``.
        outlier_bounds: The training run's clipping bounds per ticker (the clean stage's
            artifact, stored with the model). With the ticker's entry, its returns are clipped
            exactly as in training; without it, the bounds are estimated from this window.
        frequency: The model's frequency: the dates must be spaced at it.

    Returns:
        The feature rows of the series; the last row is the latest date, the one to forecast from.

    Raises:
        ConfigError: Fewer than :data:`MIN_HISTORY` prices, or a long gap leaves fewer than
            :data:`MIN_HISTORY` consecutive prices before the last date.
        SchemaValidationError: Dates and prices differ in length, a date does not parse, dates
            are not strictly increasing, are spaced at another frequency than ``frequency``, or a
            price is not a finite positive number.
    """
    if len(prices) < MIN_HISTORY:
        raise ConfigError(
            f"{len(prices)} prices were given; the features need at least MIN_HISTORY={MIN_HISTORY} "
            "consecutive closes.",
            f"Send the last {MIN_HISTORY} or more closing prices, oldest first.",
        )
    validated = _validated_series(dates, prices, ticker)
    _check_frequency(validated, freq.Frequency(frequency))
    clean, _ = clean_prices(validated, bounds=outlier_bounds, frequency=frequency)
    features = build_features(clean, frequency)
    if features.empty or features["date"].iloc[-1] != validated["date"].iloc[-1]:
        raise ConfigError(
            f"A gap in the dates leaves fewer than MIN_HISTORY={MIN_HISTORY} consecutive closes before "
            "the last date.",
            f"Send at least {MIN_HISTORY} closes with no long gap before the date to forecast from.",
        )
    return features


def _check_frequency(series: pd.DataFrame, frequency: freq.Frequency) -> None:
    """The series' dates must be spaced at the model's frequency: a model of monthly returns
    fed daily closes would forecast a month from twenty days without any error. Business and
    calendar days both step one day: a short window cannot always tell them apart (a holiday-free
    stretch, a window shifted past a halt), and the clean rules of either fit the other."""
    detection = freq.detect(series["ticker"], series["date"])
    if detection.frequency is not None and freq.same_step(detection.frequency, frequency):
        return
    found = (f"{detection.frequency.value}" if detection.frequency is not None else
             f"{float(detection.series['median_days'].iloc[0]):g} days apart (median), no supported frequency")
    raise SchemaValidationError(
        f"The dates are {found}, but this model forecasts {freq.describe(frequency)}.",
        f"Send one close per {freq.spacing(frequency).period}, oldest first, as the model was trained on.",
    )


def _validated_series(dates: object, prices: object, ticker: str) -> pd.DataFrame:
    """What the validate stage guarantees, checked for one series coming from a request."""
    price = np.asarray(prices, dtype=np.float64)
    if len(dates) != len(price):  # type: ignore[arg-type]
        raise SchemaValidationError(
            f"{len(dates)} dates but {len(price)} prices were given.",  # type: ignore[arg-type]
            "Send one date per price.",
        )
    try:  # numpy parses ISO strings, dates and timestamps far faster than pandas' general parser
        day = np.asarray(dates, dtype="datetime64[D]")
    except (ValueError, TypeError) as exc:
        raise SchemaValidationError(f"A date could not be read ({exc}).", "Send ISO dates (YYYY-MM-DD).") from exc
    if np.isnat(day).any():
        raise SchemaValidationError("A date is missing.", "Send one ISO date (YYYY-MM-DD) per price.")
    if not (np.isfinite(price).all() and (price > 0).all()):
        raise SchemaValidationError("Every price must be a finite number above zero.",
                                    "Remove or correct the non-positive or missing prices.")
    if not (np.diff(day) > np.timedelta64(0)).all():
        raise SchemaValidationError("Dates must be strictly increasing with no repeats.",
                                    "Send the closes oldest first, one per date.")
    return pd.DataFrame({"date": day.astype("datetime64[ns]"), "ticker": ticker, "price": price})
