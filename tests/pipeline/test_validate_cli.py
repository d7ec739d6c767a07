"""``pricecast validate`` through typer's CliRunner, on an app that only registers it."""

from __future__ import annotations

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli.data import register
from components.validate.tests.conftest import good_frame


@pytest.fixture
def run(isolated_store, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal width; keep lines whole
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """Test app."""

    def invoke(*args: str):
        return CliRunner().invoke(app, ["validate", *args])

    return invoke


def _write(tmp_path, frame: pd.DataFrame, name: str = "prices.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_help_lists_every_option(run):
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--input", "--config", "--format", "--date-column", "--ticker-column", "--price-column",
                   "--date-format", "--default-ticker", "--min-rows", "--report-out"):
        assert option in result.output


def test_a_valid_file_exits_0_and_prints_the_diff(run, tmp_path):
    result = run("--input", _write(tmp_path, good_frame()))
    assert result.exit_code == 0, result.output
    assert "Schema check: PASSED" in result.output and "valid: 150 rows" in result.output


def test_an_invalid_file_exits_4_with_problem_fix_and_report(run, tmp_path):
    bad = good_frame()
    bad.loc[5, "price"] = -3.0
    report = tmp_path / "out" / "diff.md"
    result = run("--input", _write(tmp_path, bad), "--report-out", str(report))
    assert result.exit_code == 4
    assert "error: The data does not match the price schema: price: price > 0 failed on 1 row(s)." in result.output
    assert "what to do: Prices must be positive" in result.output
    assert "| 6 | 2021-01-08 | AAA | -3.0 |" in report.read_text()


def test_mapping_flags_and_a_config_file(run, tmp_path):
    frame = good_frame(rows=40).rename(columns={"date": "Day", "price": "Close"}).drop(columns=["ticker"])
    frame["Day"] = pd.to_datetime(frame["Day"]).dt.strftime("%b %d %Y")
    source = _write(tmp_path, frame)
    config = tmp_path / "ingest.toml"
    config.write_text(f'source = "{source}"\ndate_column = "Day"\ndate_format = "%b %d %Y"\nmin_rows = 10\n')

    assert run("--config", str(config), "--price-column", "Close").exit_code == 0
    wrong = run("--config", str(config), "--price-column", "Close", "--min-rows", "100")
    assert wrong.exit_code == 4 and "fewer than the minimum 100" in wrong.output
    unmapped = run("--input", source)
    assert unmapped.exit_code == 4 and "missing column(s) date, ticker, price" in unmapped.output


def test_an_unreadable_source_exits_3_and_bad_options_exit_2(run, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = run("--input", str(empty))
    assert result.exit_code == 3 and "is empty" in result.output

    assert run("--input", str(empty), "--format", "xlsx").exit_code == 2
    missing = run()
    assert missing.exit_code == 2 and "--input" in missing.output
