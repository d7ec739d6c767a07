"""The project's Parquet encoding (``pricecast.frames.parquet_writer``): what it writes reads back.

Dictionary pages only for the columns that are not floating point: distinct floats made pyarrow
build and drop a dictionary per column, which was 45 % of a features shard's write.
"""

from __future__ import annotations

import errno
import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.ingest.partitions import PartitionWriter
from pricecast import frames, storage


def _frame(rows: int = 5_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), "D"),
        "ticker": rng.choice(["AAA", "BBB", "ÇÇÇ"], rows),
        "segment": rng.integers(0, 4, rows),
        "clipped": rng.random(rows) < 0.1,
        "price": rng.lognormal(3, 1, rows),
        "ret": rng.normal(0, 0.01, rows),
        "dow_sin": np.sin(rng.integers(0, 5, rows).astype(float)),
    })


def _dictionary_columns(path) -> set[str]:
    meta = pq.ParquetFile(path).metadata
    found = set()
    for group in range(meta.num_row_groups):
        for i in range(meta.num_columns):
            column = meta.row_group(group).column(i)
            if any("DICTIONARY" in str(e) for e in column.encodings) or column.dictionary_page_offset:
                found.add(column.path_in_schema)
    return found


def test_a_frame_reads_back_exactly_with_dictionaries_only_off_the_float_columns(tmp_path) -> None:
    frame = _frame()
    path = tmp_path / "frame.parquet"
    with frames.BlockWriter(path) as writer:
        writer.write(frame.iloc[:3_000])
        writer.write(frame.iloc[3_000:])
    pd.testing.assert_frame_equal(frames.read_frame(path), frame)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert _dictionary_columns(path) == {"date", "ticker", "segment"}  # booleans are run-length encoded


def test_ingest_partitions_use_the_same_encoding_and_an_empty_shard_keeps_the_schema(tmp_path) -> None:
    frame = _frame(2_000)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with PartitionWriter(tmp_path / "raw", 3, table.schema) as writer:
        writer.write(table, np.where(frame["ticker"] == "AAA", 0, 2))  # nothing hashes to shard 1
        rows = writer.commit()
    assert rows[1] == 0 and sum(rows) == len(frame)
    parts = frames.shard_paths(tmp_path / "raw")
    empty = pq.read_table(parts[1])
    assert empty.num_rows == 0 and empty.schema.names == list(frame.columns)
    assert _dictionary_columns(parts[0]) == {"date", "ticker", "segment"}  # booleans are run-length encoded


def test_a_written_table_carries_the_sha256_of_its_bytes(tmp_path) -> None:
    """The writer hashes what it writes (the checkpoint reads that instead of the file again)."""
    path = tmp_path / "f.parquet"
    with frames.BlockWriter(path) as writer:
        for start in range(0, 5_000, 1_000):
            writer.write(_frame().iloc[start:start + 1_000])
    assert storage.remembered_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pq.ParquetFile(path).metadata.num_row_groups == 5
    path.write_bytes(path.read_bytes() + b"!")  # changed since: the digest no longer counts
    assert storage.remembered_sha256(path) is None


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    written = []
    real = frames._HashedFile.write

    def write(self, data: bytes) -> int:
        if sum(written) + len(data) > budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data))
        return real(self, data)

    monkeypatch.setattr(frames._HashedFile, "write", write)


def test_a_block_that_fails_to_write_raises_its_own_error_and_leaves_no_file(tmp_path, monkeypatch) -> None:
    """The write runs on a background thread: its error still reaches the caller, nothing is left behind."""
    _disk_full_after(monkeypatch, 10_000)
    with pytest.raises(OSError) as failure:
        with frames.BlockWriter(tmp_path / "f.parquet") as writer:
            for _ in range(3):
                writer.write(_frame())
    assert failure.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_the_callers_error_wins_over_a_failing_write_and_nothing_is_left(tmp_path, monkeypatch) -> None:
    _disk_full_after(monkeypatch, 4)  # the magic bytes fit, the first block does not
    with pytest.raises(KeyError, match="computing the next block"):
        with frames.BlockWriter(tmp_path / "f.parquet") as writer:
            writer.write(_frame())
            raise KeyError("computing the next block")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rows", [0, 1, 2_000])
def test_write_frame_round_trips_any_length(tmp_path, rows: int) -> None:
    frame = _frame(rows)
    frames.write_frame(frame, tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(frames.read_frame(tmp_path / "f.parquet"), frame, check_index_type=False)


def test_columns_are_numpy_for_numbers_and_dates_and_arrow_for_tickers(tmp_path) -> None:
    """What train, drift and evaluate read instead of a pandas frame: the same values, nulls kept."""
    frame = _frame(50)
    frame.loc[3, "price"] = np.nan
    frame.loc[4, "date"] = pd.NaT
    path = frames.write_frame(frame, tmp_path / "f.parquet")
    (columns,) = frames.read_shards([path])
    assert len(columns) == 50 and "price" in columns and "nope" not in columns
    assert columns.columns == list(frame.columns)
    np.testing.assert_array_equal(columns["price"], frame["price"].to_numpy())  # NaN where it was
    assert columns["date"].dtype.kind == "M" and np.isnat(columns["date"][4])  # the file's own unit
    np.testing.assert_array_equal(columns["date"], frame["date"].to_numpy())
    assert isinstance(columns["ticker"], pa.ChunkedArray)  # no Python string per row
    assert columns["ticker"].to_pylist() == frame["ticker"].tolist()
    assert columns["price"] is columns["price"]  # converted once
    blocks = list(frames.read_blocks([path], columns=["segment"]))
    assert [b.columns for b in blocks] == [["segment"]] and blocks[0]["segment"].dtype == np.int64


def test_a_filtered_read_keeps_only_the_matching_rows(tmp_path) -> None:
    frame = _frame(2_000)
    path = frames.write_frame(frame, tmp_path / "f.parquet")
    since = np.datetime64("2021-06-01", "ns")
    (kept,) = frames.read_shards([path], columns=["date", "price"], filters=[("date", ">=", since)])
    expected = frame[frame["date"] >= since]
    assert kept.columns == ["date", "price"] and len(kept) == len(expected) > 0
    np.testing.assert_array_equal(kept["price"], expected["price"].to_numpy())
