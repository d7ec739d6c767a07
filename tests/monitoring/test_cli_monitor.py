"""``pricecast check ...`` through typer's CliRunner: output, alerts and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli import monitor
from pricecast import frames
from pricecast.columns import DRIFT_FEATURES
from pricecast.monitoring.checks import BREACH_EXIT_CODE
from pricecast.settings import Settings, reload_settings
from pricecast.stage import run_stage
from tests.monitoring.support import features_frame, webhook_receiver


@pytest.fixture
def cli(isolated_store: Settings) -> typer.Typer:
    """An app with only the check group, as cli/app.py assembles it (``register(app)``)."""
    app = typer.Typer()
    monitor.register(app)

    @app.callback()
    def main() -> None:  # a group, so `check` is a subcommand as in the real CLI
        """pricecast"""

    return app


def invoke(app: typer.Typer, *args: str) -> object:
    return CliRunner().invoke(app, ["check", *args])


def said(result: object) -> str:
    """Everything printed, with rich's line wrapping undone."""
    return " ".join(result.output.split())


def write_prices(path: Path, latest: dict[str, str]) -> Path:
    """A CSV the way real exports look: other column names and "Jan 01 2024" dates."""
    rows = [{"Date": day.strftime("%b %d %Y"), "Symbol": ticker, "Close": 10.0 + i}
            for ticker, last in latest.items() for i, day in enumerate(pd.bdate_range(end=last, periods=30))]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


MAPPING = ("--date-column", "Date", "--ticker-column", "Symbol", "--price-column", "Close", "--date-format", "%b %d %Y")


def test_freshness_of_a_fresh_file_exits_zero(cli: typer.Typer, tmp_path: Path) -> None:
    source = write_prices(tmp_path / "prices.csv", {"AAA": "2024-03-08", "BBB": "2024-03-08"})
    result = invoke(cli, "freshness", "--input", str(source), *MAPPING, "--today", "2024-03-11", "--max-age-days", "1")
    assert result.exit_code == 0, result.output
    assert "0 of 2 ticker(s) stale" in result.stdout and "2024-03-08" in result.stdout


