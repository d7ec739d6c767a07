"""frames.ticker_runs and frames.factorize find what pd.factorize would, without pandas: by comparing
neighbours when the rows are grouped, by Arrow's dictionary encoding otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricecast import frames
from pricecast.training_stats import _first_appearance

TICKERS = st.sampled_from(["A", "BRK.B", "ÉTÉ", "X-1", "a", ""])
KINDS = ["str", "object", "category", "arrow", "arrow-chunked"]


def _as(kind: str, values: list):
    """``values`` as a pandas Series of a dtype, or as the Arrow column a Columns frame hands out."""
    if kind.startswith("arrow"):
        array = pa.array(values, type=pa.large_string())
        half = len(values) // 2
        return pa.chunked_array([array[:half], array[half:]]) if kind == "arrow-chunked" else array
    series = pd.Series(values, dtype="str" if kind == "str" else object)
    return series.astype("category") if kind == "category" else series


@settings(max_examples=150, deadline=None)
@given(st.lists(TICKERS, max_size=60), st.sampled_from(KINDS))
def test_runs_start_where_the_ticker_changes(values, kind):
    starts, names = frames.ticker_runs(_as(kind, values))
    expected = [i for i in range(len(values)) if i == 0 or values[i] != values[i - 1]]
    assert starts.tolist() == expected
    assert names == [values[i] for i in expected]


@settings(max_examples=150, deadline=None)
@given(st.lists(TICKERS, max_size=60), st.sampled_from(KINDS))
def test_factorize_equals_pd_factorize_grouped_or_not(values, kind):
    values = sorted(values) if len(values) % 2 else values  # grouped runs, or any order
    codes, uniques = frames.factorize(_as(kind, values))
    expected_codes, expected_uniques = pd.factorize(pd.Series(values, dtype=object))
    np.testing.assert_array_equal(codes, expected_codes.astype(np.int64))
    assert codes.dtype == np.int64 and uniques == list(expected_uniques)


@pytest.mark.parametrize("kind", ["str", "arrow"])
@pytest.mark.parametrize("values", [["A", None, "A"], ["A", None, None, "B"], [None, "B", "A", "B"]])
def test_a_missing_ticker_is_code_minus_one_as_in_pd_factorize(values, kind):
    codes, uniques = frames.factorize(_as(kind, values))
    expected_codes, expected_uniques = pd.factorize(pd.Series(values, dtype="str"))
    np.testing.assert_array_equal(codes, expected_codes)
    assert uniques == list(expected_uniques)


def test_mixed_python_objects_are_factorized_by_pandas():
    values = pd.Series(["A", 1, "A", 2.5], dtype=object)  # Arrow cannot type them
    codes, uniques = frames.factorize(values)
    assert codes.tolist() == [0, 1, 0, 2] and uniques == ["A", "1", "2.5"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "C", "D", None]), max_size=60), st.data())
def test_first_appearance_renumbers_a_subset_as_pd_factorize_of_it(values, data):
    """The training rows' hash takes their own factorize: codes of the whole frame, renumbered."""
    grouped = data.draw(st.booleans())
    if grouped:
        values = sorted(values, key=lambda v: (v is None, v or ""))
    keep = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    codes, tickers = frames.factorize(pd.Series(values, dtype="str"))
    subset = np.array(keep, dtype=bool)
    renumbered, names = _first_appearance(codes[subset], tickers)
    expected_codes, expected_names = pd.factorize(pd.Series(values, dtype="str")[subset])
    np.testing.assert_array_equal(renumbered, expected_codes.astype(np.int64))
    assert names == list(expected_names)


def test_blocks_hold_whole_tickers():
    tickers = pd.Series(["A"] * 3 + ["B"] * 4 + ["C"] * 2, dtype="str")
    assert frames.ticker_blocks(tickers, rows=3) == [slice(0, 3), slice(3, 7), slice(7, 9)]
    assert frames.ticker_blocks(tickers.iloc[:0]) == []
