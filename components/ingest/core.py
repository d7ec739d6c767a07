"""Ingest: prices from the seeded generator, a file, ``s3://`` or HTTP(S), mapped onto date/ticker/price.

Real files name their columns differently ("Date", "Symbol", "Close") and write dates their own
way ("Jan 1 2000"). A :class:`SourceSpec` (flags, a YAML/TOML config file, or pipeline
parameters) maps them. Values keep their raw types here; validate parses and checks them, so a
bad file fails there with a schema diff instead of being half-fixed here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from components.ingest import compression, fetch, generator, partitions, readers
from components.ingest.source_key import GENERATOR, is_http, last_business_day
from pricecast import frames, storage
from pricecast.errors import ConfigError, PricecastError

log = logging.getLogger("components.ingest")

# Keys a shared pipeline config may hold for later stages: ignored here, not typos.
# (tests/pipeline/test_compiled.py checks that these plus SourceSpec cover every pipeline parameter.)
PIPELINE_KEYS = frozenset({
    "min_rows", "frequency", "max_gap_days", "outlier_sigma", "test_fraction", "n_windows", "alpha",
    "main_metric", "max_degradation", "psi_warn", "psi_alert", "min_directional_accuracy", "max_mape",
    "report_tickers", "require_approval", "store_url", "force_from", "shards",
})


class SourceSpec(BaseModel):
    """Where the prices come from and how the source's columns map onto date/ticker/price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(GENERATOR, description='"generator", a path, file://, s3:// or http(s):// URL.')
    format: Literal["auto", "csv", "json", "parquet"] = Field(
        "auto", description="auto: from the extension, the Content-Type, then the bytes.")
    date_column: str = Field("date", min_length=1, description="Source column holding the date.")
    ticker_column: str = Field("ticker", min_length=1, description="Source column holding the ticker.")
    price_column: str = Field("price", min_length=1, description="Source column holding the close price.")
    date_format: str = Field("", description='strptime format, e.g. "%b %d %Y"; empty: ISO or inferred.')
    default_ticker: str = Field("SERIES", min_length=1, description="Ticker of a source without a ticker column.")
    encoding: str = Field("utf-8", description="Text encoding of CSV/JSON sources.")
    tickers: int = Field(20, ge=1, le=1_000_000, description="Generator: number of tickers.")
    days: int = Field(756, ge=2, le=100_000, description="Generator: business days per ticker.")
    start_date: str = Field("", description="Generator: first business day; empty: the data ends on the last "
                                            "business day (today, or the Friday before).")
    seed: int = Field(42, description="Generator: random seed.")
    drift: float = Field(0.05, ge=-1, le=1, description="Generator: mean annual drift.")
    volatility: float = Field(0.25, gt=0, le=3, description="Generator: mean annual volatility.")
    ar_coef: float = Field(0.15, gt=-1, lt=1, description="Generator: AR(1) coefficient of daily log returns.")

    @field_validator("source")
    @classmethod
    def _source_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError('source is empty: use "generator" or a path/URL')
        return value.strip()

    @field_validator("start_date")
    @classmethod
    def _start_date_parses(cls, value: str) -> str:
        if not value:
            return value
        try:
            pd.Timestamp(value)
        except ValueError as exc:
            raise ValueError(f"start_date {value!r} is not a date (use YYYY-MM-DD)") from exc
        return value

    @property
    def is_generator(self) -> bool:
        return self.source == GENERATOR


