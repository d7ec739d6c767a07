"""Clean: sort, drop exact duplicates, split at long gaps, compute log returns, clip outliers.

The rules, in order:

1. **Sort** by (ticker, date). Unsorted input is normal (exports, concatenated files).
2. **Exact duplicate rows** (same ticker, date and price) are dropped: they add no information
   and would create a zero return. Conflicting duplicates never get here: validate rejects them.
3. **Gaps**, judged in periods of the data's frequency (:mod:`pricecast.frequency`): when
   consecutive dates of a ticker are more than ``max_gap_days`` business days apart (daily
   data: a halt, a delisting and relisting, missing months in the file), or more than one week
   or month apart at weekly or monthly frequency (``max_gap_days`` in whole periods, at least
   one), a new ``segment`` starts and the return across the gap is NaN. A 3-week move is not a
   daily return; features and targets never straddle a gap because they are computed per
   (ticker, segment).
4. **Returns**: ``log_return = log(p_t / p_{t-1})`` within a segment; NaN on a segment's first row.
5. **Outliers**: a return whose distance from its ticker's median exceeds ``outlier_sigma``
   robust sigmas (sigma = 1.4826 x MAD, which a few bad ticks cannot inflate the way they inflate
   a standard deviation) is *clipped* to that bound and flagged ``clipped``. Clipping, not
   dropping: dropping the row would delete a trading day and turn two daily returns into one
   two-day return, breaking the calendar that lags and targets rely on. A ticker with fewer
   than ``MIN_RETURNS_FOR_OUTLIERS`` returns or a MAD of 0 is not clipped (no reliable spread).
   The bounds each ticker got are in the report (``CleanReport.bounds``); train stores them with
   the model so the server clips a short window of raw prices exactly as training did
   (``clean_prices(..., bounds=...)``) instead of estimating a spread from a few weeks.
   **Bounds come from the training dates only** (``fit_before``, the split's ``test_start``,
   decided by the plan stage on every shard's dates, so a ticker's bounds do not depend on
   which shard it is in):
   estimated over the whole history, a spike in a test window widened them and changed the
   training rows. Test-window returns are still clipped with those bounds (the features there
   are computed as the server would compute them); evaluate scores forecasts against the
   unclipped next price.

Everything is vectorized over all tickers at once (no per-ticker Python loops): ~1-2 s for 5 M rows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pricecast import frequency as freq
from pricecast import grouped
from pricecast.errors import ConfigError, DataFormatError
from pricecast.time_split import Split, time_split

log = logging.getLogger("components.clean")

MAD_TO_SIGMA = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal data
MIN_RETURNS_FOR_OUTLIERS = 20
_DAY_BITS = 21  # 2^21 days (5,700 years) of calendar fit below the ticker code in a sort key


@dataclasses.dataclass(frozen=True)
class CleanReport:
    """What clean did and why: logged, and recorded on the stage and the artifact."""

    rows_in: int
    rows_out: int
    tickers: int
    duplicates_dropped: int
    gaps_found: int
    segments: int
    returns_clipped: int
    was_sorted: bool
    max_gap_days: int
    outlier_sigma: float
    # Bounds were estimated from returns dated before this day (ISO); None = the whole history.
    bounds_fit_before: str | None = None
    frequency: str = freq.Frequency.BUSINESS.value
    # Per ticker: (lower, upper) clipping bounds on log returns; NaN, NaN = not clipped. Large
    # (one entry per ticker), so not part of as_dict(): written as its own artifact.
    bounds: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def dropped(self) -> dict[str, int]:
        return {"exact_duplicate": self.duplicates_dropped}

    @property
    def flagged(self) -> dict[str, int]:
        return {"gap_starts_segment": self.gaps_found, "return_clipped": self.returns_clipped}

    def as_dict(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "bounds"}
        return {**fields, "dropped": self.dropped, "flagged": self.flagged}

    def bounds_document(self) -> dict[str, Any]:
        """The bounds as JSON-ready data: ``{"outlier_sigma": s, "tickers": {t: [lo, hi] | None}}``."""
        return {"outlier_sigma": self.outlier_sigma, "fit_before": self.bounds_fit_before,
                "tickers": {t: (None if np.isnan(lo) else [lo, hi]) for t, (lo, hi) in self.bounds.items()}}

    def _gap_words(self) -> str:
        periods = freq.max_gap_periods(self.frequency, self.max_gap_days)
        return f"{periods} {freq.spacing(self.frequency).period}{'s' if periods != 1 else ''}"

    def summary(self) -> str:
        return (f"{self.rows_in:,} rows in, {self.rows_out:,} out ({self.tickers:,} tickers); dropped "
                f"{self.duplicates_dropped:,} exact duplicates; {self.gaps_found:,} gaps > "
                f"{self._gap_words()} (new segments); {self.returns_clipped:,} returns "
                f"clipped at {self.outlier_sigma:g} robust sigmas; input "
                f"{'already' if self.was_sorted else 'not'} sorted")


def _sort_key(codes: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, int]:
    """One int64 per row ordering (ticker, date): the ticker code above 21 bits of day number.

    Sorting one int64 is far cheaper than sorting (string, date) pairs, and the sorted key gives
    back codes and days without gathering them row by row.
    """
    first_day = int(day.min())
    key = codes.astype(np.int64)  # a copy: built in place from here, no row-sized temporaries
    key <<= _DAY_BITS
    key += day
    key -= first_day  # 0 <= day - first_day < 2^21: the ticker bits above stay as they are
    return key, first_day


def _robust_bounds(
    returns: np.ndarray, codes: np.ndarray, n_tickers: int, sigmas: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-ticker lower/upper clipping bounds from each ticker's median and MAD (NaN = no clipping).

    ``codes`` ascend (the rows are in (ticker, date) order), so each ticker is one run of rows.
    """
    median = grouped.run_median(returns, codes, n_tickers)
    deviation = median[codes]
    np.subtract(returns, deviation, out=deviation)
    np.abs(deviation, out=deviation)
    mad = grouped.run_median(deviation, codes, n_tickers, overwrite=True)
    del deviation
    counts = np.bincount(codes[~np.isnan(returns)], minlength=n_tickers)
    sigma = MAD_TO_SIGMA * mad
    half_width = np.where((counts >= MIN_RETURNS_FOR_OUTLIERS) & (sigma > 0), sigmas * sigma, np.nan)
    return median - half_width, median + half_width


