"""Test support shared by the model stages' tests: clean-shaped frames and an isolated KFP local run.

The frames are built directly (not through ingest/validate/clean) so these tests pin the model
stages' behaviour on their input contract alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricecast import frames
from pricecast.settings import Settings


def clean_frame(
    n_tickers: int = 3,
    n_days: int = 120,
    *,
    seed: int = 0,
    ar: float = 0.0,
    vol: float = 0.01,
    start: str = "2020-01-01",
    gaps: dict[str, int] | None = None,
) -> pd.DataFrame:
    """A frame obeying the clean contract: sorted by (ticker, date), log returns, segments.

    Args:
        n_tickers: Number of tickers (``T000``, ``T001``...).
        n_days: Business days per ticker.
        seed: Random seed.
        ar: AR(1) coefficient of the daily log returns (0 = a random walk in log price).
        vol: Standard deviation of the return shocks.
        start: First business day.
        gaps: ``{ticker: row}``: that ticker's log return at ``row`` is NaN and a new segment
            starts there, as the clean stage marks a long gap.
    """
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, vol, size=(n_tickers, n_days))
    returns = np.empty_like(shocks)
    returns[:, 0] = shocks[:, 0]
    for t in range(1, n_days):  # vectorized over tickers; the recursion itself is sequential
        returns[:, t] = ar * returns[:, t - 1] + shocks[:, t]
    log_price = np.log(rng.uniform(20, 500, size=(n_tickers, 1))) + np.cumsum(returns, axis=1)
    dates = pd.bdate_range(start, periods=n_days)
    tickers = [f"T{i:03d}" for i in range(n_tickers)]

    price = np.exp(log_price)
    # Recomputed from the prices, as the clean stage does, so serving (prices only) matches.
    log_return = np.full_like(price, np.nan)
    log_return[:, 1:] = np.diff(np.log(price), axis=1)
    segment = np.zeros((n_tickers, n_days), dtype=np.int64)
    for ticker, row in (gaps or {}).items():
        i = tickers.index(ticker)
        log_return[i, row] = np.nan
        segment[i, row:] += 1
    return pd.DataFrame({
        "date": np.tile(dates.to_numpy(), n_tickers),
        "ticker": np.repeat(tickers, n_days),
        "price": price.ravel(),
        "log_return": log_return.ravel(),
        "segment": segment.ravel(),
        "clipped": np.zeros(n_tickers * n_days, dtype=bool),
    })




@pytest.fixture
def kfp_local(tmp_path: Path, isolated_store: Settings) -> Path:
    """KFP local mode in-process (SubprocessRunner, no venv, no Docker); yields the pipeline root."""
    from kfp import local

    root = tmp_path / "pipeline_root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


def write_parquet(df: pd.DataFrame, path: Path) -> str:
    """Write ``df`` where a ``dsl.importer`` can pick it up; returns the path as a string."""
    frames.write_frame(df, path)
    return str(path)


def write_outlier_bounds(clean_df: pd.DataFrame, path: Path) -> str:
    """The clean stage's outlier-bounds artifact for ``clean_df`` (as train takes it); returns its path."""
    import json

    from components.clean.core import clean_prices

    _, report = clean_prices(clean_df[["date", "ticker", "price"]])
    path.write_text(json.dumps(report.bounds_document()), encoding="utf-8")
    return str(path)


def write_split(frame: pd.DataFrame, path: Path, test_fraction: float = 0.2, n_windows: int = 3) -> str:
    """The clean stage's split artifact for ``frame``'s dates (as train takes it); returns its path."""
    import json

    from pricecast.time_split import time_split

    path.write_text(json.dumps(time_split(frame, test_fraction, n_windows).to_dict()), encoding="utf-8")
    return str(path)


def local_component(func):
    """``func`` as a lightweight component for the in-process local runner (kfp already installed)."""
    from kfp import dsl

    return dsl.component(func, base_image="python:3.11-slim", install_kfp_package=False)
