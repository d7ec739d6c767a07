"""Cleaning a table shard by shard, with the run's split, equals cleaning it whole (issue 14)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.clean.core import clean_for_training
from components.clean.tests.conftest import random_walk
from pricecast import frames
from pricecast.time_split import iso_day, time_split


def test_three_shards_concatenated_equal_the_whole_table_with_identical_bounds():
    parts = [random_walk(f"T{k:02d}", 150 + 9 * k, seed=k, start=f"2021-0{1 + k % 5}-01") for k in range(12)]
    parts[3].loc[40, "price"] *= 4  # outliers: the bounds must clip them the same way
    parts[7].loc[140, "price"] /= 3  # (this one in the test period: it must not move the bounds)
    holed = parts[5].drop(index=range(60, 70))  # a gap: a second segment
    whole = pd.concat([*parts[:5], holed, *parts[6:]], ignore_index=True).sample(frac=1.0, random_state=2)
    split = time_split(whole, test_fraction=0.2, n_windows=3)  # what plan decides on every shard's dates
    shard = frames.shard_of(whole["ticker"], 3)
    assert sorted(set(shard)) == [0, 1, 2]

    together, whole_report, _ = clean_for_training(whole, split=split)
    pieces = [clean_for_training(whole[shard == i].reset_index(drop=True), split=split) for i in range(3)]

    apart = pd.concat([clean for clean, _, _ in pieces], ignore_index=True)
    apart = apart.sort_values(["ticker", "date"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(apart, together)
    bounds = {t: b for _, report, _ in pieces for t, b in report.bounds.items()}
    assert bounds.keys() == whole_report.bounds.keys()
    for ticker, (low, high) in whole_report.bounds.items():
        np.testing.assert_array_equal(bounds[ticker], (low, high), err_msg=ticker)
    assert sum(r.returns_clipped for _, r, _ in pieces) == whole_report.returns_clipped > 0
    assert sum(r.gaps_found for _, r, _ in pieces) == whole_report.gaps_found == 1
    assert {r.bounds_fit_before for _, r, _ in pieces} == {iso_day(split.test_start)}
    assert all(s == split for _, _, s in pieces)


def test_without_a_split_one_table_decides_its_own():
    frame = random_walk("AAA", 100, 1)
    _, report, split = clean_for_training(frame, test_fraction=0.25, n_windows=2)
    assert split == time_split(frame, 0.25, 2) and report.bounds_fit_before == iso_day(split.test_start)
