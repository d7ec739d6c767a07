"""Writing the raw table as K ticker-hash partitions, a buffer's worth of rows at a time.

One shard is one Parquet file, the single-table shape small data always had. K > 1 shards are a
directory of every ``part-XXXXX.parquet`` (:data:`pricecast.frames.SHARD_FILE`), each holding
whole tickers (:func:`pricecast.frames.shard_of`); a shard no ticker hashes to is a file with the
schema and no rows, so every downstream task finds its file.

Rows arrive in batches (a generator block, a file's table) and are scattered to one
``pyarrow.parquet.ParquetWriter`` per shard, so memory is bounded by the buffer
(:data:`BUFFER_ROWS` rows in all, at most :data:`ROW_GROUP_ROWS` per shard), never by the total.
Everything is written under a temporary name next to the output and renamed into place at the
end: a failure leaves no half-written file or directory behind.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pricecast import frames
from pricecast.errors import ConfigError

MAX_SHARDS = 1024
ROW_GROUP_ROWS = 1 << 20  # pyarrow's own default row group: one shard keeps today's file layout
BUFFER_ROWS = 2_000_000  # all shards' buffered rows together (~60 MB of date/ticker/price)


def check_shards(shards: int) -> int:
    """``shards`` if it is a partition count ingest can write, else a ConfigError with the fix."""
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ConfigError(
            f"shards={shards!r} is not a partition count ingest can write (1 to {MAX_SHARDS}).",
            f"Use shards=1 for one Parquet file (small data) or up to {MAX_SHARDS} ticker partitions; "
            "about one shard per 3 M rows keeps every task near or under 1 GB (measured).",
        )
    return shards


def with_pandas_metadata(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the pandas metadata ``DataFrame.to_parquet`` would write, so a streamed
    file reads back exactly like one written from a frame."""
    if schema.metadata and b"pandas" in schema.metadata:
        return schema
    return pa.Schema.from_pandas(schema.empty_table().to_pandas(), preserve_index=False)


def _allow_open_files(count: int) -> None:
    """Raise the soft open-file limit when K writers would not fit under it (best effort)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


class PartitionWriter:
    """K Parquet writers behind one ``write(table, shard_ids)``; use it as a context manager.

    ``commit()`` closes the files, writes the empty shards and renames the result into ``path``;
    leaving the ``with`` block without committing (an exception) removes everything written.
    """

    def __init__(self, path: str | Path, shards: int, schema: pa.Schema, *,
                 row_group_rows: int = ROW_GROUP_ROWS, buffer_rows: int = BUFFER_ROWS) -> None:
        self.path = Path(path)
        self.shards = check_shards(shards)
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.buffer_rows = buffer_rows
        self.rows = [0] * shards
        self._buffers: list[list[pa.Table]] = [[] for _ in range(shards)]
        self._buffered = [0] * shards
        self._writers: list[pq.ParquetWriter | None] = [None] * shards
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if shards == 1:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            os.close(fd)
            self._tmp = Path(tmp)
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
            _allow_open_files(shards)
        self._done = False

    def _file(self, shard: int) -> Path:
        return self._tmp if self.shards == 1 else self._tmp / frames.SHARD_FILE.format(shard)

    # ------------------------------------------------------------------ writing
    def write(self, table: pa.Table, shard_ids: np.ndarray | None = None) -> None:
        """Add ``table``'s rows, row i to shard ``shard_ids[i]`` (all to shard 0 when None)."""
        if table.num_rows == 0:
            return
        table = table.cast(self.schema) if table.schema != self.schema else table
        if shard_ids is None or self.shards == 1:
            self._add(0, table)
            return
        shard_ids = np.asarray(shard_ids, dtype=np.int64)
        counts = np.bincount(shard_ids, minlength=self.shards)
        present = np.flatnonzero(counts)
        if len(present) == 1:
            self._add(int(present[0]), table)
            return
        # One stable sort and one take per batch; each shard's rows are then a zero-copy slice,
        # in their original order (so (ticker, date) order survives).
        ordered = table.take(pa.array(np.argsort(shard_ids, kind="stable")))
        ends = np.cumsum(counts)
        for shard in present:
            self._add(int(shard), ordered.slice(int(ends[shard] - counts[shard]), int(counts[shard])))

    def _add(self, shard: int, table: pa.Table) -> None:
        self._buffers[shard].append(table)
        self._buffered[shard] += table.num_rows
        self.rows[shard] += table.num_rows
        if self._buffered[shard] >= self.row_group_rows:
            self._flush(shard)
        elif sum(self._buffered) >= self.buffer_rows:
            for other in range(self.shards):
                self._flush(other)

    def _flush(self, shard: int) -> None:
        if not self._buffers[shard]:
            return
        writer = self._writers[shard]
        if writer is None:
            writer = self._writers[shard] = frames.parquet_writer(self._file(shard), self.schema)
        writer.write_table(pa.concat_tables(self._buffers[shard]), row_group_size=self.row_group_rows)
        self._buffers[shard] = []
        self._buffered[shard] = 0

    # ------------------------------------------------------------------ finishing
    def commit(self) -> list[int]:
        """Finish every shard file and move the result to ``path``; the rows of each shard."""
        for shard in range(self.shards):
            self._flush(shard)
            writer = self._writers[shard]
            if writer is None:  # no ticker hashed here: the schema and no rows
                with frames.parquet_writer(self._file(shard), self.schema) as empty:
                    empty.write_table(self.schema.empty_table())
            else:
                writer.close()
                self._writers[shard] = None
        if self.path.is_dir() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        elif self.path.exists() and self.shards > 1:
            self.path.unlink()
        os.replace(self._tmp, self.path)
        self._done = True
        return list(self.rows)

    def abort(self) -> None:
        """Drop everything written so far."""
        for writer in self._writers:
            if writer is not None:
                try:
                    writer.close()
                except Exception:  # noqa: BLE001 - already failing; the files are removed anyway
                    pass
        self._writers = [None] * self.shards
        if self._tmp.is_dir():
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            self._tmp.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._done:
            self.abort()


__all__ = ["BUFFER_ROWS", "MAX_SHARDS", "ROW_GROUP_ROWS", "PartitionWriter", "check_shards", "with_pandas_metadata"]
