"""Fixtures of the clean tests: an isolated store/log dir and validated price frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricecast.settings import Settings, reload_settings


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Store and logs under tmp_path, so nothing is written in the repository."""
    monkeypatch.setenv("PRICECAST_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("PRICECAST_LOG_DIR", str(tmp_path / "logs"))
    try:
        yield reload_settings()
    finally:
        monkeypatch.undo()
        reload_settings()


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
