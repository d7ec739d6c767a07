"""validate fails fast on what clean, features and train need, with the numbers (issue 13)."""

from __future__ import annotations

import pandas as pd
import pytest

from components.validate.core import validate_frame
from components.validate.diff import FREQUENCY, HISTORY, PRICE_RANGE, TIME_SERIES, render_markdown
from pricecast.errors import ConfigError, SchemaValidationError
from tests.support.prices import price_frame


def _raw(frame: pd.DataFrame, date_format: str = "%Y-%m-%d") -> pd.DataFrame:
    """As a CSV gives it: dates as text."""
    return frame.assign(date=frame["date"].dt.strftime(date_format))


def _failure(info: pytest.ExceptionInfo, label: str) -> dict:
    return next(c for c in info.value.diff["checks"] if c["check"] == label)


def test_ten_years_of_monthly_closes_dated_like_jan_1_2000_pass_as_monthly():
    raw = _raw(price_frame("monthly", tickers=5, periods=120, start="2000-01-01"), "%b %-d %Y")
    assert raw["date"].iloc[0] == "Jan 1 2000"
    validated, diff = validate_frame(raw, "%b %d %Y")
    assert diff["valid"] and diff["frequency"] == "monthly" and len(validated) == 600
    assert "**frequency:** monthly" in render_markdown(diff)


def test_too_short_for_the_model_at_its_frequency_is_refused_up_front_with_the_numbers():
    raw = _raw(price_frame("monthly", tickers=5, periods=24, start="2000-01-01"))
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(raw, n_windows=3, test_fraction=0.2)
    check = _failure(info, HISTORY)
    assert check["summary"] == (
        "at monthly frequency the data has 24 distinct dates; the model needs 28: 22 months before the test "
        "period (21 of history for the first feature row, then its next month) and 3 test window(s) over the "
        "last 20%, the last holding 2 dates (the final date has no next price to score)")
    assert check["fix"].startswith("Supply at least 28 consecutive months of prices for a ticker (about 2.3 years")
    # A smaller test period needs fewer dates: the same file is long enough for one 10 % window.
    assert validate_frame(raw, n_windows=1, test_fraction=0.1)[1]["frequency"] == "monthly"


def test_a_cross_section_of_many_tickers_on_one_date_is_refused():
    raw = pd.DataFrame({"date": "2024-03-28", "ticker": [f"T{i:03d}" for i in range(300)],
                        "price": [10.0 + i for i in range(300)]})
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(raw)
    check = _failure(info, TIME_SERIES)
    assert check["summary"] == ("each of the 300 ticker(s) has a single date (2024-03-28): a cross-section, not "
                                "prices over time")
    assert "at least 28 consecutive dates of one ticker" in check["fix"]


def test_mixed_frequencies_and_a_contradicted_frequency_are_refused():
    mixed = pd.concat([price_frame("monthly", tickers=1, periods=60),
                       price_frame("weekly", tickers=1, periods=60).assign(ticker="W")], ignore_index=True)
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(_raw(mixed))
    assert _failure(info, FREQUENCY)["summary"] == "the tickers have different frequencies: monthly: S00; weekly: W"

    monthly = _raw(price_frame("monthly", tickers=2, periods=60))
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(monthly, frequency="business")
    assert _failure(info, FREQUENCY)["summary"] == "frequency business was asked for, but S00, S01 are monthly"
    assert _failure(info, FREQUENCY)["fix"].startswith("Pass --frequency monthly (frequency: in a config)")
    assert validate_frame(monthly, frequency="monthly")[1]["frequency"] == "monthly"
    with pytest.raises(ConfigError, match="Unknown frequency"):
        validate_frame(monthly, frequency="yearly")


def test_prices_beyond_the_float_safe_range_are_refused_with_a_rescaling_fix():
    frame = price_frame("business", tickers=2, periods=60)
    ok = _raw(frame.assign(price=frame["price"] * 1e297))  # about 1e299: inside
    assert validate_frame(ok)[1]["valid"]
    too_big = _raw(frame.assign(price=frame["price"] * 1e299))
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(too_big)
    check = _failure(info, PRICE_RANGE)
    assert check["failing_rows"] == 120 and check["fix"].startswith("Rescale the prices")


def test_many_dates_but_no_ticker_with_history_before_the_test_period_is_refused():
    # 40 tickers of 10 months each, one after the other: 400 distinct dates, none long enough.
    frames = [price_frame("monthly", tickers=1, periods=10, start=f"{1960 + k}-01-01").assign(ticker=f"T{k:02d}")
              for k in range(40)]
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(_raw(pd.concat(frames, ignore_index=True)))
    assert _failure(info, HISTORY)["summary"] == (
        "at monthly frequency no ticker has the 22 months before the test period (from 1992-01-01) that "
        "training needs; the longest has 10 (T00)")
