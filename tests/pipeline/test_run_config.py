"""`pricecast run --config`: the same file `pricecast validate --config` reads, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cli.pipeline import load_run_config
from pricecast.errors import ConfigError
from pricecast.registry import RegistryStore


def _config(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_top_level_keys_and_an_ingest_section_merge_and_the_section_wins(tmp_path):
    path = _config(tmp_path, "n_windows: 2\nformat: json\ningest:\n  source: prices.csv\n  format: csv\n"
                             "  date_column: Day\n  encoding: latin-1\ntrain:\n  ignored: true\n")
    assert load_run_config(path) == {"n_windows": 2, "source": "prices.csv", "source_format": "csv",
                                     "date_column": "Day", "encoding": "latin-1"}


def test_toml_config_reads_the_same_way(tmp_path):
    path = _config(tmp_path, 'tickers = 3\n[ingest]\nprice_column = "Close"\n', "run.toml")
    assert load_run_config(path) == {"tickers": 3, "price_column": "Close"}


@pytest.mark.parametrize(("text", "word"), [
    ("n_window: 2\n", "n_window"),                   # a typo of a pipeline parameter
    ("ingest:\n  format: xlsx\n", "format"),         # an ingest option with a bad value
    ("ingest:\n  volatility: 0.3\n", "volatility"),  # a generator option the pipeline does not expose
    ("n_windows: [2\n", "cannot be parsed"),
])
def test_bad_config_is_refused_with_what_is_wrong(tmp_path, text, word):
    with pytest.raises(ConfigError) as info:
        load_run_config(_config(tmp_path, text))
    assert word in info.value.problem, info.value.problem
    assert info.value.fix


@pytest.mark.slow
def test_run_with_a_config_maps_columns_dates_and_encoding_end_to_end(isolated_store, tmp_path):
    # A Latin-1 export with its own column names and "Jan 04 2021" dates, described once in a file.
    dates = pd.bdate_range("2021-01-01", periods=320)
    rows = [{"Day": d.strftime("%b %d %Y"), "Symbol": sym, "Close": round(100 * (1.0005 + 0.001 * k) ** i, 4)}
            for k, sym in enumerate(("CAFÉ", "NAÏVE")) for i, d in enumerate(dates)]
    source = tmp_path / "export.csv"
    pd.DataFrame(rows).to_csv(source, index=False, encoding="latin-1")
    config = _config(tmp_path, f"n_windows: 2\ningest:\n  source: {source}\n  date_column: Day\n"
                               "  ticker_column: Symbol\n  price_column: Close\n  date_format: '%b %d %Y'\n"
                               "  encoding: latin-1\n")
    env = {**os.environ, "PRICECAST_STORE_URL": isolated_store.store_url,
           "PRICECAST_LOG_DIR": str(isolated_store.log_dir), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "cli", "run", "--config", str(config)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict:" in proc.stdout
    (entry,) = RegistryStore().load().versions.values()
    # The dates were read with the format: training starts in the file's first weeks of 2021.
    assert entry.training_window["start"].startswith("2021-0"), entry.training_window
    assert entry.decision == "promoted"