def test_freshness_of_stale_data_exits_7_and_posts_the_alert(
        cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_prices(tmp_path / "prices.csv", {"AAA": "2024-03-01", "BBB": "2024-03-08"})
    with webhook_receiver() as receiver:
        monkeypatch.setenv("PRICECAST_ALERT_WEBHOOK_URL", receiver.url)
        reload_settings()
        result = invoke(cli, "freshness", "--input", str(source), *MAPPING, "--today", "2024-03-11", "--json")
    assert result.exit_code == BREACH_EXIT_CODE, result.output
    report = json.loads(result.stdout)  # stdout holds only the JSON; log lines go to stderr
    assert {t["ticker"]: t["stale"] for t in report["tickers"]} == {"AAA": True, "BBB": False}
    [alert] = receiver.bodies[0]["alerts"]
    assert (alert["severity"], alert["name"]) == ("MEDIUM", "PricecastDataStale")
    assert "PricecastDataStale" in result.stderr
    assert "PricecastDataStale" in (Path(reload_settings().log_dir) / "check.log").read_text()


def test_freshness_fail_on_high_ignores_a_medium_alert(cli: typer.Typer, tmp_path: Path) -> None:
    source = write_prices(tmp_path / "prices.csv", {"AAA": "2024-03-01", "BBB": "2024-03-08"})
    result = invoke(cli, "freshness", "--input", str(source), *MAPPING, "--today", "2024-03-11", "--fail-on", "high")
    assert result.exit_code == 0, result.output
    every = write_prices(tmp_path / "old.csv", {"AAA": "2024-03-01"})
    result = invoke(cli, "freshness", "--input", str(every), *MAPPING, "--today", "2024-03-11", "--fail-on", "high")
    assert result.exit_code == BREACH_EXIT_CODE


def test_freshness_of_a_missing_source_or_unmapped_columns_says_what_to_do(cli: typer.Typer, tmp_path: Path) -> None:
    result = invoke(cli, "freshness", "--input", str(tmp_path / "nope.csv"))
    assert result.exit_code == 3 and "does not exist" in said(result)
    source = write_prices(tmp_path / "prices.csv", {"AAA": "2024-03-08"})
    result = invoke(cli, "freshness", "--input", str(source))  # Date/Symbol/Close not mapped
    assert result.exit_code == 4 and "--date-column" in said(result)


def test_freshness_reads_the_newest_validated_checkpoint_of_the_store(cli: typer.Typer, tmp_path: Path) -> None:
    result = invoke(cli, "freshness")
    assert result.exit_code == 2 and "pricecast run" in said(result)  # empty store

    validated = pd.DataFrame({"date": pd.bdate_range(end="2024-03-08", periods=10), "ticker": "AAA", "price": 1.0})

    def compute(ctx) -> None:
        frames.write_frame(validated, tmp_path / "out" / "validated")
        (tmp_path / "out" / "schema_diff").write_text("{}")

    run_stage("validate", params={}, inputs={}, compute=compute,
              outputs={"validated": str(tmp_path / "out" / "validated"), "schema_diff": str(tmp_path / "out" / "schema_diff")})
    result = invoke(cli, "freshness", "--today", "2024-03-12", "--max-age-days", "1")
    assert result.exit_code == BREACH_EXIT_CODE, result.output
    assert "validate checkpoint" in result.stdout and "2024-03-08" in result.stdout
    assert invoke(cli, "freshness", "--today", "2024-03-11", "--max-age-days", "1").exit_code == 0


def test_drift_check_exit_codes_and_json(cli: typer.Typer, tmp_path: Path) -> None:
    reference = frames.write_frame(features_frame(400, n_tickers=20, seed=1), tmp_path / "ref.parquet")
    calm = frames.write_frame(features_frame(250, n_tickers=20, seed=2, level=900.0), tmp_path / "calm.parquet")
    wild = frames.write_frame(features_frame(250, n_tickers=20, seed=3, vol=0.03), tmp_path / "wild.parquet")

    result = invoke(cli, "drift", "--reference", str(reference), "--current", str(calm), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["level"] == "ok" and [f["feature"] for f in report["features"]] == DRIFT_FEATURES

    markdown = tmp_path / "drift.md"
    result = invoke(cli, "drift", "--reference", str(reference), "--current", f"file://{wild}", "--markdown", str(markdown))
    assert result.exit_code == BREACH_EXIT_CODE, result.output
    assert "ret_vol_20" in result.stdout and "PricecastFeatureDrift" in result.stderr
    assert "| ret_vol_20 |" in markdown.read_text()

    result = invoke(cli, "drift", "--reference", str(reference), "--current", str(calm), "--columns", "price")
    assert result.exit_code == BREACH_EXIT_CODE  # a price level is not a feature to watch: it "drifts"
    result = invoke(cli, "drift", "--reference", str(tmp_path / "x.parquet"), "--current", str(calm))
    assert result.exit_code == 2 and "does not exist" in said(result)


def test_run_time_check_reads_stage_metrics(cli: typer.Typer, isolated_store: Settings) -> None:
    assert invoke(cli, "run-time").exit_code == 2  # nothing recorded yet
    log_dir = Path(isolated_store.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "stage-metrics.jsonl").write_text(
        '{"stage": "ingest", "at": "2024-01-02T00:00:00+00:00", "restored": false, "elapsed_s": 100}\n'
        '{"stage": "train", "at": "2024-01-02T00:01:40+00:00", "restored": true, "elapsed_s": 0.5}\n')
    result = invoke(cli, "run-time", "--max-seconds", "60", "--json")
    assert result.exit_code == BREACH_EXIT_CODE
    assert json.loads(result.stdout) == {"started_at": "2024-01-02T00:00:00+00:00", "seconds": 100.5,
                                         "stages": {"ingest": 100.0, "train": 0.5}, "restored": ["train"]}
    assert invoke(cli, "run-time", "--max-seconds", "600").exit_code == 0


def test_accuracy_check_of_a_metrics_file(cli: typer.Typer, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"candidate": {"directional_accuracy": 0.3, "mape": 1.2}}))
    result = invoke(cli, "accuracy", "--metrics", str(summary))
    assert result.exit_code == BREACH_EXIT_CODE and "PricecastDirectionalAccuracyLow" in result.stderr
    thresholds = tmp_path / "t.yaml"
    thresholds.write_text("min_directional_accuracy: 0.25\n")
    assert invoke(cli, "accuracy", "--metrics", str(summary), "--thresholds", str(thresholds)).exit_code == 0
    report = tmp_path / "report-summary.json"  # the report stage's summary.json
    report.write_text(json.dumps({"summary": {"candidate": {"directional_accuracy": 0.6, "mape": 9.5}}}))
    result = invoke(cli, "accuracy", "--metrics", f"file://{report}", "--json")
    assert result.exit_code == BREACH_EXIT_CODE and "PricecastForecastErrorHigh" in result.stderr
    assert json.loads(result.stdout)["metrics"] == {"directional_accuracy": 0.6, "mape": 9.5}
    report.write_text(json.dumps({"mae": 1.0}))
    result = invoke(cli, "accuracy", "--metrics", str(report))
    assert result.exit_code == 2 and "no directional_accuracy or mape" in said(result)
    result = invoke(cli, "accuracy", "--metrics", str(tmp_path / "none.json"))
    assert result.exit_code == 2 and "Cannot read metrics" in said(result)
    result = invoke(cli, "accuracy")  # empty registry: no active model
    assert result.exit_code == 6, result.output
