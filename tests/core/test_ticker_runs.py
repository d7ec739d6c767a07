"""frames.ticker_runs finds what pd.factorize would, by comparing neighbours instead of hashing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricecast import frames
from pricecast.training_stats import _factorized

TICKERS = st.sampled_from(["A", "BRK.B", "ÉTÉ", "X-1", "a", ""])


def _as(kind: str, values: list) -> pd.Series:
    series = pd.Series(values, dtype="str" if kind == "str" else object)
    return series.astype("category") if kind == "category" else series


@settings(max_examples=150, deadline=None)
@given(st.lists(TICKERS, max_size=60), st.sampled_from(["str", "object", "category"]))
def test_runs_start_where_the_ticker_changes(values, kind):
    starts, names = frames.ticker_runs(_as(kind, values))
    expected = [i for i in range(len(values)) if i == 0 or values[i] != values[i - 1]]
    assert starts.tolist() == expected
    assert names == [values[i] for i in expected]


@settings(max_examples=150, deadline=None)
@given(st.lists(TICKERS, max_size=60), st.sampled_from(["str", "object"]))
def test_factorized_equals_pd_factorize_grouped_or_not(values, kind):
    tickers = _as(kind, sorted(values) if len(values) % 2 else values)  # grouped runs, or any order
    codes, uniques = _factorized(tickers)
    expected_codes, expected_uniques = pd.factorize(tickers)
    np.testing.assert_array_equal(np.asarray(codes, dtype=np.int64), expected_codes.astype(np.int64))
    assert list(map(str, uniques)) == list(map(str, expected_uniques))


@pytest.mark.parametrize("values", [["A", None, "A"], ["A", np.nan, np.nan, "B"]])
def test_a_missing_ticker_falls_back_to_factorize(values):
    tickers = pd.Series(values, dtype="str")
    codes, uniques = _factorized(tickers)
    expected_codes, expected_uniques = pd.factorize(tickers)
    np.testing.assert_array_equal(codes, expected_codes)
    assert list(uniques) == list(expected_uniques)


def test_blocks_hold_whole_tickers():
    tickers = pd.Series(["A"] * 3 + ["B"] * 4 + ["C"] * 2, dtype="str")
    assert frames.ticker_blocks(tickers, rows=3) == [slice(0, 3), slice(3, 7), slice(7, 9)]
    assert frames.ticker_blocks(tickers.iloc[:0]) == []
