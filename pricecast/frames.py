"""Reading and writing the tables stages pass to each other (Parquet, written atomically).

numpy, pandas and pyarrow are imported by the functions that use them: a task calls
:func:`shard_path` and :func:`shard_paths` before it knows whether its checkpoint restores, and a
restored task never reads a table.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a stage's Parquet artifact."""
    import pandas as pd

    return pd.read_parquet(path, columns=columns)


def write_frame(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as Parquet to ``path`` via a temporary file, so no reader sees half of it."""
    with BlockWriter(path) as writer:  # one block
        writer.write(df)
    return writer.path


# --------------------------------------------------------------------------- blocks
# Rows a stage works on at once: whole tickers up to about this many rows. Columns of a block
# stay a few MB, which the allocator reuses from block to block; one frame of millions of rows
# takes fresh memory for every temporary, and on VMs where a fresh page costs a host fault that
# is most of a large stage's time.
BLOCK_ROWS = 1 << 19


def ticker_runs(tickers: Any) -> tuple[np.ndarray, list[str]]:
    """Where each run of equal tickers starts, and the run's ticker.

    ``tickers``: a pandas Series or an Arrow array (a :class:`Columns` string column). For rows
    grouped by ticker (a stage's sorted output) the runs are ``pd.factorize``'s uniques in
    order, and run ``i`` holds the rows of code ``i``. Neighbours are compared in Arrow, not
    hashed string by string: 0.04 s instead of 0.66 s for 5 M rows. A ticker may head more than
    one run when its rows are not together; a null ticker starts a run of its own.
    """
    import numpy as np

    if len(tickers) == 0:
        return np.empty(0, dtype=np.int64), []
    values = _arrow_values(tickers)
    if values is None:  # mixed Python objects: runs of their pandas codes
        codes, _ = _pandas_factorize(tickers)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        return starts, [str(t) for t in np.asarray(tickers, dtype=object)[starts]]
    return _runs(values)


def factorize(tickers: Any) -> tuple[np.ndarray, list[str]]:
    """``pd.factorize(tickers)`` in Arrow: int64 codes by first appearance (-1 for a missing
    value) and the distinct values in that order, as strings. No Python string per row.

    Rows grouped by ticker (every stage's output) take the neighbour comparison of
    :func:`ticker_runs`, not a hash per row; any other order, or a missing ticker, goes through
    Arrow's dictionary encoding, which numbers values by first appearance too.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _arrow_values(tickers)
    if values is None:
        return _pandas_factorize(tickers)
    starts, names = _runs(values)
    if values.null_count == 0 and len(set(names)) == len(names):
        counts = np.diff(np.append(starts, len(values)))
        return np.repeat(np.arange(len(starts), dtype=np.int64), counts), names
    encoded = pc.dictionary_encode(values)
    codes = pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy()
    return codes, [str(u) for u in encoded.dictionary.to_pylist()]


def _arrow_values(values: Any) -> Any:
    """``values`` (a pandas Series, numpy array or Arrow array) as one Arrow array, dictionaries
    decoded; None when Arrow cannot type them (mixed Python objects in a pandas column)."""
    import pyarrow as pa

    try:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        elif not isinstance(values, pa.Array):
            values = pa.array(getattr(values, "array", values))  # a pandas Series: its extension array
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values


def _runs(values: Any) -> tuple[np.ndarray, list[str]]:
    import numpy as np
    import pyarrow.compute as pc

    if len(values) == 0:
        return np.empty(0, dtype=np.int64), []
    changed = pc.fill_null(pc.not_equal(values[1:], values[:-1]), True)
    starts = np.flatnonzero(np.r_[True, np.asarray(changed, dtype=bool)])
    return starts, [str(t) for t in values.take(starts).to_pylist()]


def _pandas_factorize(values: Any) -> tuple[np.ndarray, list[str]]:
    import numpy as np
    import pandas as pd  # only a pandas object column holds values Arrow cannot type

    codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=False)
    return codes.astype(np.int64), [str(u) for u in uniques]


def ticker_blocks(tickers: pd.Series, rows: int = BLOCK_ROWS) -> list[slice]:
    """Consecutive row ranges of whole tickers, each about ``rows`` long (a longer ticker alone).

    ``tickers`` must keep each ticker's rows together (a frame sorted by ticker).
    """
    n = len(tickers)
    if n == 0:
        return []
    starts, _ = ticker_runs(tickers)
    blocks, begin = [], 0
    for start in starts[1:]:
        if start - begin >= rows:
            blocks.append(slice(begin, int(start)))
            begin = int(start)
    blocks.append(slice(begin, n))
    return blocks


def parquet_writer(where: str | Path | Any, schema: Any) -> Any:
    """A ``pyarrow.parquet.ParquetWriter`` with the project's encoding, for every table it writes.

    ``where``: a path or a binary file object. zstd, and dictionary pages only for the columns
    that are not floating point (dates, tickers, segments, flags). Prices, returns and features
    are nearly all distinct: pyarrow's default builds a dictionary for every column and drops it
    once it overflows, which took 45 % of the write (625 k rows x 22 columns: 0.37 s -> 0.21 s
    without), and the file is smaller without.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    dictionary = [field.name for field in schema if not pa.types.is_floating(field.type)]
    return pq.ParquetWriter(where, schema, compression="zstd", use_dictionary=dictionary)


class _HashedFile:
    """A binary file that keeps the sha256 of the bytes written to it.

    The Parquet writer's sink: the checkpoint then needs no second read of a file just written
    (5 M rows of features: 500 MB, ~0.5 s). hashlib releases the GIL on large updates.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close(), after the writer's last bytes
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._file.write(data)

    @property
    def closed(self) -> bool:
        return self._file.closed

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class BlockWriter:
    """Write a table block by block (one Parquet row group each), atomically at ``close``.

    ``write`` takes frames with the same columns; nothing is visible at ``path`` until every
    block is written, and an exception inside ``with`` leaves no file behind.

    A block is encoded, compressed and hashed on a background thread while the caller computes
    the next one (pyarrow and hashlib release the GIL): with a core to spare, the features stage
    at 5 M rows hid most of its ~1.9 s of writing and hashing. At most one block waits, so the
    memory is two blocks'. The finished file carries its sha256 (:func:`storage.remember_sha256`).
    """

    def __init__(self, path: str | Path) -> None:
        from pricecast.storage import new_temp_file

        self.path = Path(path)
        self._tmp = new_temp_file(self.path)  # a store file's mode: its checkpoint may be a hard link to it
        self._sink = _HashedFile(self._tmp)
        self._writer: Any = None
        self._background = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="block-writer")
        self._in_flight: concurrent.futures.Future[None] | None = None
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa

        table = pa.Table.from_pandas(df, preserve_index=False, schema=self._writer.schema if self._writer else None)
        if self._writer is None:
            self._writer = parquet_writer(self._sink, table.schema)
        self._finish_block()  # the previous block's error surfaces here, at the latest at close
        self._in_flight = self._background.submit(self._writer.write_table, table)
        self.rows += len(df)

    def _finish_block(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def __enter__(self) -> BlockWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        from pricecast.storage import remember_sha256

        try:
            if kind is not None:
                with contextlib.suppress(Exception):  # the caller's own error is the one to see
                    self._close()
                return
            self._close()
            if self._writer is None:
                raise ValueError(f"No block was written to {self.path}: write at least one (it may be empty).")
            os.replace(self._tmp, self.path)
            remember_sha256(self.path, self._sink.hexdigest())
        finally:
            self._tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        """Wait for the last block, then close the writer and the file, whatever fails on the way."""
        try:
            self._finish_block()
        finally:
            self._background.shutdown(wait=True)
            try:
                if self._writer is not None:
                    self._writer.close()
            finally:
                self._sink.close()


# --------------------------------------------------------------------------- shards
# A sharded table is a directory of ``part-00000.parquet`` ... files, each holding whole tickers
# (every row of a ticker lands in the same part), so per-ticker work (returns, windows, outlier
# bounds) never crosses a shard. One shard may also be a plain Parquet file: small data keeps
# the single-file shape it always had.
SHARD_FILE = "part-{:05d}.parquet"


def shard_of(tickers: pd.Series | np.ndarray | list[str], shards: int) -> np.ndarray:
    """Each ticker's shard: crc32 of its UTF-8 name modulo ``shards``.

    crc32, not ``hash()``: Python salts string hashes per process, and a ticker must land in the
    same shard in every task, run and machine. Hashed once per distinct ticker.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(tickers, dtype=object), sort=False)
    per_ticker = np.fromiter((zlib.crc32(str(t).encode("utf-8")) % shards for t in uniques),
                             dtype=np.int64, count=len(uniques))
    # A missing ticker (code -1) goes to shard 0: never wherever the last distinct ticker went.
    return np.where(codes >= 0, per_ticker[codes], 0) if len(uniques) else np.zeros(len(codes), dtype=np.int64)


def shard_path(path: str | Path, shard: int) -> Path:
    """The Parquet file of ``shard`` in a sharded table (a plain file is shard 0 of one)."""
    path = Path(path)
    if path.is_file():
        if shard != 0:
            raise ValueError(f"{path} is a single table (one shard); shard {shard} does not exist")
        return path
    return path / SHARD_FILE.format(shard)


def shard_paths(path: str | Path) -> list[Path]:
    """Every shard file of a sharded table, in shard order."""
    path = Path(path)
    return [path] if path.is_file() else sorted(path.glob("part-*.parquet"))


class Columns:
    """A table's columns for numpy work, without building a pandas frame.

    A frame costs its construction and, for tickers, a Python string per row (or a categorical
    built by hashing them); train, drift and evaluate need neither. ``columns[name]`` is a
    numpy array for a number, flag or date column (nulls as NaN or NaT) and the Arrow array for
    a string column: compare or factorize tickers in Arrow with :func:`ticker_runs` and
    :func:`factorize`. ``len`` is the number of rows, as for a frame. Columns convert on first
    use, once. (pyarrow imports pandas for its numpy conversion all the same: what this saves
    is the frame, not the import.)
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._converted: dict[str, Any] = {}

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def __contains__(self, name: object) -> bool:
        return name in self.table.column_names

    def __getitem__(self, name: str) -> Any:
        if name not in self._converted:
            import pyarrow as pa

            column = self.table.column(name)
            kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            textual = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            self._converted[name] = column if textual else column.to_numpy()
        return self._converted[name]


def read_shards(paths: Iterable[str | Path], columns: list[str] | None = None,
                filters: list[tuple[str, str, Any]] | None = None) -> Iterator[Columns]:
    """The tables one at a time: a reader of many shards never holds more than one.

    With ``filters`` a shard is read a row group at a time and filtered before the next is
    read, so only the matching rows of a shard are ever held (a test period's rows, not the
    whole shard).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in paths:
        table = pq.ParquetFile(path)
        if not filters:
            yield Columns(table.read(columns=columns))
            continue
        expression = pq.filters_to_expression(filters)
        wanted = None if columns is None else list(dict.fromkeys([*columns, *(f[0] for f in filters)]))
        pieces = [table.read_row_group(group, columns=wanted).filter(expression)
                  for group in range(table.num_row_groups)]
        kept = pa.concat_tables(pieces) if pieces else table.schema_arrow.empty_table()
        yield Columns(kept.select(columns) if columns is not None else kept)


def read_blocks(paths: Iterable[str | Path], columns: list[str] | None = None) -> Iterator[Columns]:
    """Every Parquet row group of the tables, one at a time: memory bounded by a block, not a shard.

    The features stage writes one row group per block of whole tickers (:class:`BlockWriter`),
    so a per-ticker computation on a block (the rows whose target is realised before the test
    period) is the one on the whole shard.
    """
    import pyarrow.parquet as pq

    for path in paths:
        table = pq.ParquetFile(path)
        for group in range(table.num_row_groups):
            yield Columns(table.read_row_group(group, columns=columns))
