"""A features frame whose return volatility changes on a known date, and train's real model_info."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.features.core import build_features
from components.train.core import time_split, train_model
from pricecast import frames


def regime_features(n_days: int = 500, change_at: int | None = None, *, n_tickers: int = 20,
                    calm_vol: float = 0.01, wild_vol: float = 0.03, seed: int = 0) -> pd.DataFrame:
    """Feature rows of random-walk prices; from row ``change_at`` on, daily vol is ``wild_vol``."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-01", periods=n_days)
    vol = np.full(n_days, calm_vol)
    if change_at is not None:
        vol[change_at:] = wild_vol
    parts = []
    for i in range(n_tickers):
        returns = rng.normal(0.0, 1.0, n_days) * vol
        returns[0] = 0.0
        price = rng.uniform(20, 400) * np.exp(np.cumsum(returns))
        parts.append(pd.DataFrame({"date": dates, "ticker": f"T{i}", "price": price,
                                   "log_return": np.r_[np.nan, np.diff(np.log(price))],
                                   "segment": np.int64(0), "clipped": False}))
    return build_features(pd.concat(parts, ignore_index=True))


def model_info_for(features_df: pd.DataFrame, test_fraction: float = 0.2) -> dict[str, Any]:
    """What the train stage writes as model_info, from its own core."""
    _, info = train_model(features_df, time_split(features_df, test_fraction=test_fraction, n_windows=2))
    return info.to_dict()


def write_shards(features_df: pd.DataFrame, folder: Path, shards: int) -> list[str]:
    """The rows as the features stage writes them: one Parquet file per ticker-hash shard."""
    folder.mkdir(parents=True, exist_ok=True)
    shard = frames.shard_of(features_df["ticker"], shards)
    return [str(frames.write_frame(features_df[shard == i].reset_index(drop=True),
                                   folder / frames.SHARD_FILE.format(i)))
            for i in range(shards)]
