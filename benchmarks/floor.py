"""The honest floor: the pipeline's work on generator prices, in one process, with nothing else.

Read the prices Parquet, sort by (ticker, date), take log returns, compute the same 14 features
and next-period target the pipeline's features stage builds, hold out the last 20 % of the dates,
fit a standardized Ridge regression by its normal equations, score MAPE on the held-out rows and
write the features Parquet. No validation, gap or outlier handling, checkpoints, drift,
evaluation windows or report: what any implementation must do, done the cheapest reasonable way.

Written independently of the pipeline on purpose: this module imports nothing from
``pricecast``, ``components`` or ``pipelines`` (an earlier floor reused the pipeline's pandas
feature code, which hid the pipeline's own cost). ``tests/core/test_floor.py`` checks that its
features equal the pipeline's ``build_features`` to 1e-9 on the same prices.

Rolling windows are differences of cumulative sums (one pass per column instead of one per
window element). Cumulative sums carry a rounding error of about eps x the running total, so
returns are centred on their mean first; the window variance is ``(S2 - S1^2 / w) / (w - 1)``,
safe here because a return's mean is tiny next to its spread (the pipeline uses two passes
because it must also be safe on data where it is not).

The work goes through blocks of whole tickers (about 260 k rows each): the features of a
block are written as one Parquet row group and its training rows added to the fit's sums, and
only the test rows' features are kept until the fit is solved. Memory stays a few hundred MB
at 5 M rows, which matters on a VM where every new GB of memory costs seconds of page faults.

    python benchmarks/floor.py PRICES.parquet OUT_DIR     # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

RETURN_LAGS = 5
SHORT_WINDOW = 5
LONG_WINDOW = 20
MIN_HISTORY = LONG_WINDOW + 1  # prices a row needs: LONG_WINDOW returns and the price before them
TEST_FRACTION = 0.2
ALPHA = 1.0
FEATURES = [
    *(f"ret_lag_{k}" for k in range(RETURN_LAGS)),
    f"ret_mean_{SHORT_WINDOW}", f"ret_mean_{LONG_WINDOW}", f"ret_vol_{SHORT_WINDOW}", f"ret_vol_{LONG_WINDOW}",
    f"price_vs_ma_{LONG_WINDOW}", "dow_sin", "dow_cos", "month_sin", "month_cos",
]
TARGET = "target"
BLOCK = 1 << 18  # rows per block of whole tickers: temporaries of a few MB, reused by malloc


def read_sorted(path: str | Path) -> tuple[np.ndarray, pa.Array, np.ndarray, np.ndarray]:
    """``(day numbers, ticker dictionary, ticker codes, prices)`` sorted by (ticker, date).

    Tickers are hashed to codes (Arrow's dictionary encoding) and the small dictionary sorted, so
    the sort key is one int64 per row; a stable sort of already ordered data is one pass.
    """
    table = pq.read_table(path, columns=["date", "ticker", "price"])
    encoded = pc.dictionary_encode(table.column("ticker").combine_chunks())
    dictionary = encoded.dictionary
    rank = np.empty(len(dictionary), dtype=np.int64)
    order = np.asarray(pc.sort_indices(dictionary))
    rank[order] = np.arange(len(dictionary))
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    days = table.column("date").to_numpy().astype("datetime64[D]").astype(np.int64)
    price = table.column("price").to_numpy().astype(np.float64, copy=False)
    key = codes << 32 | (days - days.min())
    idx = np.argsort(key, kind="stable")
    return days[idx], dictionary.take(pa.array(order)), codes[idx], price[idx]


def _window_sums(x: np.ndarray, w: int, rows_back: np.ndarray) -> np.ndarray:
    """Sum of ``x[i-w+1..i]`` at each row i, given ``rows_back`` = those i minus w (all >= 0)."""
    c = np.cumsum(x)
    sums = c[w:]
    sums -= c[:-w]  # in place: sums[j] is now x[j+1] + ... + x[j+w]
    return sums[rows_back]


def build(days: np.ndarray, codes: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows with complete windows and, on them, the target and the 14 features.

    Rows are sorted by (ticker, date). A row is kept when it has at least MIN_HISTORY prices of
    its ticker up to and including it and no non-finite return in its long window; its target is
    the next row's return in the same ticker (NaN on a ticker's last row, which is kept).

    Returns:
        ``(kept row numbers, target, features)``, the features a Fortran-ordered matrix with
        one contiguous column per name of :data:`FEATURES`.
    """
    n = len(price)
    start = np.ones(n, dtype=bool)
    start[1:] = codes[1:] != codes[:-1]
    r = np.log(price)
    r[1:] -= r[:-1].copy()
    r[start] = np.nan
    idx = np.arange(n)
    position = idx - np.maximum.accumulate(np.where(start, idx, 0))
    finite = np.isfinite(r)
    bad = ~finite
    bad[start] = False  # a ticker's first return is undefined by construction, not bad data
    candidates = np.flatnonzero(position >= MIN_HISTORY - 1)  # each >= LONG_WINDOW
    keep = candidates[_window_sums(bad.astype(np.float64), LONG_WINDOW, candidates - LONG_WINDOW) == 0]

    target = np.full(len(keep), np.nan)
    has_next = keep < n - 1
    target[has_next] = r[keep[has_next] + 1]
    x = np.empty((len(keep), len(FEATURES)), order="F")
    column = {name: x[:, j] for j, name in enumerate(FEATURES)}
    for k in range(RETURN_LAGS):
        np.take(r, keep - k, out=column[f"ret_lag_{k}"])

    centre = float(r[finite].mean())
    centred = np.where(finite, r - centre, 0.0)
    squares = centred * centred
    for w in (SHORT_WINDOW, LONG_WINDOW):
        back = keep - w
        s1 = _window_sums(centred, w, back)
        s2 = _window_sums(squares, w, back)
        np.add(s1 / w, centre, out=column[f"ret_mean_{w}"])
        s2 -= s1 * s1 / w
        np.maximum(s2, 0.0, out=s2)
        np.sqrt(s2 / (w - 1), out=column[f"ret_vol_{w}"])
    price_centre = float(price.mean())
    ma = _window_sums(price - price_centre, LONG_WINDOW, keep - LONG_WINDOW) / LONG_WINDOW + price_centre
    np.log(price[keep] / ma, out=column[f"price_vs_ma_{LONG_WINDOW}"])

    day = days[keep]
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    turn = 2 * np.pi * np.arange(7) / 7
    np.take(np.sin(turn), weekday, out=column["dow_sin"])
    np.take(np.cos(turn), weekday, out=column["dow_cos"])
    turn = 2 * np.pi * np.arange(12) / 12
    np.take(np.sin(turn), month, out=column["month_sin"])
    np.take(np.cos(turn), month, out=column["month_cos"])
    return keep, target, x


def test_start(days: np.ndarray) -> int:
    """The first held-out day: the last TEST_FRACTION of the distinct dates are the test period."""
    first = int(days.min())
    dates = np.flatnonzero(np.bincount(days - first)) + first
    return int(dates[len(dates) - round(len(dates) * TEST_FRACTION)])


def split_masks(days: np.ndarray, codes: np.ndarray, keep: np.ndarray, target: np.ndarray,
                first_test_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Among the kept rows: train (target realised before the first test day) and test (dated in
    the test period, with a target to score)."""
    # The date a row's target is realised: its ticker's next date (none on a ticker's last row).
    realised = np.full(len(days), np.iinfo(np.int64).max)
    same = codes[1:] == codes[:-1]
    realised[:-1][same] = days[1:][same]
    has_target = np.isfinite(target)
    return has_target & (realised[keep] < first_test_day), has_target & (days[keep] >= first_test_day)


class RidgeSums:
    """The sums a Ridge fit needs, added block by block: count, sums and cross products.

    Shifted by the first block's means so no large total cancels when the centred scatter is
    formed at the end.
    """

    def __init__(self, p: int) -> None:
        self.n, self.shift_x, self.shift_y = 0, None, 0.0
        self.sx, self.sy, self.sxx, self.sxy = np.zeros(p), 0.0, np.zeros((p, p)), np.zeros(p)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        if not len(y):
            return
        if self.shift_x is None:
            self.shift_x, self.shift_y = x.mean(axis=0), float(y.mean())
        xc, yc = x - self.shift_x, y - self.shift_y
        self.n += len(y)
        self.sx += xc.sum(axis=0)
        self.sy += float(yc.sum())
        self.sxx += xc.T @ xc
        self.sxy += xc.T @ yc

    def solve(self, alpha: float = ALPHA) -> tuple[np.ndarray, float]:
        """Coefficients (per unit of each feature) and intercept of Ridge on standardized features:
        ``(C / s s' + alpha I) b = c_xy / s`` with C the centred scatter and s the population
        standard deviations (what StandardScaler uses)."""
        n, p = self.n, len(self.sx)
        mx, my = self.sx / n, self.sy / n
        cxx = self.sxx - n * np.outer(mx, mx)
        cxy = self.sxy - n * mx * my
        scale = np.sqrt(np.diag(cxx) / n)
        scale[scale == 0] = 1.0
        beta = np.linalg.solve(cxx / np.outer(scale, scale) + alpha * np.eye(p), cxy / scale)
        coef = beta / scale
        return coef, float(my + self.shift_y - coef @ (mx + self.shift_x))


def mape(x: np.ndarray, price: np.ndarray, target: np.ndarray, coef: np.ndarray, intercept: float) -> float:
    """MAPE (percent) of the next price forecast ``price * exp(predicted return)``."""
    actual = price * np.exp(target)
    forecast = price * np.exp(x @ coef + intercept)
    return 100.0 * float(np.mean(np.abs(forecast - actual) / actual))


def blocks(codes: np.ndarray, rows: int | None = None) -> list[tuple[int, int]]:
    """``[lo, hi)`` row ranges of about ``rows`` (default BLOCK) rows each, cut only where a ticker starts."""
    rows = rows or BLOCK
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    at = np.searchsorted(starts, np.arange(rows, len(codes), rows))
    cuts = np.unique(np.r_[0, starts[at[at < len(starts)]]]).tolist()
    return list(zip(cuts, [*cuts[1:], len(codes)]))


def run(prices: str | Path, out_dir: str | Path) -> dict[str, float]:
    """The floor, timed from the read to the written features."""
    started = time.perf_counter()
    days, dictionary, codes, price = read_sorted(prices)
    read_s = time.perf_counter() - started
    first_test_day = test_start(days)
    sums = RidgeSums(len(FEATURES))
    held_out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    writer, feature_rows = None, 0
    ranges = blocks(codes)
    for lo, hi in ranges:
        keep, target, x = build(days[lo:hi], codes[lo:hi], price[lo:hi])
        train, test = split_masks(days[lo:hi], codes[lo:hi], keep, target, first_test_day)
        sums.add(x[train], target[train])
        kept_price = price[lo:hi][keep]
        held_out.append((x[test], kept_price[test], target[test]))
        table = pa.table({
            "date": pa.array(days[lo:hi][keep].astype("datetime64[D]").astype("datetime64[ns]")),
            "ticker": pa.DictionaryArray.from_arrays(pa.array(codes[lo:hi][keep].astype(np.int32)), dictionary),
            "price": kept_price, TARGET: target, **{name: x[:, j] for j, name in enumerate(FEATURES)},
        })
        if writer is None:
            writer = pq.ParquetWriter(Path(out_dir) / "floor-features.parquet", table.schema, compression="zstd")
        writer.write_table(table)
        feature_rows += len(keep)
    if writer is not None:
        writer.close()
    coef, intercept = sums.solve()
    test_x, test_price, test_target = (np.concatenate(parts) for parts in zip(*held_out))
    score = mape(test_x, test_price, test_target, coef, intercept)
    elapsed = time.perf_counter() - started
    return {
        "floor_s": elapsed, "read_sort_s": read_s,
        "floor_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": len(price), "feature_rows": feature_rows, "train_rows": sums.n,
        "test_rows": len(test_target), "test_mape": score, "blocks": len(ranges),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prices", help="Parquet with date, ticker and price columns (any row order)")
    parser.add_argument("out_dir", help="where floor-features.parquet is written")
    args = parser.parse_args()
    print(json.dumps(run(args.prices, args.out_dir)))


if __name__ == "__main__":
    main()
