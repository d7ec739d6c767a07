"""Per-group medians and distinct days of millions of rows, with few full-size temporaries.

validate and clean summarise every ticker's dates: pandas' groupby median and ``np.unique``
with an inverse each build several row-sized arrays (a factorized copy, a sort order, sorted
values), which at 5 M rows meant ~270 MB of fresh memory in validate alone. On this project's
VMs every new MB costs ~10 ms of page faults, more than the arithmetic. Both functions here use
what the data is: small non-negative integers (day gaps) and day numbers over a few decades.
"""

from __future__ import annotations

import numpy as np

# Beyond this many key bins per row a bincount would cost more memory than the sort it replaces.
_DENSE_BINS_PER_ROW = 4
_INT64_MAX = np.iinfo(np.int64).max


def group_median(values: np.ndarray, groups: np.ndarray, n_groups: int, *,
                 overwrite_groups: bool = False) -> np.ndarray:
    """The median of ``values`` in each group ``0 .. n_groups-1`` (NaN for an empty group).

    Args:
        values: Non-negative integers (e.g. day gaps), one per row.
        groups: Each row's group, integers in ``[0, n_groups)``, same length.
        n_groups: How many groups.
        overwrite_groups: Build the sort keys in ``groups`` itself (an int64 array the caller
            no longer needs) instead of a row-sized copy.

    Returns:
        float64 per group: the middle value, or the mean of the two middle values for an even
        count (what ``pandas.core.groupby.GroupBy.median`` returns).
    """
    values = np.asarray(values, dtype=np.int64)
    groups = np.asarray(groups)
    median = np.full(n_groups, np.nan)
    if values.size == 0 or n_groups == 0:
        return median
    if values.min() < 0:
        raise ValueError("group_median takes non-negative values.")
    span = int(values.max()) + 1
    if n_groups > _INT64_MAX // span:  # (group, value) does not fit one int64 key: sort both
        order = np.lexsort((values, groups.astype(np.int64, copy=False)))
        ordered, ordered_groups = values[order], groups[order]
        bounds = np.searchsorted(ordered_groups, np.arange(n_groups + 1))
        base = 0
    else:
        # One int64 key per row, sorted in place: groups ascending, values ascending within.
        ordered = groups if overwrite_groups and groups.dtype == np.int64 else groups.copy()
        ordered *= span
        ordered += values
        ordered.sort()
        bounds = np.searchsorted(ordered, np.arange(n_groups + 1, dtype=np.int64) * span)
        base = span
    counts = np.diff(bounds)
    present = np.flatnonzero(counts)
    low = ordered[bounds[present] + (counts[present] - 1) // 2]
    high = ordered[bounds[present] + counts[present] // 2]
    offset = present.astype(np.int64) * base  # the group's part of a key
    median[present] = (low - offset) / 2 + (high - offset) / 2  # halves first: no int64 overflow
    return median


def distinct_days(day: np.ndarray) -> np.ndarray:
    """``np.unique(day)`` for dates: a count per day number instead of a sort of every row.

    Args:
        day: datetime64[D] values (no NaT).

    Returns:
        The distinct days, datetime64[D], ascending.
    """
    day = np.asarray(day, dtype="datetime64[D]")
    if day.size == 0:
        return day.copy()
    number = day.view(np.int64)
    first, last = int(number.min()), int(number.max())
    if last - first >= _DENSE_BINS_PER_ROW * day.size + (1 << 20):  # days spread over millennia: sort
        return np.unique(day)
    present = np.flatnonzero(np.bincount(number - first))
    return (present + first).astype("datetime64[D]")


def run_median(values: np.ndarray, codes: np.ndarray, n_groups: int, *, overwrite: bool = False) -> np.ndarray:
    """The median of the non-NaN ``values`` of each group, for groups in contiguous runs.

    Args:
        values: float64, one per row; NaN rows are left out.
        codes: Each row's group in ``[0, n_groups)``, non-decreasing (rows sorted by group).
        n_groups: How many groups.
        overwrite: Sort each run within ``values`` itself instead of a row-sized copy.

    Returns:
        float64 per group (NaN where a group has no value), as ``GroupBy.median`` gives.

    Each run is sorted on its own (NaN sorts last), then the middle is read: one pass of small
    sorts instead of pandas' group-by, which builds several row-sized arrays.
    """
    ordered = values if overwrite and values.dtype == np.float64 else np.array(values, dtype=np.float64)
    median = np.full(n_groups, np.nan)
    if ordered.size == 0:
        return median
    bounds = np.searchsorted(codes, np.arange(n_groups + 1))
    numbers = np.bincount(codes[~np.isnan(ordered)], minlength=n_groups)
    for group in np.flatnonzero(numbers):
        start, count = bounds[group], numbers[group]
        run = ordered[start:bounds[group + 1]]
        run.sort()
        median[group] = (run[(count - 1) // 2] + run[count // 2]) / 2
    return median
