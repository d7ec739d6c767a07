"""Ingest's ticker-hash partitions: whole tickers per shard, the same rows for any shard count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from components.ingest import core, generator, partitions
from pricecast import frames
from pricecast.errors import ConfigError, DataFormatError, SourceError

# 600 tickers = two full blocks of 256 and a partial one.
GEN = {"tickers": 600, "days": 12, "start_date": "2021-01-04", "seed": 9}


def _union(path: Path) -> pd.DataFrame:
    parts = [pd.read_parquet(p) for p in frames.shard_paths(path)]
    return pd.concat(parts, ignore_index=True).sort_values(["ticker", "date"], ignore_index=True)


def _ingest(tmp_path: Path, shards: int, name: str = "raw", **options) -> tuple[core.Written, Path]:
    out = tmp_path / f"{name}-{shards}"
    written = core.ingest_to(core.load_source_spec(None, **options), out, shards)
    return written, out


def _assert_whole_tickers(path: Path, shards: int, days: int | None = None) -> None:
    files = frames.shard_paths(path)
    assert [f.name for f in files] == [frames.SHARD_FILE.format(i) for i in range(shards)]
    seen: set[str] = set()
    for shard, file in enumerate(files):
        part = pd.read_parquet(file)
        tickers = part["ticker"].unique()
        assert (frames.shard_of(tickers, shards) == shard).all(), f"a ticker of shard {shard} hashes elsewhere"
        assert not seen & set(tickers), "a ticker is split across shards"
        seen |= set(tickers)
        if days is not None:
            assert (part.groupby("ticker").size() == days).all()


@pytest.mark.parametrize("shards", [2, 7, 16])
def test_generator_partitions_hold_whole_tickers_and_their_union_is_the_single_table(tmp_path, shards):
    one, single = _ingest(tmp_path, 1, **GEN)
    many, sharded = _ingest(tmp_path, shards, **GEN)

    assert single.is_file() and sharded.is_dir()
    _assert_whole_tickers(sharded, shards, days=GEN["days"])
    expected = pd.read_parquet(single)
    pd.testing.assert_frame_equal(_union(sharded), expected)
    assert many.rows == one.rows == 600 * 12 and many.shards == shards
    assert many.rows_per_shard == [len(pd.read_parquet(p)) for p in frames.shard_paths(sharded)]
    assert many.info["shards"] == shards and many.info["rows_per_shard"] == many.rows_per_shard


def test_same_seed_same_rows_for_any_shard_count_and_as_generate_prices(tmp_path):
    frame = generator.generate_prices(GEN["tickers"], GEN["days"], GEN["start_date"], GEN["seed"], 0.05, 0.25, 0.15)
    for shards in (1, 3, 64):
        _, out = _ingest(tmp_path, shards, **GEN)
        pd.testing.assert_frame_equal(_union(out), frame)


def test_each_block_of_tickers_has_its_own_stream_so_more_tickers_do_not_change_the_first():
    args = ("2021-01-04", 9, 0.05, 0.25, 0.15)
    small = generator.generate_prices(generator.BLOCK_TICKERS, 30, *args)
    large = generator.generate_prices(generator.BLOCK_TICKERS + 10, 30, *args)
    pd.testing.assert_frame_equal(large.iloc[:len(small)], small)
    other_seed = generator.generate_prices(generator.BLOCK_TICKERS, 30, "2021-01-04", 10, 0.05, 0.25, 0.15)
    assert not np.allclose(other_seed["price"], small["price"])


def test_every_shard_file_exists_even_when_no_ticker_hashes_to_it(tmp_path):
    written, out = _ingest(tmp_path, 8, tickers=2, days=5, start_date="2021-01-04", seed=1)

    files = frames.shard_paths(out)
    assert len(files) == 8 and sum(written.rows_per_shard) == 10
    empty = [f for f, rows in zip(files, written.rows_per_shard, strict=True) if rows == 0]
    assert len(empty) >= 6
    part = pd.read_parquet(empty[0])
    assert part.empty and list(part.columns) == ["date", "ticker", "price"]
    assert str(part["date"].dtype) == "datetime64[ns]" and part["price"].dtype == np.float64


CSV = (
    "Date,Symbol,Close,Volume\n"
    + "".join(f"2021-01-{day:02d},{ticker},{10 + day + i / 10},{i}\n"
              for i, ticker in enumerate(["007", "AAA", "BBB", "CCC", "DDD", "EEE", "FFF"])
              for day in (4, 5, 6))
)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_csv_file_scattered_to_shards_equals_the_single_table(tmp_path, monkeypatch, streamed):
    if streamed:  # every CSV streamed, in batches that cut tickers
        monkeypatch.setattr(core, "CSV_STREAM_MIN_BYTES", 0)
        monkeypatch.setattr(core, "STREAM_BATCH_ROWS", 4)
    source = tmp_path / "prices.csv"
    source.write_text(CSV)
    options = {"source": str(source), "date_column": "Date", "ticker_column": "Symbol", "price_column": "Close"}
    one, single = _ingest(tmp_path, 1, **options)
    many, sharded = _ingest(tmp_path, 4, **options)
    assert many.info.get("streamed", False) is streamed

    _assert_whole_tickers(sharded, 4, days=3)
    expected = pd.read_parquet(single).sort_values(["ticker", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(_union(sharded), expected)
    assert "007" in set(expected["ticker"])  # tickers stay text in every shard
    assert many.rows == one.rows == 21
    assert many.info["renamed"] == one.info["renamed"] == {"Date": "date", "Symbol": "ticker", "Close": "price"}


def test_an_unmapped_source_goes_whole_to_shard_zero_for_validate_to_report(tmp_path):
    source = tmp_path / "odd.csv"
    source.write_text("when,what\n2021-01-04,1\n2021-01-05,2\n")
    written, out = _ingest(tmp_path, 3, source=str(source))

    assert written.info["mapped"] is False and written.rows_per_shard == [2, 0, 0]
    assert list(pd.read_parquet(frames.shard_path(out, 2)).columns) == ["when", "what"]


@pytest.mark.parametrize("shards", [0, -1, partitions.MAX_SHARDS + 1])
def test_a_shard_count_out_of_range_is_refused_with_the_fix(tmp_path, shards):
    with pytest.raises(ConfigError) as excinfo:
        _ingest(tmp_path, shards, **GEN)
    assert f"shards={shards}" in excinfo.value.problem and "shards=1" in excinfo.value.fix
    assert not list(tmp_path.iterdir())


def test_a_failure_mid_write_leaves_nothing_behind(tmp_path, monkeypatch):
    real = generator.price_blocks

    def failing(*args, **kwargs):
        blocks = real(*args, **kwargs)
        yield next(blocks)
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(generator, "price_blocks", failing)
    for shards in (1, 4):
        with pytest.raises(RuntimeError, match="disk filled up"):
            _ingest(tmp_path, shards, **GEN)
    assert not list(tmp_path.iterdir())


def test_the_writer_bounds_its_buffer_and_keeps_row_order(tmp_path):
    schema = pa.schema([("ticker", pa.large_string()), ("i", pa.int64())])
    with partitions.PartitionWriter(tmp_path / "out", 3, schema, row_group_rows=50, buffer_rows=40) as writer:
        for start in range(0, 300, 30):
            ids = np.arange(start, start + 30) % 3
            writer.write(pa.table({"ticker": [f"T{i}" for i in ids], "i": np.arange(start, start + 30)}, schema=schema),
                         ids)
            assert sum(writer._buffered) < 40 + 30
        rows = writer.commit()
    assert rows == [100, 100, 100]
    for shard, file in enumerate(frames.shard_paths(tmp_path / "out")):
        values = pd.read_parquet(file)["i"].to_numpy()
        assert (values % 3 == shard).all() and (np.diff(values) > 0).all()


def _parquet_source(tmp_path: Path, row_group_size: int = 500) -> Path:
    frame = generator.generate_prices(40, 60, "2021-01-04", 3, 0.05, 0.25, 0.15)
    frame = frame.rename(columns={"date": "Date", "ticker": "Symbol", "price": "Close"}).assign(Volume=1)
    source = tmp_path / "prices.parquet"
    frame.to_parquet(source, index=False, row_group_size=row_group_size)
    return source


def test_a_parquet_file_is_streamed_in_batches_and_its_union_equals_the_single_table(tmp_path, monkeypatch):
    monkeypatch.setattr(core, "STREAM_BATCH_ROWS", 333)  # batches that cut tickers and row groups
    source = _parquet_source(tmp_path)
    options = {"source": str(source), "date_column": "Date", "ticker_column": "Symbol", "price_column": "Close"}
    one, single = _ingest(tmp_path, 1, **options)
    many, sharded = _ingest(tmp_path, 5, **options)

    assert many.info["streamed"] is True and "streamed" not in one.info
    _assert_whole_tickers(sharded, 5, days=60)
    pd.testing.assert_frame_equal(_union(sharded), pd.read_parquet(single))
    assert many.rows == one.rows == 2400 and many.info["tickers"] == one.info["tickers"] == 40
    assert many.info["dropped"] == one.info["dropped"] == ["Volume"]


def test_a_streamed_parquet_file_keeps_the_errors_of_a_whole_one(tmp_path):
    source = _parquet_source(tmp_path)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(source.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match="looks truncated"):
        _ingest(tmp_path, 4, source=str(cut))
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"date": pd.Series([], dtype="str"), "price": pd.Series([], dtype=float)}).to_parquet(empty)
    with pytest.raises(DataFormatError, match="no rows"):
        _ingest(tmp_path, 4, source=str(empty))
    with pytest.raises(SourceError, match="does not exist"):
        _ingest(tmp_path, 4, source=str(tmp_path / "missing.parquet"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.parquet", "empty.parquet", "prices.parquet"]


def _stream_every_csv(monkeypatch) -> None:
    monkeypatch.setattr(core, "CSV_STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(core, "STREAM_BATCH_ROWS", 5)


def test_a_streamed_csv_whose_later_batch_changes_type_is_read_whole_like_one_shard(tmp_path, monkeypatch):
    _stream_every_csv(monkeypatch)
    source = tmp_path / "prices.csv"
    source.write_text(CSV.replace("2021-01-06,FFF,16.6", "2021-01-06,FFF,bad"))
    one, single = _ingest(tmp_path, 1, source=str(source), ticker_column="Symbol", date_column="Date",
                          price_column="Close")
    many, sharded = _ingest(tmp_path, 3, source=str(source), ticker_column="Symbol", date_column="Date",
                            price_column="Close")

    assert "streamed" not in many.info
    expected = pd.read_parquet(single).sort_values(["ticker", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(_union(sharded), expected)
    assert "bad" in set(expected["price"])  # raw values, as read, for validate to judge


@pytest.mark.parametrize(("body", "error"), [
    (CSV.encode() + "2021-01-07,AAA,1\xe9\n".encode("latin-1") + CSV.encode().split(b"\n", 1)[1], "not valid UTF-8"),
    (CSV.encode() + b"2021-01-07,AAA", "looks truncated"),
    (b"Date,Symbol,Close\n", "header but no rows"),
])
def test_a_streamed_csv_fails_with_the_errors_of_a_whole_one(tmp_path, monkeypatch, body, error):
    _stream_every_csv(monkeypatch)
    source = tmp_path / "bad.csv"
    source.write_bytes(body)
    options = {"source": str(source), "ticker_column": "Symbol", "date_column": "Date", "price_column": "Close"}
    with pytest.raises(DataFormatError) as one:
        _ingest(tmp_path, 1, **options)
    with pytest.raises(DataFormatError) as many:
        _ingest(tmp_path, 4, **options)
    assert error in one.value.problem and many.value.problem == one.value.problem
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]