def read_config(path: str | Path) -> dict[str, Any]:
    """A YAML or TOML config as a flat dict of options.

    One file serves ``pricecast validate --config`` and ``pricecast run --config``: top-level
    ``key: value`` pairs, and optionally an ``ingest:`` section whose keys win over the top
    level (other sections are someone else's and are ignored).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The config file {path} does not exist.", "Check the --config path.")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else _yaml(text)
    except Exception as exc:  # noqa: BLE001 - both parsers' errors say where the mistake is
        raise ConfigError(f"The config file {path} cannot be parsed: {exc}.", "Fix its syntax (YAML or TOML).") from exc
    if isinstance(data, dict):
        section = data.get("ingest") if isinstance(data.get("ingest"), dict) else {}
        data = {**{k: v for k, v in data.items() if not isinstance(v, dict)}, **section}
    if not isinstance(data, dict):
        raise ConfigError(f"The config file {path} must hold key: value pairs.", "See components/ingest/README.md.")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    if "source_format" in data:  # the pipeline parameter's name for the same option
        data["format"] = data.pop("source_format")
    return data


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text) or {}


def load_source_spec(config_path: str | Path | None = None, **overrides: Any) -> SourceSpec:
    """Build a SourceSpec from a config file and overrides; non-None overrides (flags) win."""
    values = read_config(config_path) if config_path else {}
    values = {k: v for k, v in values.items() if k not in PIPELINE_KEYS}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SourceSpec(**values)
    except ValidationError as exc:
        where = f" in {config_path}" if config_path else ""
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"Invalid ingest options{where}: {problems}.",
            f"Valid keys: {', '.join(SourceSpec.model_fields)}; see components/ingest/README.md.",
        ) from exc


# --------------------------------------------------------------------------- column mapping
def _find_column(columns: list[str], wanted: str) -> str | None:
    """The column named ``wanted``; failing that, the only one equal to it ignoring case."""
    if wanted in columns:
        return wanted
    matches = [c for c in columns if c.casefold() == wanted.strip().casefold()]
    return matches[0] if len(matches) == 1 else None


def map_columns(frame: pd.DataFrame, spec: SourceSpec, quiet: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rename the mapped columns to date/ticker/price; keep everything if any is missing.

    A source with date and price but no ticker column is one series named ``default_ticker``,
    unless the spec names a ticker column other than the default: then its absence is an error.
    ``quiet``: log nothing (the second and later batches of a streamed file).
    """
    frame = frame.rename(columns=lambda c: str(c).strip())
    columns = list(frame.columns)
    found = {role: _find_column(columns, getattr(spec, f"{role}_column")) for role in ("date", "ticker", "price")}
    # A ticker column named on purpose (not the default) must exist: a typo must not silently
    # turn a multi-ticker file into one series.
    ticker_optional = spec.ticker_column == SourceSpec.model_fields["ticker_column"].default
    missing = [getattr(spec, f"{role}_column") for role, col in found.items()
               if col is None and not (role == "ticker" and ticker_optional)]
    picked = [c for c in found.values() if c is not None]
    if len(set(picked)) != len(picked):
        raise ConfigError(f"One source column is mapped to two roles: {found}.",
                          "Give --date-column, --ticker-column and --price-column different columns.")
    if missing:
        if not quiet:
            log.warning("Columns %s not found in the source (it has %s); keeping every column as read so "
                        "validate can show the difference.", missing, columns)
        return frame, {"mapped": False, "missing_columns": missing, "columns": columns}
    if found["ticker"] is None:
        if not quiet:
            log.info("No %r column: the source is one series, ticker %r.", spec.ticker_column, spec.default_ticker)
        ticker = pd.Series(spec.default_ticker, index=frame.index, dtype="str")
    else:
        ticker = frame[found["ticker"]]
    out = pd.DataFrame({"date": frame[found["date"]], "ticker": ticker, "price": frame[found["price"]]})
    dropped = [c for c in columns if c not in picked]
    renamed = {col: role for role, col in found.items() if col is not None and col != role}
    if (renamed or dropped) and not quiet:
        log.info("Column mapping: renamed %s, dropped %s.", renamed or "nothing", dropped or "nothing")
    return out, {"mapped": True, "missing_columns": [], "columns": columns, "renamed": renamed, "dropped": dropped}


# --------------------------------------------------------------------------- ingest
@dataclasses.dataclass(frozen=True)
class Ingested:
    """The raw frame and what was learned reading it (logged and put on the artifact)."""

    frame: pd.DataFrame
    info: dict[str, Any]


def generator_start(spec: SourceSpec, today: date) -> str:
    """The generator's first date: ``start_date``, or where ``days`` business days end on the last one."""
    return spec.start_date or generator.start_ending_on(last_business_day(today), spec.days)