def _given_bounds(tickers: pd.Index, low: np.ndarray, high: np.ndarray,
                  given: Mapping[str, Sequence[float] | None]) -> tuple[np.ndarray, np.ndarray]:
    """``low``/``high`` with the tickers that ``given`` names replaced by its bounds (None: no clipping)."""
    low, high = low.copy(), high.copy()
    for i, ticker in enumerate(tickers):
        if ticker in given:
            bound = given[ticker]
            low[i], high[i] = (np.nan, np.nan) if bound is None else (float(bound[0]), float(bound[1]))
    return low, high


def clean_prices(
    validated_df: pd.DataFrame, max_gap_days: int = 5, outlier_sigma: float = 8.0,
    bounds: Mapping[str, Sequence[float] | None] | None = None,
    fit_before: pd.Timestamp | None = None,
    frequency: freq.Frequency | str = freq.Frequency.BUSINESS,
) -> tuple[pd.DataFrame, CleanReport]:
    """Apply the rules in the module docstring to a validated price frame.

    Args:
        validated_df: date (datetime64), ticker (str), price (float > 0), as validate writes it.
        max_gap_days: A longer gap, in business days, between consecutive dates starts a segment.
        outlier_sigma: Returns further than this many robust sigmas from the median are clipped.
        bounds: Clipping bounds to use instead of estimating them, per ticker (``[low, high]``,
            or None for "not clipped"), e.g. the training run's; tickers not named are estimated.
        fit_before: Estimate bounds only from returns dated before this day (the split's
            ``test_start``), so no test-window price moves them; None uses every return.
        frequency: The data's frequency: gaps are measured in its periods.

    Returns:
        The clean frame (date, ticker, price, log_return, segment, clipped), sorted by
        (ticker, date), and a :class:`CleanReport`.
    """
    if max_gap_days < 1:
        raise ConfigError(f"max_gap_days must be at least 1 (got {max_gap_days}).", "Pass --max-gap-days 1 or more.")
    if not outlier_sigma > 0:
        raise ConfigError(f"outlier_sigma must be positive (got {outlier_sigma}).", "Pass --outlier-sigma > 0, e.g. 8.")
    frequency = freq.Frequency(frequency)
    rows_in = len(validated_df)
    if rows_in == 0:
        empty = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "ticker": pd.Series(dtype="str"),
                              "price": pd.Series(dtype="float64"), "log_return": pd.Series(dtype="float64"),
                              "segment": pd.Series(dtype="int64"), "clipped": pd.Series(dtype="bool")})
        return empty, CleanReport(0, 0, 0, 0, 0, 0, 0, True, max_gap_days, float(outlier_sigma),
                                  frequency=frequency.value)
    codes, tickers = pd.factorize(validated_df["ticker"], sort=True)
    day_number = validated_df["date"].to_numpy("datetime64[ns]").astype("datetime64[D]").view(np.int64)
    price = validated_df["price"].to_numpy(np.float64)
    key, first_day = _sort_key(codes, day_number)
    was_sorted = bool(np.all(key[1:] >= key[:-1]))
    if not was_sorted:
        order = np.argsort(key, kind="stable")
        key, price = key[order], price[order]

    repeat = np.zeros(rows_in, dtype=bool)
    repeat[1:] = key[1:] == key[:-1]
    if (repeat[1:] & (price[1:] != price[:-1])).any():
        raise DataFormatError("Clean got two different prices for one (ticker, date).",
                              "Run validate first: it rejects conflicting duplicates with a schema diff.")
    if repeat.any():
        key, price = key[~repeat], price[~repeat]
    rows = key.size
    codes = key >> _DAY_BITS
    key &= (1 << _DAY_BITS) - 1  # the key is spent: its low bits become the day numbers in place
    key += first_day
    day = key.view("datetime64[D]")
    del key

    first = np.ones(rows, dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    gap = np.zeros(rows, dtype=bool)
    gap[1:] = ~first[1:] & (freq.steps(frequency, day[:-1], day[1:]) > freq.max_gap_periods(frequency, max_gap_days))
    segment = np.cumsum(gap)  # gaps so far, then less each ticker's gaps before its first row
    starts = np.flatnonzero(first)
    segment -= np.repeat(segment[starts], np.diff(np.append(starts, rows)))

    log_price = np.log(price)
    returns = np.empty(rows)
    returns[0] = np.nan
    np.subtract(log_price[1:], log_price[:-1], out=returns[1:])
    del log_price
    returns[first | gap] = np.nan
    fit_returns = returns
    if fit_before is not None:
        fit_returns = np.where(day < np.datetime64(pd.Timestamp(fit_before), "D"), returns, np.nan)
    ticker_low, ticker_high = _robust_bounds(fit_returns, codes, len(tickers), outlier_sigma)
    if bounds:
        ticker_low, ticker_high = _given_bounds(tickers, ticker_low, ticker_high, bounds)
    low = ticker_low[codes]
    clipped = returns < low  # NaN bounds compare False: not clipped
    np.copyto(returns, low, where=clipped)
    np.take(ticker_high, codes, out=low)  # low's buffer is done with: the upper bounds go in it
    above = returns > low
    np.copyto(returns, low, where=above)
    clipped |= above
    del low, above

    clean = pd.DataFrame({
        "date": day.astype("datetime64[ns]"),
        # Arrow's take rebuilds the string column from codes in C (no 5 M Python strings).
        "ticker": pc.take(pa.array(tickers.to_numpy(), type=pa.large_string()), pa.array(codes)).to_pandas(),
        "price": price,
        "log_return": returns,
        "segment": segment.astype(np.int64, copy=False),
        "clipped": clipped,
    }, copy=False)
    report = CleanReport(
        rows_in=rows_in, rows_out=rows, tickers=len(tickers), duplicates_dropped=int(rows_in - rows),
        gaps_found=int(gap.sum()), segments=int(len(tickers) + gap.sum()), returns_clipped=int(clipped.sum()),
        was_sorted=was_sorted, max_gap_days=max_gap_days, outlier_sigma=float(outlier_sigma), frequency=frequency.value,
        bounds_fit_before=None if fit_before is None else f"{pd.Timestamp(fit_before):%Y-%m-%d}",
        bounds={str(t): (float(lo), float(hi)) for t, lo, hi in zip(tickers, ticker_low, ticker_high, strict=True)},
    )
    log.info("clean: %s.", report.summary())
    return clean, report


def clean_for_training(
    validated_df: pd.DataFrame, max_gap_days: int = 5, outlier_sigma: float = 8.0,
    test_fraction: float = 0.2, n_windows: int = 3, frequency: freq.Frequency | str = freq.Frequency.BUSINESS,
    split: Split | None = None,
) -> tuple[pd.DataFrame, CleanReport, Split]:
    """The clean stage: clean with outlier bounds estimated before the split's ``test_start``
    (see :mod:`pricecast.time_split`), judging gaps in periods of ``frequency``.

    Args:
        split: The run's split: plan decides it on every shard's dates, so each shard's bounds
            stop at the same date. None decides it here, on this frame's dates, with
            ``test_fraction`` and ``n_windows`` (one table that is the whole data).

    Raises:
        ConfigError: Bad cleaning parameters, or too few dates for the split.
    """
    if split is None:
        split = time_split(validated_df, test_fraction=test_fraction, n_windows=n_windows)
    clean, report = clean_prices(validated_df, max_gap_days, outlier_sigma, fit_before=split.test_start,
                                 frequency=frequency)
    return clean, report, split


__all__ = ["MAD_TO_SIGMA", "MIN_RETURNS_FOR_OUTLIERS", "CleanReport", "clean_for_training", "clean_prices"]
