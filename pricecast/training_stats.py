"""What one shard of features tells the trainer: the sufficient statistics of its training rows.

The features stage runs once per shard; train runs once and never holds every row. For a linear
model that is no loss: the standardized ridge fit needs only the count, means and centered
scatter of the features and the target (:class:`pricecast.moments.Moments`), and those pool
exactly across shards. The drift reference needs the distribution of the returns-based features
on the training rows, and mergeable sketches (:class:`pricecast.sketch.Sketch`) pool exactly too.
So each shard writes a :class:`ShardStats` document, and :func:`pool` turns K of them into what a
single process would have computed from all the rows.

Which rows train: those whose target is realised before the split's first test date
(:func:`pricecast.time_split.train_mask`), decided per shard on whole tickers, so a shard's
training rows are exactly the rows a single process would pick from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pricecast import frames
from pricecast.columns import DRIFT_FEATURES, TARGET
from pricecast.errors import ConfigError
from pricecast.moments import Moments
from pricecast.sketch import Sketch
from pricecast.time_split import Split, iso_day, train_mask

STATS_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ShardStats:
    """One shard's training rows, summarised: enough to fit, hash and profile them."""

    shard: int
    rows: int
    features: list[str]
    frequency: str
    moments: Moments | None  # None: the shard has no training row (e.g. only young tickers)
    data_hash: str
    sketches: dict[str, Sketch]
    first_date: str | None
    last_date: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATS_FORMAT, "shard": self.shard, "rows": self.rows, "features": self.features,
            "frequency": self.frequency, "moments": self.moments.to_dict() if self.moments else None,
            "data_hash": self.data_hash, "sketches": {k: s.to_dict() for k, s in self.sketches.items()},
            "first_date": self.first_date, "last_date": self.last_date,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardStats:
        if data.get("format") != STATS_FORMAT:
            raise ConfigError(f"Training statistics of format {data.get('format')!r}; this trainer reads "
                              f"format {STATS_FORMAT}.", "Rerun the features stage with this version.")
        return cls(
            shard=int(data["shard"]), rows=int(data["rows"]), features=list(data["features"]),
            frequency=str(data["frequency"]),
            moments=Moments.from_dict(data["moments"]) if data.get("moments") else None,
            data_hash=str(data["data_hash"]),
            sketches={k: Sketch.from_dict(v) for k, v in data["sketches"].items()},
            first_date=data.get("first_date"), last_date=data.get("last_date"),
        )


def merge_blocks(parts: Sequence[ShardStats], shard: int) -> ShardStats:
    """One shard's statistics from those of its blocks (consecutive runs of whole tickers).

    Pooled like shards are (:func:`_combined`); the hash is over the blocks' hashes in order,
    and one block keeps its own, so small data hashes as before.
    """
    if not parts:
        raise ValueError("merge_blocks needs at least one block")
    useful = [p for p in parts if p.moments is not None]
    if len(useful) <= 1:
        return dataclasses.replace((useful or parts)[0], shard=shard)
    return ShardStats(shard=shard, **_combined(useful, lambda part: part.data_hash))


def _combined(useful: Sequence[ShardStats], hash_line: Callable[[ShardStats], str]) -> dict[str, Any]:
    """The fields of several parts' training rows as one: moments by Chan's update, sketches by
    adding counts, the hash over each part's ``hash_line`` in the parts' order."""
    digest = hashlib.sha256()
    for part in useful:
        digest.update(f"{hash_line(part)}\n".encode())
    names = sorted({name for p in useful for name in p.sketches})
    return {
        "rows": sum(p.rows for p in useful),
        "features": list(useful[0].features),
        "frequency": useful[0].frequency,
        "moments": Moments.pool([p.moments for p in useful if p.moments is not None]),
        "data_hash": digest.hexdigest(),
        "sketches": {n: Sketch.merge([p.sketches[n] for p in useful if n in p.sketches]) for n in names},
        "first_date": min(p.first_date for p in useful if p.first_date),
        "last_date": max(p.last_date for p in useful if p.last_date),
    }


@dataclasses.dataclass(frozen=True)
class PooledStats:
    """K shards' training rows as one: what :func:`fit` and the model's description need."""

    rows: int
    features: list[str]
    frequency: str
    moments: Moments
    data_hash: str
    sketches: dict[str, Sketch]
    first_date: str
    last_date: str


# Training rows are summarised this many at a time through one reused buffer (7 MB for 14
# features): a shard block's whole (rows x features) copy was tens of MB of fresh memory per
# block, which on this project's VMs costs more in page faults than the arithmetic.
CHUNK_ROWS = 1 << 16


