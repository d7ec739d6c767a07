"""Fixtures of the validate tests: a good price frame (the isolated store is the root conftest's)."""

from __future__ import annotations

import pandas as pd
import pytest


def good_frame(rows: int = 150, tickers: tuple[str, ...] = ("AAA",)) -> pd.DataFrame:
    """Raw prices as a CSV would give them: ISO date strings, tickers, float prices."""
    dates = pd.bdate_range("2021-01-01", periods=rows).strftime("%Y-%m-%d")
    return pd.concat(
        [pd.DataFrame({"date": dates, "ticker": t, "price": [100.0 + k + i * 0.1 for i in range(rows)]})
         for k, t in enumerate(tickers)],
        ignore_index=True,
    )


@pytest.fixture
def good() -> pd.DataFrame:
    return good_frame()
