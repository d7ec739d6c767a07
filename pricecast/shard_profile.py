"""What one shard of validated prices looks like: the facts the checks across shards need.

Validate writes one profile per shard (JSON) and plan pools them. Some checks can only be
answered by the whole table: enough rows, prices over time rather than one date's
cross-section, one frequency for every ticker, and a ticker with the history the model needs
before the test period (which the split, decided on every shard's dates, places). A profile
holds just enough for those: the shard's distinct dates, each ticker's spacing, and for each
date the most dates one ticker has before it. Its size grows with dates and tickers, never
with rows.

The check labels and their sentences live here too, so validate (one table) and plan (its
shards) word a failure the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from pricecast import frequency as freq
from pricecast import grouped, history

# Check labels of the schema diff that concern the whole table.
MIN_ROWS = "minimum number of rows"
TIME_SERIES = "a time series per ticker"
FREQUENCY = "one supported frequency"
HISTORY = "enough history for the model"


# --------------------------------------------------------------------------- sentences
def min_rows_summary(rows: int, min_rows: int) -> str:
    return f"{rows} row(s) found, fewer than the minimum {max(min_rows, 1)}"


def min_rows_fix(rows: int, min_rows: int) -> str:
    return f"Supply at least {max(min_rows, 1)} rows (found {rows}), or lower --min-rows."


def cross_section_summary(tickers: int, dates: np.ndarray) -> str:
    shown = ", ".join(f"{pd.Timestamp(d):%Y-%m-%d}" for d in dates[:3]) + (" ..." if len(dates) > 3 else "")
    return f"each of the {tickers:,} ticker(s) has a single date ({shown}): a cross-section, not prices over time"


def cross_section_fix(test_fraction: float, n_windows: int) -> str:
    need = history.min_dates(test_fraction, n_windows)
    return (f"Supply each ticker's prices over time: the model needs at least {need} consecutive dates of one "
            "ticker (business days, days, weeks or months). A snapshot of many tickers on one date is not "
            "something a forecaster can learn from.")


def history_fix(frequency: freq.Frequency, test_fraction: float, n_windows: int) -> str:
    spacing = freq.spacing(frequency)
    total = history.min_dates(test_fraction, n_windows)
    return (f"Supply at least {total} consecutive {spacing.period}s of prices for a ticker (about "
            f"{total / spacing.periods_per_year:.1f} years at this frequency), or lower n_windows or test_fraction.")


def too_few_dates_summary(frequency: freq.Frequency, n_dates: int, test_fraction: float, n_windows: int) -> str:
    spacing = freq.spacing(frequency)
    total = history.min_dates(test_fraction, n_windows)
    return (f"at {frequency.value} frequency the data has {n_dates} distinct dates; the model needs {total}: "
            f"{history.MIN_HISTORY + 1} {spacing.period}s before the test period ({history.MIN_HISTORY} of history "
            f"for the first feature row, then its next {spacing.period}) and {n_windows} test window(s) over the "
            f"last {test_fraction:.0%}, the last holding 2 dates (the final date has no next price to score)")


def short_history_summary(frequency: freq.Frequency, test_start: Any, longest: int, where: str) -> str:
    spacing = freq.spacing(frequency)
    return (f"at {frequency.value} frequency no ticker has the {history.MIN_HISTORY + 1} {spacing.period}s before "
            f"the test period (from {pd.Timestamp(test_start):%Y-%m-%d}) that training needs; the longest has "
            f"{longest} ({where})")


# --------------------------------------------------------------------------- the profile
SERIES_COLUMNS = ("dates", "median_days", "weekend_share", "frequency")
_CHUNK_ROWS = 1 << 20


@dataclasses.dataclass(frozen=True)
class Profile:
    """One shard's validated prices in summary (see the module docstring)."""

    shard: int
    shards: int
    rows: int
    dates: np.ndarray  # datetime64[D], sorted, distinct
    frequency: freq.Frequency | None  # the shard's: requested, else detected (None: no ticker classified)
    series: pd.DataFrame  # per ticker (index): dates, median_days, weekend_share, frequency (detection's)
    longest_before: np.ndarray  # int64 per date: the most distinct dates one ticker has before it
    longest: int  # the most distinct dates of one ticker

    @property
    def tickers(self) -> int:
        return len(self.series)

    @classmethod
    def of(cls, codes: np.ndarray, day: np.ndarray, detection: freq.Detection, frequency: freq.Frequency | None,
           shard: int = 0, shards: int = 1, rows: int | None = None) -> Profile:
        """The profile of rows in (ticker, date) order (:func:`pricecast.frequency.sorted_series`)."""
        day = np.asarray(day, dtype="datetime64[D]")
        total = len(day)
        new = np.ones(total, dtype=bool)  # a ticker's distinct dates: exact duplicates count once
        new[1:] = (codes[1:] != codes[:-1]) | (day[1:] != day[:-1])
        if not new.all():  # copies only when there are duplicates to drop
            codes, day = codes[new], day[new]
        del new
        dates = grouped.distinct_days(day)
        per_ticker = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
        first = np.concatenate(([0], np.cumsum(per_ticker)[:-1]))  # each ticker's first row (codes ascend)
        # The most dates any ticker has reached on each date, in chunks of rows: a row's rank
        # among its ticker's dates is its position past its ticker's first row. Row-sized
        # temporaries would cost more in page faults than the arithmetic.
        most_on = np.zeros(len(dates), dtype=np.int64)
        for start in range(0, len(codes), _CHUNK_ROWS):
            part = slice(start, start + _CHUNK_ROWS)
            rank = np.arange(start + 1, start + 1 + len(codes[part]), dtype=np.int64)
            rank -= first[codes[part]]
            np.maximum.at(most_on, np.searchsorted(dates, day[part]), rank)
        longest_before = np.zeros(len(dates), dtype=np.int64)
        if len(dates) > 1:
            longest_before[1:] = np.maximum.accumulate(most_on)[:-1]
        return cls(shard=int(shard), shards=int(shards), rows=int(total if rows is None else rows), dates=dates,
                   frequency=frequency, series=detection.series.copy(), longest_before=longest_before,
                   longest=int(per_ticker.max()) if len(per_ticker) else 0)

    def longest_before_date(self, date: Any) -> int:
        """The most distinct dates one ticker of this shard has before ``date``."""
        i = int(np.searchsorted(self.dates, np.datetime64(pd.Timestamp(date), "D"), side="left"))
        return int(self.longest_before[i]) if i < len(self.dates) else self.longest

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``shard``, ``rows``, ``tickers``, ``dates`` (ISO), ``frequency`` and the details."""
        series = self.series
        median = series["median_days"].to_numpy(np.float64)
        return {
            "shard": self.shard, "shards": self.shards, "rows": self.rows, "tickers": self.tickers,
            "dates": [str(d) for d in self.dates.astype("datetime64[D]")],
            "frequency": None if self.frequency is None else self.frequency.value,
            "longest": self.longest,
            "longest_before": self.longest_before.tolist(),
            "series": {
                "ticker": [str(t) for t in series.index],
                "dates": series["dates"].astype(np.int64).tolist(),
                "median_days": [None if np.isnan(m) else float(m) for m in median],
                "weekend_share": series["weekend_share"].astype(np.float64).tolist(),
                "frequency": [None if f is None or f != f else str(f) for f in series["frequency"]],
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        raw = data["series"]
        series = pd.DataFrame({
            "dates": np.asarray(raw["dates"], dtype=np.int64),
            "median_days": np.asarray([np.nan if m is None else m for m in raw["median_days"]], dtype=np.float64),
            "weekend_share": np.asarray(raw["weekend_share"], dtype=np.float64),
            "frequency": np.array([None if f is None else freq.Frequency(f) for f in raw["frequency"]], dtype=object),
        }, index=pd.Index(raw["ticker"], dtype=object, name="ticker"))
        return cls(shard=int(data["shard"]), shards=int(data.get("shards", 1)), rows=int(data["rows"]),
                   dates=np.asarray(data["dates"], dtype="datetime64[D]"),
                   frequency=freq.parse(data["frequency"]) if data.get("frequency") else None,
                   series=series, longest_before=np.asarray(data["longest_before"], dtype=np.int64),
                   longest=int(data["longest"]))


__all__ = ["FREQUENCY", "HISTORY", "MIN_ROWS", "TIME_SERIES", "Profile", "cross_section_fix",
           "cross_section_summary", "history_fix", "min_rows_fix", "min_rows_summary", "short_history_summary",
           "too_few_dates_summary"]