def shard_stats(features_df: Any, split: Split, names: Sequence[str], frequency: str,
                shard: int = 0) -> ShardStats:
    """Summarise one shard's training rows (``features_df`` is the features stage's output: a
    pandas frame or :class:`pricecast.frames.Columns`).

    The rows go through in chunks of :data:`CHUNK_ROWS`: each chunk's moments pool exactly as
    the shards' do, and the hash reads the same bytes as one block would. Each drift feature is
    sketched over all the rows at once (one column of them is a few MB).
    """
    mask = train_mask(features_df, split)
    positions = np.flatnonzero(mask)
    rows = len(positions)
    if rows == 0:
        return ShardStats(shard, 0, list(names), frequency, None, "", {}, None, None)
    columns = [np.asarray(features_df[name], dtype=np.float64) for name in names]
    y = np.asarray(features_df[TARGET], dtype=np.float64)[positions]
    dates = np.asarray(features_df["date"])[positions]
    profiled = [(c, names.index(c)) for c in DRIFT_FEATURES if c in names]
    digest = hashlib.sha256("\0".join(names).encode())  # names, then the row-major block: see _rows_hash
    buffer = np.empty((min(rows, CHUNK_ROWS), len(names)), dtype=np.float64)
    # Gathered column by column into a (features x rows) buffer, then transposed into the
    # row-major block in one copy: a gather written straight into the block's columns strides
    # across rows (5 M rows: 0.57 s -> 0.40 s with the hash, the same bytes).
    gathered = np.empty((len(names), len(buffer)), dtype=np.float64)
    moments: list[Moments] = []
    for start in range(0, rows, CHUNK_ROWS):
        chunk = positions[start:start + CHUNK_ROWS]
        x, by_column = buffer[:len(chunk)], gathered[:, :len(chunk)]
        for j, column in enumerate(columns):
            np.take(column, chunk, out=by_column[j], mode="clip")  # clip: no bounds buffer; positions are valid
        np.copyto(x, by_column.T)
        digest.update(memoryview(x))
        # The moments centre the chunk in place.
        moments.append(Moments.of(x, y[start:start + len(chunk)], overwrite_x=True))
    # A sketch per column over all the rows at once: one column's rows are a few MB, and a
    # sketch of 64 k values took a sort where one of the whole column takes a bincount
    # (5 M rows: ~1.8 s of features' time -> ~0.8 s).
    sketches = {c: Sketch.of(columns[j][positions]) for c, j in profiled}
    codes, tickers = frames.factorize(features_df["ticker"])
    hashed = _rows_hash(digest, dates, codes[positions], tickers, y)
    first, last = iso_day(dates.min()), iso_day(dates.max())
    return ShardStats(shard, rows, list(names), frequency, Moments.pool(moments), hashed, sketches, first, last)


def _rows_hash(digest: Any, dates: np.ndarray, codes: np.ndarray, tickers: Sequence[str], y: np.ndarray) -> str:
    """sha256 of the training rows: ``digest`` already holds the feature names and the feature
    block (row-major float64, as it lies in memory); then the dates, tickers and target.

    ``codes`` and ``tickers``: the rows' ticker codes in their whole frame and the frame's
    tickers (:func:`pricecast.frames.factorize`). The hash takes the rows' own
    ``pd.factorize``, whatever else the frame holds: codes renumbered by first appearance
    among these rows, and the tickers they name.
    """
    digest.update(memoryview(np.ascontiguousarray(dates.astype("datetime64[ns]").view(np.int64))))
    codes, names = _first_appearance(codes, tickers)
    digest.update(memoryview(codes))
    digest.update("\0".join(names).encode())
    digest.update(memoryview(np.ascontiguousarray(y)))
    return digest.hexdigest()


def _first_appearance(codes: np.ndarray, tickers: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """``codes`` renumbered 0, 1, ... by first appearance (-1, a missing ticker, stays), and the
    tickers the new codes name."""
    if len(codes) and codes[0] >= 0 and bool(np.all(codes[1:] >= codes[:-1])):
        # Grouped rows (every features block): a new code where the ticker changes, no sort.
        changed = codes[1:] != codes[:-1]
        starts = np.flatnonzero(np.r_[True, changed])
        return np.cumsum(np.r_[0, changed], dtype=np.int64), [tickers[c] for c in codes[starts]]
    known = codes >= 0
    present, first = np.unique(codes[known], return_index=True)
    order = np.argsort(first, kind="stable")
    new_code = np.empty(len(present), dtype=np.int64)
    new_code[order] = np.arange(len(present), dtype=np.int64)
    out = np.full(len(codes), -1, dtype=np.int64)
    out[known] = new_code[np.searchsorted(present, codes[known])]
    return out, [tickers[c] for c in present[order]]


def pool(parts: Sequence[ShardStats]) -> PooledStats:
    """The shards' statistics as one set of rows.

    Raises:
        ConfigError: The shards disagree on the features or the frequency, or no shard has a
            training row.
    """
    if not parts:
        raise ConfigError("No shard statistics to train on.", "Run the features stage on at least one shard.")
    kinds = {(tuple(p.features), p.frequency) for p in parts}
    if len(kinds) > 1:
        raise ConfigError(
            "The shards' features disagree: " + "; ".join(f"{f} ({', '.join(n)})" for n, f in sorted(kinds)) + ".",
            "Run every shard with the same frequency (validate resolves it once for the run).",
        )
    useful = sorted((p for p in parts if p.moments is not None), key=lambda p: p.shard)
    if not useful:
        raise ConfigError("No row has a target before the first test date, so there is nothing to train on.",
                          "Ingest more history or lower test_fraction.")
    # In shard order: the same rows in the same shards always hash the same.
    return PooledStats(**_combined(useful, lambda part: f"{part.shard}:{part.data_hash}"))

