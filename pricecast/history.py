"""How much history the model needs: one rule that validate checks up front and train applies.

A feature row needs :data:`MIN_HISTORY` consecutive prices of its ticker (the longest rolling
window of returns plus the price before it), and a next price to be scored against; the
time-ordered split then holds out the last ``test_fraction`` of those feature dates as
``n_windows`` test windows and needs two dates left to train on. Counted in periods of the data's frequency, so ten years of monthly closes are 120.
"""

from __future__ import annotations

from pricecast.columns import LONG_WINDOW

MIN_HISTORY = LONG_WINDOW + 1  # the longest window's LONG_WINDOW returns need one more price
MIN_TRAIN_DATES = 2


def test_dates(n_dates: int, test_fraction: float) -> int:
    """How many of ``n_dates`` feature dates the split holds out for testing."""
    return round(n_dates * test_fraction)


def split_fits(n_dates: int, test_fraction: float, n_windows: int) -> bool:
    """Whether ``n_dates`` feature dates hold ``n_windows`` test windows and leave dates to train on."""
    n_test = test_dates(n_dates, test_fraction)
    return n_test >= n_windows and n_dates - n_test >= MIN_TRAIN_DATES


def min_feature_dates(test_fraction: float, n_windows: int) -> int:
    """The fewest feature dates the split accepts with these parameters (both must be in range)."""
    n = max(n_windows + MIN_TRAIN_DATES, 1)
    while not split_fits(n, test_fraction, n_windows):  # a few dozen steps at most for sane inputs
        n += 1
    return n


def min_dates(test_fraction: float, n_windows: int) -> int:
    """The fewest consecutive dates one ticker needs for the model: history, then feature dates."""
    return MIN_HISTORY + min_feature_dates(test_fraction, n_windows)  # the last date has no next one


__all__ = ["MIN_HISTORY", "MIN_TRAIN_DATES", "min_dates", "min_feature_dates", "split_fits",
           "test_dates"]
