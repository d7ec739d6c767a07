"""Generator data ends on the last business day by default (issue 13, item 11).

Data ending in 2022 made `pricecast check freshness` raise a HIGH alert right after `make run`.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from components.ingest import core, generator, source_key
from pricecast.monitoring import checks
from pricecast.monitoring.thresholds import Thresholds


@pytest.mark.parametrize(("today", "last"), [
    (date(2026, 12, 4), date(2026, 12, 4)),   # a Friday: its own close
    (date(2026, 12, 5), date(2026, 12, 4)),   # Saturday: Friday's
    (date(2026, 12, 7), date(2026, 12, 7)),   # Monday
])
def test_last_business_day(today: date, last: date) -> None:
    assert source_key.last_business_day(today) == last


def test_the_default_series_ends_on_the_last_business_day_and_spans_the_days() -> None:
    spec = core.load_source_spec(None, tickers=2, days=30)
    start = core.generator_start(spec, date(2026, 12, 6))  # a Sunday
    frame = generator.generate_prices(2, 30, start, 42, 0.05, 0.25, 0.15)
    dates = frame.loc[frame["ticker"] == "T0001", "date"]
    assert (dates.min(), dates.max(), len(dates)) == (pd.Timestamp("2026-10-26"), pd.Timestamp("2026-12-04"), 30)


def test_an_explicit_start_date_still_wins() -> None:
    spec = core.load_source_spec(None, start_date="2020-01-01", days=10)
    assert core.generator_start(spec, date(2026, 12, 6)) == "2020-01-01"


def test_default_generator_data_is_fresh_right_after_a_run() -> None:
    frame = core.ingest_frame(core.load_source_spec(None, tickers=3, days=50)).frame
    freshness = checks.data_freshness(frame, date.today(), Thresholds().max_data_age_business_days)
    assert freshness.stale == [] and checks.freshness_alerts(freshness) == []


def test_the_checkpoint_key_moves_with_the_day_only_for_the_default_series() -> None:
    default = source_key.checkpoint_params({"source": "generator", "start_date": "", "days": 10})
    pinned = source_key.checkpoint_params({"source": "generator", "start_date": "2020-01-01", "days": 10})
    assert default["generated_through"] == f"{source_key.last_business_day(date.today()):%Y-%m-%d}"
    assert "generated_through" not in pinned
