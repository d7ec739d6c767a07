"""Write the example price files of README.md "Data frequencies" (run from the repository root).

    .venv/bin/python examples/make_examples.py

Each file is the seeded generator's series (an AR(1) term in the returns, so there is something
to learn) laid on another calendar: one close a calendar day, a week (Fridays) or a month (dated
like "Jan 1 2000"), five tickers. Small enough to commit; rerunning rewrites the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.ingest.generator import generate_prices

HERE = Path(__file__).parent
TICKERS = 5
# name: (periods per ticker, first date, pandas offset alias, date format of the file)
FILES = {
    "daily.csv": (730, "2022-01-01", "D", "%Y-%m-%d"),  # two years, weekends included
    "weekly.csv": (260, "2019-01-04", "W-FRI", "%Y-%m-%d"),  # five years of Friday closes
    "monthly.csv": (120, "2000-01-01", "MS", "%b %-d %Y"),  # ten years, "Jan 1 2000"
}


def write(name: str, periods: int, start: str, alias: str, date_format: str) -> Path:
    prices = generate_prices(TICKERS, periods, start, seed=7, drift=0.05, volatility=0.25, ar_coef=0.15)
    dates = pd.date_range(start, periods=periods, freq=alias)
    table = pd.DataFrame({
        "Date": [d.strftime(date_format) for d in dates] * TICKERS,
        "Symbol": prices["ticker"].to_numpy(),
        "Close": prices["price"].to_numpy(),
    })
    path = HERE / name
    table.to_csv(path, index=False)
    return path


if __name__ == "__main__":
    for file_name, spec in FILES.items():
        print(write(file_name, *spec))
