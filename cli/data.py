"""``pricecast validate``: check a source against the price schema from the runbook.

It reads the source through the same ingest code the pipeline runs (column mapping, encodings,
HTTP retries) and validates it with the same schema, so "validate says OK" means "the pipeline
will accept it". Heavy imports happen inside the command to keep ``pricecast --help`` instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markdown import Markdown

from cli.failures import fail

console = Console()

# One alias per option keeps the command's signature readable; None means "not given" so a
# --config file's value (or the SourceSpec default) applies.
_Text = Optional[str]
InputOpt = Annotated[_Text, typer.Option(
    "--input", "-i", show_default=False,
    help="Path, file://, s3:// or http(s):// URL of a CSV, JSON or Parquet file (plain or "
         "compressed), or 'generator'.")]
ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", help="YAML or TOML file with the ingest options (date_column, date_format, ...); flags win.")]
FormatOpt = Annotated[_Text, typer.Option("--format", help="auto, csv, json or parquet (default auto).")]
DateColumnOpt = Annotated[_Text, typer.Option(help="Source column holding the date (default 'date').")]
TickerColumnOpt = Annotated[_Text, typer.Option(help="Source column holding the ticker (default 'ticker').")]
PriceColumnOpt = Annotated[_Text, typer.Option(help="Source column holding the price (default 'price').")]
DateFormatOpt = Annotated[_Text, typer.Option(
    help="strptime format of the dates, e.g. '%b %d %Y' for 'Jan 1 2000' (default: ISO 8601 or inferred).")]
DefaultTickerOpt = Annotated[_Text, typer.Option(help="Ticker of a file without a ticker column.")]
EncodingOpt = Annotated[_Text, typer.Option(help="Text encoding of CSV/JSON (default utf-8).")]
FrequencyOpt = Annotated[_Text, typer.Option(
    help="Spacing of the prices: auto (detect; default), business, daily, weekly or monthly.")]
MinRowsOpt = Annotated[Optional[int], typer.Option(help="Fewest rows accepted (default 100, or min_rows in --config).")]
ReportOpt = Annotated[Optional[Path], typer.Option(
    "--report-out", help="Also write the schema diff as a Markdown report to this file.")]


def validate_command(
    source: InputOpt = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = None,
    date_column: DateColumnOpt = None,
    ticker_column: TickerColumnOpt = None,
    price_column: PriceColumnOpt = None,
    date_format: DateFormatOpt = None,
    default_ticker: DefaultTickerOpt = None,
    encoding: EncodingOpt = None,
    min_rows: MinRowsOpt = None,
    frequency: FrequencyOpt = None,
    report_out: ReportOpt = None,
) -> None:
    """Validate a price source against the schema and print the schema diff.

    Exits 0 when the data is valid; otherwise prints the problem and what to do and exits with
    the error's code (2 options, 3 source unreadable, 4 schema mismatch).
    """
    from pricecast.errors import PricecastError, SchemaValidationError

    try:
        diff = _validate(source, config, fmt, date_column, ticker_column, price_column, date_format,
                         default_ticker, encoding, min_rows, frequency)
    except SchemaValidationError as exc:
        _show(exc.diff, report_out)
        raise fail(exc) from exc
    except PricecastError as exc:  # unreadable source or bad options: nothing to diff
        raise fail(exc) from exc
    _show(diff, report_out)
    warnings = f" with {len(diff['warnings'])} warning(s)" if diff["warnings"] else ""
    console.print(f"[bold green]valid[/]: {diff['rows']['found']:,} rows match the price schema{warnings}.")


def _validate(source, config, fmt, date_column, ticker_column, price_column, date_format,
              default_ticker, encoding, min_rows, frequency=None) -> dict:
    from components.ingest.core import ingest_frame, load_source_spec, read_config
    from components.validate.core import validate_frame
    from pricecast.errors import ConfigError

    file_values = read_config(config) if config else {}
    if source is None and "source" not in file_values:
        raise ConfigError("No source to validate.", "Pass --input PATH_OR_URL (or set source: in --config).")
    spec = load_source_spec(
        config, source=source, format=fmt, date_column=date_column, ticker_column=ticker_column,
        price_column=price_column, date_format=date_format, default_ticker=default_ticker, encoding=encoding,
    )
    rows = min_rows if min_rows is not None else int(file_values.get("min_rows", 100))
    raw = ingest_frame(spec).frame
    # The split's parameters from the same config `pricecast run` reads: the data must be long
    # enough for the run it will feed.
    _, diff = validate_frame(raw, spec.date_format, rows, frequency or str(file_values.get("frequency", "auto")),
                             float(file_values.get("test_fraction", 0.2)), int(file_values.get("n_windows", 3)))
    return diff


def _show(diff: dict, report_out: Path | None) -> None:
    """Print the diff (rich renders the Markdown tables) and write it when asked."""
    from components.validate.diff import render_markdown

    markdown = render_markdown(diff)
    console.print(Markdown(markdown))
    if report_out is not None:
        report_out.parent.mkdir(parents=True, exist_ok=True)
        report_out.write_text(markdown, encoding="utf-8")
        console.print(f"schema diff written to {report_out}")


def register(app: typer.Typer) -> None:
    """Add ``pricecast validate`` to the main app."""
    app.command("validate")(validate_command)


__all__ = ["register", "validate_command"]
