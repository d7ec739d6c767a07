"""Fixtures of the clean tests: validated price frames (the isolated store is the root conftest's)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def validated(ticker: str, dates, prices) -> pd.DataFrame:
    """A frame with validate's output contract."""
    return pd.DataFrame({
        "date": pd.DatetimeIndex(dates).astype("datetime64[ns]"),
        "ticker": pd.array([ticker] * len(prices), dtype="str"),
        "price": np.asarray(prices, dtype=np.float64),
    })


def random_walk(ticker: str, days: int, seed: int, start: str = "2021-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    return validated(ticker, pd.bdate_range(start, periods=days), prices)
