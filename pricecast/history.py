"""How many dates the model needs: one rule that validate checks up front and the split applies.

The clean stage splits the data's distinct dates (:mod:`pricecast.time_split`): the last
``test_fraction`` of them become ``n_windows`` consecutive test windows. For a run to end in a
verdict, a ticker needs :data:`MIN_HISTORY` consecutive prices (the longest rolling window of
returns plus the price before it) and one more date, the first target, before the test period;
and the last test window needs two dates, since the final date has no next price to score.
Counted in periods of the data's frequency, so ten years of monthly closes are 120.
"""

from __future__ import annotations

from pricecast.columns import LONG_WINDOW

MIN_HISTORY = LONG_WINDOW + 1  # the longest window's LONG_WINDOW returns need one more price
MIN_TRAIN_DATES = 2  # the split's own floor: dates left before the test windows


def test_dates(n_dates: int, test_fraction: float) -> int:
    """How many of ``n_dates`` distinct dates the split holds out for testing."""
    return round(n_dates * test_fraction)


def split_fits(n_dates: int, test_fraction: float, n_windows: int) -> bool:
    """The split's own rule: ``n_windows`` test windows of at least one date, dates left to train on."""
    n_test = test_dates(n_dates, test_fraction)
    return n_test >= n_windows and n_dates - n_test >= MIN_TRAIN_DATES


def model_fits(n_dates: int, test_fraction: float, n_windows: int) -> bool:
    """Whether ``n_dates`` consecutive dates of one ticker take the model to a verdict: the split
    fits, the dates before the test period hold a feature row with its target, and the last test
    window (``numpy.array_split`` puts the remainder first: it is the shortest) holds a date to
    score besides the final one."""
    n_test = test_dates(n_dates, test_fraction)
    return (split_fits(n_dates, test_fraction, n_windows) and n_dates - n_test >= MIN_HISTORY + 1
            and n_test // n_windows >= 2)


def min_dates(test_fraction: float, n_windows: int) -> int:
    """The fewest consecutive dates that :func:`model_fits` accepts (both parameters in range)."""
    n = MIN_HISTORY + 1 + 2 * n_windows
    while not model_fits(n, test_fraction, n_windows):  # a few dozen steps for sane parameters
        n += 1
    return n


__all__ = ["MIN_HISTORY", "MIN_TRAIN_DATES", "min_dates", "model_fits", "split_fits", "test_dates"]
