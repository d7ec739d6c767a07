"""Which feature rows train on and which are scored: the split (:mod:`pricecast.split`) applied to rows.

A training row must have its *target* (the next day's return) realised before the first test
date, so the last pre-test row, whose label lives in the test period, is purged rather than
leaked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.features.core import TARGET
from pricecast.split import Split, Window, time_split

__all__ = ["Split", "Window", "target_dates", "time_split", "train_mask", "window_mask"]


def target_dates(features_df: pd.DataFrame) -> np.ndarray:
    """The date each row's target is realised: the next date of its ticker and segment (else NaT).

    Any row order. The features stage writes each ticker's rows together in date order, where
    "the next date" is the next row; any other order is sorted by ticker, segment and date
    first, and the answer put back in the rows' order.
    """
    dates = features_df["date"].to_numpy()
    out = np.full(len(dates), np.datetime64("NaT"), dtype=dates.dtype)
    if len(dates) < 2:
        return out
    codes, _ = pd.factorize(features_df["ticker"])
    segment = features_df["segment"].to_numpy()
    has_target = features_df[TARGET].notna().to_numpy()
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


def train_mask(features_df: pd.DataFrame, split: Split) -> np.ndarray:
    """Rows to fit on: a known target realised before the first test date."""
    return target_dates(features_df) < np.datetime64(split.test_start)


def window_mask(features_df: pd.DataFrame, split: Split, window_index: int) -> np.ndarray:
    """Rows dated inside test window ``window_index`` that have a target to score against."""
    window = split.window(window_index)
    dates = features_df["date"]
    return ((dates >= window.start) & (dates <= window.end) & features_df[TARGET].notna()).to_numpy()
