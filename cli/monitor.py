"""``pricecast check ...``: the runbook's monitoring checks from the command line.

Each check prints what it measured, raises its alerts (log and webhook, :func:`pricecast.monitoring.alerts.emit`)
and exits with :data:`pricecast.monitoring.checks.BREACH_EXIT_CODE` (7) when an alert at or above
``--fail-on`` fired, so cron jobs and CI steps can act on the exit code alone. Log lines go to
stderr and ``<log_dir>/check.log``; stdout holds only the report (``--json`` stays parseable).
"""

from __future__ import annotations

import enum
import io
import json
import logging
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from cli.failures import fail, require_kfp_client
from cli.options import StoreOpt
from pricecast.errors import ConfigError, PricecastError, SchemaValidationError

if TYPE_CHECKING:
    import pandas as pd

    from pricecast.monitoring.alerts import Alert

console = Console()


class FailOn(enum.StrEnum):
    high = "high"
    medium = "medium"
    low = "low"
    never = "never"


ThresholdsOpt = Annotated[Optional[Path], typer.Option("--thresholds", help="YAML file of thresholds (see README.md (Runbook)).")]
FailOnOpt = Annotated[FailOn, typer.Option("--fail-on", help="Exit 7 when an alert of this severity or worse fires.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _start_logging() -> None:
    """Task log ``check.log`` plus stderr (not stdout: it carries the report)."""
    from pricecast import logs

    logs.configure("check")
    for handler in logging.getLogger("pricecast").handlers:
        if type(handler) is logging.StreamHandler:
            handler.setStream(sys.stderr)


def _finish(alerts: list[Alert], fail_on: FailOn, source: str) -> None:
    """Send the alerts and exit 7 when one is at or above ``fail_on``."""
    from pricecast.monitoring.alerts import at_least, emit
    from pricecast.monitoring.checks import BREACH_EXIT_CODE

    emit(alerts, source=source)
    if fail_on is not FailOn.never and at_least(alerts, fail_on.value.upper()):  # type: ignore[arg-type]
        raise typer.Exit(code=BREACH_EXIT_CODE)


def newest_checkpoint_frame(store_url: str | None) -> tuple[pd.DataFrame, str]:
    """The newest validated table in the store's checkpoints (raw from ingest if validate has none)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from pricecast import storage
    from pricecast.settings import get_settings
    from pricecast.stage import latest_checkpoint

    store_url = store_url or get_settings().store_url
    for stage in ("validate", "ingest"):
        key = latest_checkpoint(stage, store_url)
        if not key:
            continue
        url = storage.join(store_url, "checkpoints", stage, key)
        manifest = json.loads(storage.read_text(storage.join(url, "_MANIFEST.json")))
        for name, files in manifest.get("files", {}).items():
            if "" not in files:  # a directory output, not a table
                continue
            data = storage.read_bytes(storage.join(url, name, "_file"))
            if data[:4] == b"PAR1" and "date" in pq.ParquetFile(io.BytesIO(data)).schema_arrow.names:
                return pd.read_parquet(io.BytesIO(data)), f"{stage} checkpoint {key[:12]} ({name})"
    raise ConfigError(f"The store {store_url} holds no validated or raw data checkpoint.",
                      "Run the pipeline first (`pricecast run`), or check a source with --input.")


def _read_source(source: str, config: Path | None, **mapping: Any) -> pd.DataFrame:
    """A source read and column-mapped exactly as ingest does, with dates parsed as validate does."""
    from components.ingest.core import ingest_frame, load_source_spec
    from components.validate.core import parse_frame

    spec = load_source_spec(config, source=source, **mapping)
    ingested = ingest_frame(spec)
    if not ingested.info.get("mapped", True):
        missing = ", ".join(ingested.info["missing_columns"])
        raise SchemaValidationError(
            f"The source {source} has no column(s) {missing} (it has {', '.join(ingested.info['columns'])}).",
            "Map them with --date-column / --ticker-column / --price-column.")
    return parse_frame(ingested.frame, spec.date_format)[0]


def _read_table(location: str) -> pd.DataFrame:
    import pandas as pd

    from pricecast import storage

    try:
        return pd.read_parquet(io.BytesIO(storage.read_bytes(location)))
    except FileNotFoundError as exc:
        raise ConfigError(f"{location} does not exist.", "Pass the path or URL of a features Parquet file.") from exc


def register(app: typer.Typer) -> None:
    """Add the ``check`` command group."""
    check_app = typer.Typer(help="Monitoring checks: data freshness, input drift, accuracy, pipeline run time.",
                            no_args_is_help=True)
    app.add_typer(check_app, name="check")

    @check_app.command("freshness")
    def freshness(
        source: Annotated[Optional[str], typer.Option(
            "--input", help="Path or URL (file, s3://, http(s)://) of the data; default: the newest validated "
                            "checkpoint in the store.")] = None,
        store: StoreOpt = None,
        max_age_days: Annotated[Optional[int], typer.Option(
            "--max-age-days", help="Largest allowed age of the newest date, in business days.")] = None,
        today: Annotated[Optional[str], typer.Option(help="Reference date (YYYY-MM-DD); default today.")] = None,
        date_column: Annotated[Optional[str], typer.Option(help="Source column with the date.")] = None,
        ticker_column: Annotated[Optional[str], typer.Option(help="Source column with the ticker.")] = None,
        price_column: Annotated[Optional[str], typer.Option(help="Source column with the price.")] = None,
        date_format: Annotated[Optional[str], typer.Option(help='strptime format, e.g. "%b %d %Y".')] = None,
        fmt: Annotated[Optional[str], typer.Option("--format", help="auto, csv, json or parquet (default auto).")] = None,
        default_ticker: Annotated[Optional[str], typer.Option(help="Ticker of a file without a ticker column.")] = None,
        config: Annotated[Optional[Path], typer.Option(help="Ingest config file (YAML/TOML) with the column mapping.")] = None,
        thresholds: ThresholdsOpt = None,
        fail_on: FailOnOpt = FailOn.medium,
        as_json: JsonOpt = False,
    ) -> None:
        """Latest date per ticker and its age in business days; exit 7 when the data is stale."""
        from pricecast.monitoring import checks
        from pricecast.monitoring.thresholds import load_thresholds

        _start_logging()
        try:
            limits = load_thresholds(thresholds, max_data_age_business_days=max_age_days)
            reference = _parse_day(today) if today else date.today()
            if source:
                frame = _read_source(source, config, date_column=date_column, ticker_column=ticker_column,
                                     price_column=price_column, date_format=date_format, format=fmt,
                                     default_ticker=default_ticker)
                where = source
            else:
                frame, where = newest_checkpoint_frame(store)
            result = checks.data_freshness(frame, reference, limits.max_data_age_business_days, where)
        except PricecastError as exc:
            raise fail(exc) from exc
        if as_json:
            print(json.dumps({"source": where, "today": str(reference), "max_age_business_days": result.max_age_business_days,
                              "tickers": [{"ticker": t.ticker, "latest": str(t.latest), "age_business_days": t.age_business_days,
                                           "stale": t.stale} for t in result.tickers]}))
        else:
            table = Table(title=f"data freshness: {where} (today {reference}, max {result.max_age_business_days} business days)")
            for column in ("ticker", "latest date", "age (business days)", "status"):
                table.add_column(column)
            for t in sorted(result.tickers, key=lambda t: -t.age_business_days)[:50]:
                status = "[red]stale[/]" if t.stale else "[green]fresh[/]"
                table.add_row(t.ticker, str(t.latest), str(t.age_business_days), status)
            console.print(table)
            console.print(f"{len(result.stale)} of {len(result.tickers)} ticker(s) stale")
        _finish(checks.freshness_alerts(result), fail_on, "check-freshness")

    @check_app.command("drift")
    def drift(
        reference: Annotated[str, typer.Option(
            "--reference", help="Features Parquet (path or URL) of the reference window, e.g. the training data.")],
        current: Annotated[str, typer.Option("--current", help="Features Parquet (path or URL) of the window to check.")],
        columns: Annotated[Optional[str], typer.Option(
            help="Comma-separated columns; default the returns-based features.")] = None,
        markdown: Annotated[Optional[Path], typer.Option(help="Also write the report as Markdown here.")] = None,
        thresholds: ThresholdsOpt = None,
        fail_on: FailOnOpt = FailOn.medium,
        as_json: JsonOpt = False,
    ) -> None:
        """PSI and KS per feature between two feature tables; exit 7 when a feature drifted."""
        from pricecast.columns import DRIFT_FEATURES
        from pricecast.monitoring import checks
        from pricecast.monitoring.drift import drift_report
        from pricecast.monitoring.thresholds import load_thresholds

        _start_logging()
        try:
            limits = load_thresholds(thresholds)
            ref_df, cur_df = _read_table(reference), _read_table(current)
            names = [c.strip() for c in columns.split(",") if c.strip()] if columns else DRIFT_FEATURES
            report = drift_report(ref_df, cur_df, names, limits.drift(),
                                  context={"reference": reference, "current": current,
                                           "reference_rows": len(ref_df), "current_rows": len(cur_df)})
        except PricecastError as exc:
            raise fail(exc) from exc
        if markdown:
            markdown.write_text(report.to_markdown(), encoding="utf-8")
        if as_json:
            print(json.dumps(report.to_dict()))
        else:
            table = Table(title=f"input drift: score {report.score:.4f} ({report.level})")
            table.add_column("feature", no_wrap=True)
            for column in ("PSI", "level", "KS p-value", "ref std", "cur std"):  # means: --json / --markdown
                table.add_column(column)
            for f in sorted(report.features, key=lambda f: -f.psi):
                table.add_row(f.feature, f"{f.psi:.4f}", f.level + (" (KS)" if f.ks_breach else ""), f"{f.ks_p_value:.2g}",
                              f"{f.reference_std:.3g}", f"{f.current_std:.3g}")
            console.print(table)
        _finish(checks.drift_alerts(report), fail_on, "check-drift")

    @check_app.command("accuracy")
    def accuracy(
        store: StoreOpt = None,
        version: Annotated[str, typer.Option(help="Registry version to check, or 'active'.")] = "active",
        metrics_file: Annotated[Optional[str], typer.Option(
            "--metrics", help="Path or URL of a metrics JSON instead of the registry, e.g. the report's "
                              "<store>/reports/latest/summary.json.")] = None,
        thresholds: ThresholdsOpt = None,
        fail_on: FailOnOpt = FailOn.medium,
        as_json: JsonOpt = False,
    ) -> None:
        """Directional accuracy and MAPE of a model against their limits; exit 7 when breached."""
        from pricecast.monitoring import checks
        from pricecast.monitoring.thresholds import load_thresholds
        from pricecast.registry import RegistryStore

        _start_logging()
        try:
            limits = load_thresholds(thresholds)
            if metrics_file:
                metrics, what = _candidate_metrics(metrics_file), f"the model in {metrics_file}"
            else:
                mv = RegistryStore(store).load().resolve(version)
                metrics, what = mv.metrics, f"model {mv.version}"
        except (OSError, ValueError, AttributeError) as exc:
            raise fail(ConfigError(f"Cannot read metrics from {metrics_file}: {exc}.",
                                   "Pass a JSON object of metrics or the report's summary.json.")) from exc
        except PricecastError as exc:
            raise fail(exc) from exc
        numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        if not {"directional_accuracy", "mape"} & set(numbers):  # nothing to check is a failure, not a pass
            raise fail(ConfigError(f"{what} has no directional_accuracy or mape metric (found: {sorted(numbers)}).",
                                   "Check the report instead: --metrics <store>/reports/latest/summary.json."))
        if as_json:
            print(json.dumps({"model": what, "metrics": numbers}))
        else:
            console.print(f"{what}: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(numbers.items())))
        _finish(checks.accuracy_alerts(limits, numbers, what), fail_on, "check-accuracy")

    @check_app.command("run-time")
    def run_time(
        log_dir: Annotated[Optional[Path], typer.Option(
            help="Directory holding stage-metrics.jsonl; default PRICECAST_LOG_DIR.")] = None,
        max_seconds: Annotated[Optional[float], typer.Option(help="Longest acceptable run, seconds.")] = None,
        host: Annotated[Optional[str], typer.Option(
            help="KFP API URL: check a cluster run instead of the local log (e.g. http://localhost:8080).")] = None,
        run_id: Annotated[Optional[str], typer.Option(
            help="With --host: the KFP run to check; default the newest run of --experiment.")] = None,
        experiment: Annotated[str, typer.Option(help="With --host: the KFP experiment `pricecast submit` uses.")] = "pricecast",
        thresholds: ThresholdsOpt = None,
        fail_on: FailOnOpt = FailOn.medium,
        as_json: JsonOpt = False,
    ) -> None:
        """Wall time of the last pipeline run (local, or a KFP run with --host), per stage; exit 7 over the limit."""
        from pricecast.monitoring import checks
        from pricecast.monitoring.thresholds import load_thresholds
        from pricecast.settings import get_settings

        _start_logging()
        directory = log_dir or get_settings().log_dir
        try:
            limits = load_thresholds(thresholds, max_run_time_s=max_seconds)
            if host:

                require_kfp_client("check run-time --host")
                run = checks.kfp_run_time(_kfp_run(host, run_id, experiment))
            else:
                run = checks.last_run(checks.read_stage_metrics(directory))
            if run is None:
                raise ConfigError(f"{directory}/stage-metrics.jsonl has no stage run.",
                                  "Run the pipeline first, or pass the --log-dir it wrote to.")
        except PricecastError as exc:
            raise fail(exc) from exc
        if as_json:
            print(json.dumps({"started_at": run.started_at.isoformat(), "seconds": run.seconds,
                              "stages": run.stages, "restored": list(run.restored)}))
        else:
            table = Table(title=f"last run: {run.seconds:.1f}s from {run.started_at.isoformat()} (max {limits.max_run_time_s}s)")
            table.add_column("stage")
            table.add_column("seconds", justify="right")
            for stage, seconds in run.stages.items():
                table.add_row(stage + (" (restored)" if stage in run.restored else ""), f"{seconds:.2f}")
            console.print(table)
        _finish(checks.run_time_alerts(limits, run), fail_on, "check-run-time")


def _kfp_run(host: str, run_id: str | None, experiment: str) -> dict[str, Any]:
    """The run ``run_id``, or the newest run of ``experiment``, from the KFP API, as a dict."""
    from cli.cluster import _quiet, connect

    client = connect(host)
    with _quiet(host, "read runs from"):
        if run_id:
            return client.get_run(run_id).to_dict()
        found = client.get_experiment(experiment_name=experiment)
        runs = client.list_runs(experiment_id=found.experiment_id, sort_by="created_at desc", page_size=1).runs
    if not runs:
        raise ConfigError(f"The KFP experiment {experiment!r} at {host} has no run.",
                          "Start one with `pricecast submit`, or pass --run-id.")
    return runs[0].to_dict()


def _candidate_metrics(location: str) -> dict[str, Any]:
    """Metrics from a flat JSON object, ``{"candidate": {...}}`` or the report's summary.json."""
    from pricecast import storage

    data = json.loads(storage.read_text(location))
    if "candidate" not in data and isinstance(data.get("summary"), dict):
        data = data["summary"]
    return data.get("candidate", data)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--today {text!r} is not a date.", "Use YYYY-MM-DD.") from exc
