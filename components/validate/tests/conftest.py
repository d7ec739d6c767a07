"""Fixtures of the validate tests: an isolated store and log dir, and a good price frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