def ingest_frame(spec: SourceSpec, store_url: str | None = None) -> Ingested:
    """Read (or generate) the source described by ``spec`` and map its columns, as one frame."""
    if spec.is_generator:
        frame = generator.generate_prices(spec.tickers, spec.days, generator_start(spec, date.today()), spec.seed,
                                          spec.drift, spec.volatility, spec.ar_coef)
        info: dict[str, Any] = _generator_info(spec)
    else:
        frame, info = _read_source(spec, store_url)
    info.update(rows=len(frame), date_format=spec.date_format)
    log.info("Ingested %d rows from %s (%s).", len(frame), info["source"], info["format"])
    return Ingested(frame, info)


def _generator_info(spec: SourceSpec) -> dict[str, Any]:
    return {"source": GENERATOR, "format": GENERATOR, "mapped": True, "columns": ["date", "ticker", "price"],
            "tickers": spec.tickers}


def _read_source(spec: SourceSpec, store_url: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A file, s3:// or HTTP(S) source read whole, parsed and mapped onto date/ticker/price."""
    payload = (fetch.fetch_http(spec.source, store_url=store_url) if is_http(spec.source)
               else fetch.read_location(spec.source))
    readers.check_payload(payload.data, payload.name, payload.content_type)
    content = compression.decompress(payload.data, payload.name)
    if content.compression:
        readers.check_payload(content.data, payload.name)
    fmt = readers.detect_format(content.name, spec.format, payload.content_type, content.data)
    table = readers.parse_table(content.data, fmt, payload.name, spec.encoding, keep_as_text=(spec.ticker_column,))
    frame, mapping = map_columns(table, spec)
    info = {"source": payload.name, "format": fmt, "bytes": len(payload.data), **mapping}
    if content.compression:
        info["compression"] = content.compression
    if mapping["mapped"]:
        info["tickers"] = int(frame["ticker"].nunique())
    return frame, info


# --------------------------------------------------------------------------- partitions
@dataclasses.dataclass(frozen=True)
class Written:
    """What :func:`ingest_to` wrote: rows per shard and what was learned reading the source."""

    rows_per_shard: list[int]
    info: dict[str, Any]

    @property
    def rows(self) -> int:
        return sum(self.rows_per_shard)

    @property
    def shards(self) -> int:
        return len(self.rows_per_shard)


def row_shards(frame: pd.DataFrame, shards: int) -> np.ndarray | None:
    """Each row's shard by its ticker; None (all in shard 0) when there is no ticker column.

    A source whose columns could not be mapped has no ``ticker`` to hash: its rows all go to
    shard 0 and validate shows the schema diff there. Rows with a missing ticker go to shard 0
    too (validate rejects them).
    """
    if shards == 1 or "ticker" not in frame.columns:
        return None
    ticker = frame["ticker"]
    missing = ticker.isna().to_numpy()
    ids = frames.shard_of(ticker.where(~missing, ""), shards)
    ids[missing] = 0
    return ids


STREAM_BATCH_ROWS = 1 << 20  # rows per batch of a streamed file source
CSV_STREAM_MIN_BYTES = 32 << 20  # smaller CSV files are read whole, exactly as they always were


class _ReadWhole(Exception):
    """A streamed read met something only the whole-file path reports exactly: fall back to it."""


def _stream_file(spec: SourceSpec, path: str | Path, shards: int) -> tuple[list[int], dict[str, Any]] | None:
    """Stream a Parquet or CSV file source batch by batch to the partitions; None: read it whole.

    None for anything the whole-file path must handle so its checks and errors stay exactly as
    they are: HTTP(S), JSON and compressed sources, a missing file, CSV files under CSV_STREAM_MIN_BYTES, and
    a CSV file that turns out odd while streaming (a bad byte, a malformed line, a column whose
    type changes between batches) — what was written is discarded and the file is read again.
    """
    if is_http(spec.source):
        return None
    try:
        fs, location = storage.filesystem(spec.source)
        handle = fs.open(location, "rb")
    except (OSError, PricecastError):
        return None
    with handle, contextlib.ExitStack() as stack:
        head = handle.read(512)
        if compression.compression_of(head):  # read whole: decompressed in memory
            return None
        fmt = readers.detect_format(spec.source, spec.format, "", head)
        size = handle.seek(0, 2)
        handle.seek(0)
        if fmt == "json" or not head.strip() or (fmt == "csv" and size < CSV_STREAM_MIN_BYTES):
            return None
        readers.check_payload(head, spec.source)
        if fmt == "parquet":
            batches = readers.iter_parquet(handle, spec.source, STREAM_BATCH_ROWS)
        else:
            found = readers.iter_csv(handle, spec.source, spec.encoding, (spec.ticker_column,), STREAM_BATCH_ROWS)
            if found is None:
                return None
            batches = found
        stack.callback(getattr(batches, "close", lambda: None))  # before the handle closes
        writer: partitions.PartitionWriter | None = None
        mapping: dict[str, Any] = {}
        tickers: set[Any] = set()
        try:
            for batch in batches:
                frame, batch_mapping = map_columns(batch, spec, quiet=writer is not None)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = stack.enter_context(partitions.PartitionWriter(path, shards, table.schema))
                    mapping = batch_mapping
                elif table.schema.types != writer.schema.types or table.schema.names != writer.schema.names:
                    raise _ReadWhole(f"batch types {table.schema.types} differ from {writer.schema.types}")
                if mapping["mapped"]:
                    tickers.update(frame["ticker"].unique().tolist())
                writer.write(table, row_shards(frame, shards))
        except (_ReadWhole, UnicodeDecodeError, LookupError, pd.errors.ParserError, pd.errors.ParserWarning,
                pa.ArrowException) as exc:
            if fmt == "parquet" and not isinstance(exc, _ReadWhole):
                raise
            log.info("Streaming %s stopped (%s); reading it whole.", spec.source, exc)
            return None
        if writer is None:  # a CSV header without rows: the whole-file path says so
            return None
        rows = writer.commit()
    info = {"source": spec.source, "format": fmt, "bytes": size, **mapping, "streamed": True}
    if mapping["mapped"]:
        info["tickers"] = len(tickers)
    return rows, info


def ingest_to(spec: SourceSpec, path: str | Path, shards: int = 1, store_url: str | None = None) -> Written:
    """Read (or generate) the source and write it to ``path`` as ``shards`` ticker partitions.

    One shard: ``path`` is a single Parquet file, as :func:`pricecast.frames.write_frame` writes
    it. More: ``path`` is a directory of all ``shards`` part files, every ticker's rows in shard
    ``frames.shard_of(ticker, shards)``, an empty shard a file with the schema and no rows.
    Written atomically (temporary name, then rename).

    Memory: the generator streams blocks of 256 tickers to the partition writers, so it holds
    one block plus a bounded buffer whatever the total. Parquet and CSV files (path, file:// or
    s3://; CSV from 32 MB) written to more than one shard are streamed too, 1 M rows at a time
    (for Parquet, the row group being decoded on top). JSON and compressed files, HTTP(S) bodies, and every
    source written to one shard are read whole (bytes, then the parsed frame) and then
    scattered: their peak is about the source's size, as it always was.
    """
    partitions.check_shards(shards)
    if spec.is_generator:
        start = generator_start(spec, date.today())
        schema = partitions.with_pandas_metadata(generator.SCHEMA)
        with partitions.PartitionWriter(path, shards, schema) as writer:
            for names, block in generator.price_blocks(spec.tickers, spec.days, start, spec.seed, spec.drift,
                                                       spec.volatility, spec.ar_coef):
                per_ticker = frames.shard_of(names, shards) if shards > 1 else None
                writer.write(block, None if per_ticker is None else np.repeat(per_ticker, spec.days))
            rows = writer.commit()
        info = _generator_info(spec)
    elif shards > 1 and (streamed := _stream_file(spec, path, shards)) is not None:
        rows, info = streamed
    else:
        frame, info = _read_source(spec, store_url)
        if shards == 1:
            frames.write_frame(frame, path)  # exactly the single file it always was
            rows = [len(frame)]
        else:
            ids = row_shards(frame, shards)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            del frame
            with partitions.PartitionWriter(path, shards, table.schema) as writer:
                writer.write(table, ids)
                rows = writer.commit()
    info.update(rows=sum(rows), date_format=spec.date_format, shards=shards, rows_per_shard=rows)
    log.info("Ingested %d rows from %s (%s) into %d shard(s).", sum(rows), info["source"], info["format"], shards)
    return Written(rows, info)


__all__ = ["GENERATOR", "Ingested", "SourceSpec", "Written", "generator_start", "ingest_frame",
           "ingest_to", "load_source_spec", "map_columns", "read_config", "row_shards"]
