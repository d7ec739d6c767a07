"""Validated price frames at any supported frequency, for the tests of real-world data shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pricecast.frequency import Frequency, spacing

# One regular date grid per frequency: Friday closes for weekly, the 1st ("Jan 1 2000") for monthly.
ALIASES = {Frequency.BUSINESS: "B", Frequency.DAILY: "D", Frequency.WEEKLY: "W-FRI", Frequency.MONTHLY: "MS"}


def price_frame(frequency: Frequency | str, tickers: int = 5, periods: int = 120, start: str = "2000-01-03",
                scale: float = 100.0, seed: int = 0, ar: float = 0.2) -> pd.DataFrame:
    """``tickers`` series of ``periods`` closes spaced at ``frequency``: a random walk with an
    AR(1) term in the returns (something to learn), starting near ``scale``."""
    frequency = Frequency(frequency)
    assert spacing(frequency)  # a supported frequency
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=periods, freq=ALIASES[frequency])
    frames = []
    for k in range(tickers):
        shocks = rng.normal(0.0, 0.02, size=periods)
        returns = np.empty(periods)
        returns[0] = 0.0
        for i in range(1, periods):
            returns[i] = ar * returns[i - 1] + shocks[i]
        frames.append(pd.DataFrame({"date": dates.astype("datetime64[ns]"), "ticker": f"S{k:02d}",
                                    "price": scale * (1 + k / 10) * np.exp(np.cumsum(returns))}))
    return pd.concat(frames, ignore_index=True)
