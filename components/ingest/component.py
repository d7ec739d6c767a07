"""KFP wrapper of ingest: a plain function the pipeline turns into a component at compile time.

KFP lightweight components ship the function's source alone, so every import is inside it.
No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
"""

from typing import List  # noqa: UP035 - KFP reads typing.List from the signature

from kfp.dsl import Dataset, Output


def ingest(
    raw: Output[Dataset],
    source: str = "generator",
    format: str = "auto",
    date_column: str = "date",
    ticker_column: str = "ticker",
    price_column: str = "price",
    date_format: str = "",
    default_ticker: str = "SERIES",
    tickers: int = 20,
    days: int = 756,
    start_date: str = "",
    seed: int = 42,
    encoding: str = "utf-8",
    store_url: str = "",
    force_from: str = "",
    shards: int = 1,
) -> List[int]:  # noqa: UP006 - KFP recognises typing.List
    """Read daily prices from the generator, a file, s3:// or HTTP(S) into date/ticker/price.

    With ``shards`` > 1 the rows are written as ticker-hash partitions for per-shard tasks. The
    generator streams blocks of 256 tickers to the partitions, so memory stays bounded (one
    block plus a ~2 M-row write buffer) whatever the size; the same seed gives the same rows for
    any ``shards``. File, s3:// and HTTP(S) sources are read whole and then scattered: their peak
    memory is about the source's size, as with one shard.

    HTTP sources are retried 3 times (0.5 s, 1 s, 2 s backoff) on connection errors, timeouts
    and 5xx; when they stay down an incident record is written to <store>/incidents/.

    Args:
        raw: Output Parquet table: date, ticker, price as read (raw types), or every source
            column when the mapping did not find them all (validate then shows the diff). One
            file when ``shards`` is 1, else a directory of all ``shards`` files
            part-00000.parquet... (pricecast.frames), each holding whole tickers; a shard no
            ticker hashes to holds the schema and no rows. Metadata: rows, shards, rows_per_shard.
        source: "generator" (seeded GBM with an AR(1) return term) or a path, file://, s3:// or
            http(s):// URL of CSV, JSON or Parquet.
        format: auto (extension, Content-Type, then the bytes), csv, json or parquet.
        date_column: Source column holding the date.
        ticker_column: Source column holding the ticker; a source without one is one ticker.
        price_column: Source column holding the close price.
        date_format: strptime format of the dates (e.g. "%b %d %Y"); passed on to validate.
        default_ticker: Ticker name of a source without a ticker column.
        tickers: Generator: number of tickers.
        days: Generator: business days per ticker.
        start_date: Generator: first business day (YYYY-MM-DD); empty: the data ends on the last
            business day (today, or the Friday before), so it is fresh.
        seed: Generator: random seed (same seed, same data).
        encoding: Text encoding of CSV and JSON sources.
        store_url: Store for checkpoints and incidents; empty uses PRICECAST_STORE_URL.
        force_from: Stage to recompute from ("" = reuse any matching checkpoint).
        shards: Number of ticker-hash partitions to write (1 to 1024); 1 writes one file.

    Returns:
        The shard numbers ``[0, ..., shards - 1]``, for a ``dsl.ParallelFor`` over the shards.
    """
    import logging

    from components.ingest.source_key import checkpoint_params, is_http
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    options = {
        "source": source, "format": format, "date_column": date_column, "ticker_column": ticker_column,
        "price_column": price_column, "date_format": date_format, "default_ticker": default_ticker,
        "tickers": tickers, "days": days, "start_date": start_date, "seed": seed, "encoding": encoding,
    }
    params = {**checkpoint_params(options), "shards": shards}
    mode = mode_for("ingest", force_from)
    # An HTTP body can change under the same URL and we cannot know without fetching it, so an
    # HTTP source is always fetched (its checkpoint is still written, for --from runs). Later
    # stages key on the bytes, so an unchanged body still reuses everything downstream.
    always_fetch = is_http(source) and mode == "auto"

    # The heavy imports (pandas, pyarrow, requests) are inside compute: a restored task never needs them.
    def compute(ctx):
        from components.ingest import core

        if always_fetch:
            ctx.log.info("HTTP source: fetched on every run (the body may change under the same URL).")
        spec = core.load_source_spec(None, **options)
        written = core.ingest_to(spec, raw.path, shards, store_url=store_url or None)
        ctx.record(rows_out=written.rows, **written.info)

    result = run_stage(
        "ingest", params=params, inputs={}, outputs={"raw": raw.path}, compute=compute,
        code=code_fingerprint("components.ingest.component"), mode="force" if always_fetch else mode,
        store_url=store_url or None,
        # Raw data is "last good" only once every shard passed validate: plan moves ingest's LATEST,
        # so `--from validate` after a bad file resumes from the last file that passed.
        advance_latest=False,
    )
    raw.metadata.update(result.extra)
    raw.metadata["rows"] = result.rows_out
    raw.metadata["restored_from_checkpoint"] = result.restored
    raw.metadata["checkpoint_key"] = result.key
    # The shards raw really holds: a `--from` run restores the last good raw whatever it was cut
    # into, and the fan-out must follow the files, not the parameter.
    written_shards = int(result.extra.get("shards", 1))
    raw.metadata["shards"] = written_shards
    if written_shards != shards:
        logging.getLogger("components.ingest").warning(
            "The restored raw data holds %d shard(s), not the %d asked for; fanning out over %d.",
            written_shards, shards, written_shards)
    return list(range(written_shards))
