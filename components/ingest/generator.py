"""A seeded generator of daily closes: geometric Brownian motion with an AR(1) return term.

Pure GBM has independent returns, so no model can beat the naive last-value forecast on it and
the pipeline would have nothing to learn. We add a small AR(1) term to the daily log returns,

    r_t = m + x_t,    x_t = ar_coef * x_{t-1} + e_t,    e_t ~ N(0, s^2 (1 - ar_coef^2)),

so a linear model on lagged returns has a real (weak) signal, like momentum in real markets. The
innovation variance is scaled by (1 - ar_coef^2) so the returns' stationary volatility is still
the requested ``volatility``; ``m = drift/252 - s^2/2`` is the usual GBM (Ito) drift in log space.

Tickers are generated in blocks of :data:`BLOCK_TICKERS` (256), block ``b`` from its own random
stream ``SeedSequence([seed, b])``: the same seed gives the same rows however the output is cut
into shards, and memory is bounded by one block (256 tickers x days), not by the total: 50 M rows
(20,000 tickers x 2,520 days) never exist in memory at once. numpy hashes ``[seed, 0]`` exactly
as ``seed``, so up to 256 tickers the data is what ``default_rng(seed)`` made before blocks
existed (make run's 20 tickers, the examples); more tickers than that got new prices with blocks.
Within a block everything is vectorized over a (days, tickers) array: 2,000 tickers x 2,520
days (5 M rows) take about a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TRADING_DAYS_PER_YEAR = 252
# Tickers per random stream. Part of the data's definition: changing it changes every price a
# seed makes (and so every checkpoint and example number). 256 x 2,520 days is ~5 MB per array.
BLOCK_TICKERS = 256
# The table's Arrow schema, as pandas writes the frame generate_prices returns (large_string is
# pandas' "str" dtype), so a streamed Parquet file reads back exactly like a written frame.
SCHEMA = pa.schema([("date", pa.timestamp("ns")), ("ticker", pa.large_string()), ("price", pa.float64())])


def ticker_names(count: int) -> list[str]:
    """``T0001``... zero-padded so that string order equals numeric order."""
    width = max(4, len(str(count)))
    return [f"T{i:0{width}d}" for i in range(1, count + 1)]


def _block_prices(rng: np.random.Generator, tickers: int, days: int, drift: float, volatility: float,
                  ar_coef: float) -> np.ndarray:
    """Rounded closes of one block, laid out (tickers, days)."""
    annual_vol = volatility * rng.uniform(0.6, 1.4, size=tickers)
    annual_drift = drift + rng.normal(0.0, 0.05, size=tickers)
    daily_vol = annual_vol / np.sqrt(TRADING_DAYS_PER_YEAR)
    daily_mean = annual_drift / TRADING_DAYS_PER_YEAR - 0.5 * daily_vol**2
    start_price = rng.uniform(10.0, 500.0, size=tickers)

    # Laid out (days, tickers): the AR(1) recursion steps through days, each step one vector
    # operation over the block's tickers (2,520 small steps take a few ms). scipy.signal.lfilter
    # would do the same, but importing it costs about a second in every pipeline subprocess.
    returns = rng.standard_normal((days - 1, tickers))
    returns *= daily_vol * np.sqrt(1.0 - ar_coef**2)
    carried = np.empty(tickers)
    for day in range(1, days - 1):
        np.multiply(returns[day - 1], ar_coef, out=carried)
        returns[day] += carried
    returns += daily_mean

    log_price = np.empty((days, tickers))
    log_price[0] = np.log(start_price)
    np.cumsum(returns, axis=0, out=log_price[1:])
    log_price[1:] += log_price[0]
    return np.round(np.exp(log_price.T), 4)  # ticker by ticker, date by date


def price_blocks(
    tickers: int,
    days: int,
    start_date: str,
    seed: int,
    drift: float,
    volatility: float,
    ar_coef: float,
) -> Iterator[tuple[list[str], pa.Table]]:
    """The generated rows one block of tickers at a time: (the block's ticker names, its rows).

    Each table has :data:`SCHEMA`, rows sorted by (ticker, date), ``days`` rows per ticker.
    Arguments as :func:`generate_prices`.
    """
    dates = pa.array(pd.bdate_range(start_date, periods=days).values.astype("datetime64[ns]"))
    width = max(4, len(str(tickers)))
    for block, first in enumerate(range(0, tickers, BLOCK_TICKERS)):
        count = min(BLOCK_TICKERS, tickers - first)
        rng = np.random.default_rng(np.random.SeedSequence([seed, block]))
        price = _block_prices(rng, count, days, drift, volatility, ar_coef).ravel()
        names = [f"T{i:0{width}d}" for i in range(first + 1, first + count + 1)]
        codes = pa.array(np.repeat(np.arange(count, dtype=np.int32), days))
        # Arrow's take builds the string column in C; a numpy object array would take seconds.
        ticker = pc.take(pa.array(names, type=pa.large_string()), codes)
        date_col = pc.take(dates, pa.array(np.tile(np.arange(days, dtype=np.int32), count)))
        yield names, pa.Table.from_arrays([date_col, ticker, pa.array(price)], schema=SCHEMA)


def generate_prices(
    tickers: int,
    days: int,
    start_date: str,
    seed: int,
    drift: float,
    volatility: float,
    ar_coef: float,
) -> pd.DataFrame:
    """Daily closes of ``tickers`` synthetic tickers over ``days`` business days, as one frame.

    Holds every row: fine for tests and examples; the ingest stage streams :func:`price_blocks`
    to its partitions instead.

    Args:
        tickers: Number of tickers (rows = tickers x days).
        days: Business days per ticker, starting at ``start_date``.
        start_date: First business day (ISO date).
        seed: Seed of the random generator (>= 0); the same seed gives the same frame.
        drift: Mean annual drift; each ticker gets its own around it.
        volatility: Mean annual volatility; each ticker gets 0.6x to 1.4x of it.
        ar_coef: AR(1) coefficient of the daily log returns (|ar_coef| < 1).

    Returns:
        A frame sorted by (ticker, date) with columns ``date`` (datetime64[ns]), ``ticker``
        (str) and ``price`` (float64, 4 decimals).
    """
    blocks = [table for _, table in price_blocks(tickers, days, start_date, seed, drift, volatility, ar_coef)]
    return pa.concat_tables(blocks).to_pandas()


def start_ending_on(end: date, days: int) -> str:
    """The first of ``days`` business days that end on ``end`` (ISO date), for ``generate_prices``."""
    return f"{pd.bdate_range(end=end, periods=days)[0]:%Y-%m-%d}"


__all__ = ["BLOCK_TICKERS", "SCHEMA", "TRADING_DAYS_PER_YEAR", "generate_prices", "price_blocks",
           "start_ending_on", "ticker_names"]
