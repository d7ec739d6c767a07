"""pricecast.grouped against the pandas and numpy functions it stands in for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricecast import grouped


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 400)), max_size=300), st.integers(7, 9))
def test_group_median_equals_pandas_groupby_median(rows, n_groups):
    groups = np.array([g for g, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.int64)
    expected = pd.Series(values.astype(float)).groupby(groups).median().reindex(range(n_groups)).to_numpy()
    np.testing.assert_array_equal(grouped.group_median(values, groups, n_groups), expected)


def test_group_median_of_values_too_wide_for_one_key_sorts_both():
    groups = np.array([0, 0, 1, 1, 1], dtype=np.int64)
    values = np.array([2**62, 2**62 - 2, 5, 2**61, 1], dtype=np.int64)
    np.testing.assert_array_equal(grouped.group_median(values, groups, 2), [2**62 - 1, 5.0])


def test_group_median_of_no_rows_is_nan_and_negative_values_are_refused():
    assert np.isnan(grouped.group_median(np.empty(0, np.int64), np.empty(0, np.int64), 3)).all()
    with pytest.raises(ValueError, match="non-negative"):
        grouped.group_median(np.array([-1]), np.array([0]), 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-40_000, 80_000), max_size=200))
def test_distinct_days_equals_numpy_unique(numbers):
    day = np.array(numbers, dtype=np.int64).astype("datetime64[D]")
    dates = grouped.distinct_days(day)
    np.testing.assert_array_equal(dates, np.unique(day))
    assert dates.dtype == np.dtype("datetime64[D]")


def test_distinct_days_spread_over_millennia_takes_the_sort():
    day = np.array([-200_000_000, 5, 5, 300_000_000], dtype=np.int64).astype("datetime64[D]")
    np.testing.assert_array_equal(grouped.distinct_days(day), day[[0, 1, 3]])


def test_group_median_may_build_its_keys_in_the_groups_array():
    groups = np.array([1, 0, 1, 0, 1], dtype=np.int64)
    values = np.array([4, 3, 2, 1, 9], dtype=np.int64)
    kept = groups.copy()
    np.testing.assert_array_equal(grouped.group_median(values, kept, 2), [2.0, 4.0])
    np.testing.assert_array_equal(kept, groups)  # not overwritten unless asked
    np.testing.assert_array_equal(grouped.group_median(values, groups, 2, overwrite_groups=True), [2.0, 4.0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")))), max_size=200))
def test_run_median_equals_pandas_groupby_median(rows):
    rows = sorted(rows, key=lambda r: r[0])  # groups in contiguous runs; values in any order
    codes = np.array([g for g, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.float64)
    expected = pd.Series(values).groupby(codes).median().reindex(range(7)).to_numpy()
    kept = values.copy()
    np.testing.assert_allclose(grouped.run_median(values, codes, 7), expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(values, kept)
    np.testing.assert_allclose(grouped.run_median(values, codes, 7, overwrite=True), expected, rtol=1e-15, atol=0)
