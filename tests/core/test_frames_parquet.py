"""The project's Parquet encoding (``pricecast.frames.parquet_writer``): what it writes reads back.

Dictionary pages only for the columns that are not floating point: distinct floats made pyarrow
build and drop a dictionary per column, which was 45 % of a features shard's write.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.ingest.partitions import PartitionWriter
from pricecast import frames


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
