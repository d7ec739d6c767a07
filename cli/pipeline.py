"""``pricecast run`` and ``pricecast compile``: the pipeline from the command line."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from cli.failures import fail, require_kfp_client
from cli.options import StoreOpt
from pricecast.errors import ConfigError, PricecastError
from pricecast.stage import STAGES

console = Console()

# Pipeline parameters a config file (YAML or TOML) may set; CLI flags win over the file.
RUN_PARAMETERS = (
    "source", "source_format", "date_column", "ticker_column", "price_column", "date_format",
    "default_ticker", "encoding", "tickers", "days", "start_date", "seed", "shards", "min_rows", "frequency", "max_gap_days",
    "outlier_sigma", "test_fraction", "n_windows", "alpha", "main_metric", "max_degradation",
    "psi_warn", "psi_alert", "min_directional_accuracy", "max_mape", "report_tickers", "require_approval",
    "store_url",
)


def load_run_config(path: Path | None) -> dict[str, Any]:
    """Pipeline parameters from a YAML or TOML file; unknown keys are an error.

    The file is read exactly as ``pricecast validate --config`` reads it (same parser, same
    ``ingest:`` section, same option checks), so one file serves both commands.
    """
    if path is None:
        return {}
    from components.ingest.core import load_source_spec, read_config

    data = read_config(path)
    unknown = sorted(set(data) - set(RUN_PARAMETERS) - {"format"})
    if unknown:
        raise ConfigError(
            f"{path} has unknown keys: {', '.join(unknown)}.",
            f"Allowed keys: {', '.join(RUN_PARAMETERS)} (top level or in an ingest: section).",
        )
    load_source_spec(path)  # the ingest options' types and values, with validate's messages
    if "format" in data:  # the ingest option's user-facing name
        data["source_format"] = data.pop("format")
    return data


class _Progress:
    """A live table of tasks as kfp.local runs them; stages not reached yet show as pending."""

    ICONS = {"running": "[yellow]running…[/]", "succeeded": "[green]done[/]",
             "restored": "[cyan]restored[/] [dim](checkpoint)[/]", "failed": "[red]failed[/]"}

    def __init__(self) -> None:
        self.tasks: dict[str, tuple[str, float, float | None]] = {}  # task -> (state, start, elapsed)
        self.live: Live | None = None

    def event(self, task: str, state: str) -> None:
        now = time.perf_counter()
        start = self.tasks.get(task, (state, now, None))[1]
        self.tasks[task] = (state, start, None if state == "running" else now - start)
        if self.live:
            self.live.update(self.render())

    def render(self) -> Table:
        table = Table(title="pricecast pipeline (kfp.local)")
        for column in ("task", "state", "time"):
            table.add_column(column, justify="right" if column == "time" else "left")
        reached = {task.rsplit("-", 1)[0] if task.rsplit("-", 1)[-1].isdigit() else task for task in self.tasks}
        for task, (state, _, elapsed) in self.tasks.items():
            table.add_row(task, self.ICONS.get(state, state), f"{elapsed:.1f}s" if elapsed is not None else "")
        for stage in STAGES:
            if stage not in reached:
                table.add_row(stage, "[dim]pending[/]", "")
        return table


def verdict_line(decision: str, version: str, restored: tuple[str, ...] = ()) -> str:
    """What this run did, in rich markup: a rerun that registered nothing says so, not "promoted"."""
    if decision == "unchanged":
        how = "restored from checkpoints" if "report" in restored else "registered before"
        return f"[yellow]nothing promoted[/] {version} ({how})"
    colour = {"promoted": "green", "pending": "yellow", "rejected": "red"}.get(decision, "white")
    return f"[{colour}]{decision}[/] {version}"


# The pipeline's generator defaults, for --help (the options themselves default to None so that a
# --config file can set them; tests/pipeline/test_run_config.py checks these against the pipeline).
GENERATOR_DEFAULTS = {"tickers": 20, "days": 756, "seed": 42}


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``compile`` to the CLI."""

    @app.command("run")
    def run(
        source: Annotated[Optional[str], typer.Option(help='"generator" or a URL/path (http(s)://, s3://, file) of CSV/JSON/Parquet.')] = None,
        source_format: Annotated[Optional[str], typer.Option("--format", help="auto, csv, json or parquet.")] = None,
        date_column: Annotated[Optional[str], typer.Option(help="Source column with the date.")] = None,
        ticker_column: Annotated[Optional[str], typer.Option(help="Source column with the ticker.")] = None,
        price_column: Annotated[Optional[str], typer.Option(help="Source column with the price.")] = None,
        date_format: Annotated[Optional[str], typer.Option(help='strptime format, e.g. "%b %d %Y".')] = None,
        default_ticker: Annotated[Optional[str], typer.Option(help="Ticker for a file without a ticker column.")] = None,
        encoding: Annotated[Optional[str], typer.Option(help="Text encoding of CSV/JSON sources (default utf-8).")] = None,
        tickers: Annotated[Optional[int], typer.Option(help=f"Generator: number of tickers (default {GENERATOR_DEFAULTS['tickers']}).")] = None,
        days: Annotated[Optional[int], typer.Option(help=f"Generator: business days per ticker, ending on the last business day (default {GENERATOR_DEFAULTS['days']}).")] = None,
        seed: Annotated[Optional[int], typer.Option(help=f"Generator: random seed (default {GENERATOR_DEFAULTS['seed']}).")] = None,
        shards: Annotated[Optional[int], typer.Option(help="Ticker-hash partitions the per-ticker stages fan out over (default 1; about one per 3 M rows keeps every task near or under 1 GB).")] = None,
        frequency: Annotated[Optional[str], typer.Option(help="Spacing of the prices: auto (detect), business, daily, weekly or monthly.")] = None,
        n_windows: Annotated[Optional[int], typer.Option(help="Consecutive test windows, each scored on its own.")] = None,
        max_degradation: Annotated[Optional[float], typer.Option(help="Gate: largest allowed degradation (0.1 = 10 %).")] = None,
        main_metric: Annotated[Optional[str], typer.Option(help="Gate metric: mape, mae, rmse, directional_accuracy.")] = None,
        require_approval: Annotated[Optional[bool], typer.Option("--require-approval/--no-require-approval", help="Mark a passing model pending until approved.")] = None,
        min_directional_accuracy: Annotated[Optional[float], typer.Option(help="Alert (HIGH) when the candidate calls fewer next-day moves right (0 = off).")] = None,
        max_mape: Annotated[Optional[float], typer.Option(help="Alert (HIGH) when the candidate's MAPE, in percent, is higher (0 = off).")] = None,
        report_tickers: Annotated[Optional[str], typer.Option(help="Tickers the report plots, comma-separated (at most 10); default: the first three.")] = None,
        max_run_time_s: Annotated[Optional[float], typer.Option("--max-run-time-s", help="Alert (MEDIUM) when the whole run takes longer, in seconds (0 = off); default: the max_run_time_s threshold (README.md, Runbook).")] = None,
        store: StoreOpt = None,
        config: Annotated[Optional[Path], typer.Option(help="YAML or TOML file of pipeline parameters.")] = None,
        from_stage: Annotated[Optional[str], typer.Option("--from", help=f"Recompute from this stage ({', '.join(STAGES)}), reusing earlier checkpoints.")] = None,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Stream every task's log instead of the progress table.")] = False,
    ) -> None:
        """Run the whole pipeline locally (kfp.local, no cluster, no Docker) and print the verdict."""

        try:
            require_kfp_client("run")
            from pipelines.local_run import run_local

            arguments = load_run_config(config)
            flags = {
                "source": source, "source_format": source_format, "date_column": date_column,
                "ticker_column": ticker_column, "price_column": price_column,
                "date_format": date_format, "default_ticker": default_ticker, "encoding": encoding,
                "tickers": tickers,
                "days": days, "seed": seed, "shards": shards, "frequency": frequency, "n_windows": n_windows,
                "max_degradation": max_degradation, "main_metric": main_metric,
                "min_directional_accuracy": min_directional_accuracy, "max_mape": max_mape,
                "report_tickers": report_tickers, "require_approval": require_approval, "store_url": store,
            }
            arguments.update({k: v for k, v in flags.items() if v is not None})
            if from_stage:
                if from_stage not in STAGES:
                    raise ConfigError(f"Unknown stage {from_stage!r} for --from.", f"Use one of: {', '.join(STAGES)}.")
                arguments["force_from"] = from_stage
            if arguments.get("store_url"):
                # Components read the store from the environment as well (subprocesses inherit it).
                os.environ["PRICECAST_STORE_URL"] = arguments["store_url"]
            limit = {} if max_run_time_s is None else {"max_run_time_s": max_run_time_s or None}  # 0: off
            progress = _Progress()
            if verbose:
                outcome = run_local(arguments, quiet=False, **limit)
            else:
                try:
                    with Live(progress.render(), console=console, refresh_per_second=4) as live:
                        progress.live = live
                        outcome = run_local(arguments, on_event=progress.event, **limit)
                finally:
                    if not console.is_terminal:  # piped: Live leaves the table's last line open
                        console.line()
        except PricecastError as exc:
            raise fail(exc) from exc
        except KeyboardInterrupt:
            # Every finished stage left a checkpoint; the next run restores them instead of
            # recomputing, so say so rather than print a traceback.
            console.print("\n[yellow]interrupted[/]: finished stages are checkpointed; "
                          "run the same command again to resume where it stopped.")
            raise typer.Exit(code=130) from None

        console.print(f"\n[bold]verdict:[/] {verdict_line(outcome.decision, outcome.version, outcome.restored)}")
        console.print(f"[bold]why:[/] {escape(outcome.reason)}")
        if outcome.metrics:
            from pricecast.forecast_metrics import format_metric  # the report's decimals

            console.print("[bold]metrics:[/] " + ", ".join(f"{k}={format_metric(k, v)}"
                                                          for k, v in sorted(outcome.metrics.items())))
        console.print(f"[bold]active model:[/] {outcome.active or 'none'}")
        # Paths whole on one line (the terminal wraps them), so they copy and click as they are.
        for label, where in (("report", outcome.report_url), ("registry", outcome.registry_url),
                             ("logs", f"{outcome.run_log} (per task: {outcome.run_log.parent}/<stage>.log)")):
            console.print(f"[bold]{label}:[/] {escape(where)}", soft_wrap=True, highlight=False)
        for alert in outcome.alerts:
            style = {"HIGH": "red", "MEDIUM": "yellow"}.get(alert.severity, "cyan")
            console.print(f"[bold {style}]alert:[/] {escape(alert.line())}", highlight=False)
        console.print(f"[dim]finished in {outcome.elapsed_s:.1f}s[/]")

    @app.command("compile")
    def compile_(
        image: Annotated[str, typer.Option(help="Image of every component, REPO:TAG (built from Dockerfile.base).")] = "pricecast:0.1.0",
        output: Annotated[Optional[Path], typer.Option(help="Where to write the YAML.")] = None,
    ) -> None:
        """Compile the pipeline to YAML that uploads to the KFP UI as is."""

        try:
            require_kfp_client("compile")
        except PricecastError as exc:
            raise fail(exc) from exc
        from pipelines.pricecast_pipeline import COMPILED_PATH, compile_pipeline

        path = compile_pipeline(output or COMPILED_PATH, image=image)
        console.print(f"compiled {path} (image {image})")
