"""The time-ordered split: training dates, then consecutive test windows. Never shuffled.

The last ``test_fraction`` of the trading dates is held out and cut into ``n_windows``
consecutive test windows. The split is decided once, by the plan stage on the dates of every
shard, and travels downstream as JSON: clean estimates its outlier bounds from the returns dated
before ``test_start`` only, train fits on rows whose target is realised before it, evaluate
scores the windows. Nothing a test window holds can reach the fitted model.

A training row must have its *target* (the next day's return) realised before the first test
date, so the last pre-test row, whose label lives in the test period, is purged rather than
leaked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from pricecast import frames, history
from pricecast.columns import TARGET
from pricecast.errors import ConfigError

# Dates are numpy datetime64[ns] here, not pandas Timestamps: they compare with the date columns
# of pandas frames and of frames.Columns (numpy) alike, so the split needs no pandas of its own.
DateLike = Any  # np.datetime64, pd.Timestamp, datetime.date or an ISO date string


def day(value: DateLike) -> np.datetime64:
    """``value`` as a numpy datetime64[ns]."""
    return np.datetime64(value, "ns")


def iso_day(value: DateLike) -> str:
    """``value`` as ``YYYY-MM-DD``."""
    return str(np.datetime64(value, "D"))


@dataclasses.dataclass(frozen=True)
class Window:
    """One test window: every row dated ``start`` to ``end``, both included (datetime64[ns])."""

    start: np.datetime64
    end: np.datetime64

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", day(self.start))
        object.__setattr__(self, "end", day(self.end))


@dataclasses.dataclass(frozen=True)
class Split:
    """Where training stops and the test windows lie (dates only, so it travels as JSON)."""

    train_start: np.datetime64
    test_start: np.datetime64
    windows: tuple[Window, ...]
    test_fraction: float
    n_windows: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_start", day(self.train_start))
        object.__setattr__(self, "test_start", day(self.test_start))

    def window(self, index: int) -> Window:
        """Test window ``index``; a ConfigError names the valid range when it does not exist."""
        if not 0 <= index < len(self.windows):
            raise ConfigError(f"Test window {index} does not exist; the split has {len(self.windows)}.",
                              f"Use a window index from 0 to {len(self.windows) - 1}.")
        return self.windows[index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_start": iso_day(self.train_start),
            "test_start": iso_day(self.test_start),
            "windows": [{"start": iso_day(w.start), "end": iso_day(w.end)} for w in self.windows],
            "test_fraction": self.test_fraction,
            "n_windows": self.n_windows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        return cls(
            train_start=day(data["train_start"]),
            test_start=day(data["test_start"]),
            windows=tuple(Window(w["start"], w["end"]) for w in data["windows"]),
            test_fraction=float(data["test_fraction"]),
            n_windows=int(data["n_windows"]),
        )


def check_split_parameters(test_fraction: float, n_windows: int) -> None:
    """The split's parameters in range; validate and plan check them before they count dates.

    Raises:
        ConfigError: ``test_fraction`` outside (0, 1) or ``n_windows`` below 1.
    """
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be between 0 and 1, got {test_fraction}.",
                          "Use e.g. 0.2 to hold out the last fifth of the dates.")
    if n_windows < 1:
        raise ConfigError(f"n_windows must be at least 1, got {n_windows}.", "Use e.g. 3.")


def time_split(frame: Any, test_fraction: float = 0.2, n_windows: int = 3) -> Split:
    """Hold out the last ``test_fraction`` of the unique dates as ``n_windows`` consecutive windows.

    Args:
        frame: Any frame with a ``date`` column (pandas or :class:`pricecast.frames.Columns`),
            or the dates themselves (any order, repeats allowed; a missing date is no date): the
            plan stage passes the union of every shard's dates, so the split of a sharded table
            is the split its whole table would get.
        test_fraction: Share of the unique dates held out for testing, in (0, 1).
        n_windows: Number of consecutive test windows the held-out dates are cut into.

    Returns:
        The split. Dates are sorted, never shuffled; windows differ in length by at most one date.

    Raises:
        ConfigError: The parameters are out of range or the data has too few dates for them.
    """
    check_split_parameters(test_fraction, n_windows)
    dates = distinct_dates(frame["date"] if hasattr(frame, "columns") else frame)
    n_test = history.test_dates(len(dates), test_fraction)
    if not history.split_fits(len(dates), test_fraction, n_windows):
        raise ConfigError(
            f"{len(dates)} dates cannot hold {n_windows} test windows over the last "
            f"{test_fraction:.0%} and still leave dates to train on.",
            "Ingest more days, or lower n_windows or test_fraction.",
        )
    test_dates = dates[len(dates) - n_test:]
    chunks = np.array_split(test_dates, n_windows)
    return Split(
        train_start=dates[0],
        test_start=test_dates[0],
        windows=tuple(Window(c[0], c[-1]) for c in chunks),
        test_fraction=float(test_fraction),
        n_windows=int(n_windows),
    )


def distinct_dates(values: Any) -> np.ndarray:
    """The distinct dates of ``values`` in order, as datetime64[ns]; a missing date is no date."""
    dates = _datetimes(values)
    return np.unique(dates[~np.isnat(dates)])


def _datetimes(values: Any) -> np.ndarray:
    """Dates (datetime64 of any unit, Timestamps, date objects or ISO strings) as datetime64[ns]."""
    return np.asarray(values).astype("datetime64[ns]", copy=False)


def _has_target(features_df: Any) -> np.ndarray:
    return ~np.isnan(np.asarray(features_df[TARGET], dtype=np.float64))


def target_dates(features_df: Any) -> np.ndarray:
    """The date each row's target is realised: the next date of its ticker and segment (else NaT).

    ``features_df``: the features stage's output, a pandas frame or :class:`pricecast.frames.Columns`.
    Any row order. The features stage writes each ticker's rows together in date order, where
    "the next date" is the next row; any other order is sorted by ticker, segment and date
    first, and the answer put back in the rows' order.
    """
    dates = _datetimes(features_df["date"])
    out = np.full(len(dates), np.datetime64("NaT"), dtype=dates.dtype)
    if len(dates) < 2:
        return out
    codes, _ = frames.factorize(features_df["ticker"])
    segment = np.asarray(features_df["segment"])
    has_target = _has_target(features_df)
    # factorize numbers tickers by first appearance: grouped rows have non-decreasing codes.
    grouped = bool(np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (dates[1:] > dates[:-1]))))
    order = None if grouped else np.lexsort((dates, segment, codes))
    if order is not None:
        codes, segment, dates, has_target = codes[order], segment[order], dates[order], has_target[order]
    same_group = (codes[1:] == codes[:-1]) & (segment[1:] == segment[:-1])
    has_next = same_group & has_target[:-1]
    out[:-1][has_next] = dates[1:][has_next]
    if order is not None:
        out[order] = out.copy()
    return out


def train_mask(features_df: Any, split: Split) -> np.ndarray:
    """Rows to fit on: a known target realised before the first test date."""
    return target_dates(features_df) < split.test_start


def window_mask(features_df: Any, split: Split, window_index: int) -> np.ndarray:
    """Rows dated inside test window ``window_index`` that have a target to score against."""
    window = split.window(window_index)
    dates = _datetimes(features_df["date"])
    return (dates >= window.start) & (dates <= window.end) & _has_target(features_df)
