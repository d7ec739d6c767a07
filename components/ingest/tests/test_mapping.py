"""Column mapping: other names, other date styles, no ticker column, and what a miss keeps."""

from __future__ import annotations

import pandas as pd
import pytest

from components.ingest.core import ingest_frame, load_source_spec, map_columns
from components.validate.core import parse_frame, validate_frame
from pricecast.errors import ConfigError, SchemaValidationError

YAHOO_STYLE = (
    "Date,Symbol,Open,Close\n"
    "Jan 3 2000,IBM,100.0,101.5\n"
    "Jan 4 2000,IBM,101.5,99.25\n"
    "Jan 3 2000,AAPL,3.5,3.75\n"
)


def test_renamed_columns_and_month_name_dates_map_and_validate(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(YAHOO_STYLE)
    spec = load_source_spec(None, source=str(path), date_column="Date", ticker_column="Symbol",
                            price_column="Close", date_format="%b %d %Y")

    result = ingest_frame(spec)
    assert list(result.frame.columns) == ["date", "ticker", "price"]
    assert result.info["renamed"] == {"Date": "date", "Symbol": "ticker", "Close": "price"}
    assert result.info["dropped"] == ["Open"]
    assert result.frame["date"].tolist() == ["Jan 3 2000", "Jan 4 2000", "Jan 3 2000"]  # raw until validate

    parsed, failures = parse_frame(result.frame, spec.date_format)
    assert parsed["date"].tolist() == [pd.Timestamp("2000-01-03"), pd.Timestamp("2000-01-04"),
                                       pd.Timestamp("2000-01-03")]
    assert parsed["price"].tolist() == [101.5, 99.25, 3.75] and failures == []
    # Mapped and parsed, but two days of prices cannot train a model: validate says so up front.
    with pytest.raises(SchemaValidationError, match="the data has 2 distinct dates; the model needs 28"):
        validate_frame(result.frame, spec.date_format, min_rows=1)


def test_a_file_without_a_ticker_column_is_one_series(tmp_path):
    path = tmp_path / "single.csv"
    path.write_text("Day,Close\n2021-01-04,1.5\n2021-01-05,1.6\n")
    result = ingest_frame(load_source_spec(None, source=str(path), date_column="Day", price_column="Close",
                                           default_ticker="BTC"))
    assert result.frame["ticker"].tolist() == ["BTC", "BTC"]
    assert result.info["tickers"] == 1


def test_missing_mapped_columns_keep_every_column_for_the_schema_diff(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("when,what,close\n2021-01-04,A,1.5\n")
    result = ingest_frame(load_source_spec(None, source=str(path)))
    assert list(result.frame.columns) == ["when", "what", "close"]
    assert result.info["mapped"] is False
    assert result.info["missing_columns"] == ["date", "price"]

    with pytest.raises(SchemaValidationError) as info:
        validate_frame(result.frame, min_rows=1)
    assert info.value.diff["columns"]["missing"] == ["date", "ticker", "price"]
    assert info.value.diff["columns"]["unexpected"] == ["when", "what", "close"]
    assert "--date-column" in info.value.fix and "when, what, close" in info.value.fix


def test_column_names_match_ignoring_case_and_surrounding_spaces():
    frame = pd.DataFrame({" Date ": ["2021-01-04"], "TICKER": ["A"], "Price": [1.0]})
    mapped, info = map_columns(frame, load_source_spec())
    assert list(mapped.columns) == ["date", "ticker", "price"] and info["mapped"]


def test_a_named_ticker_column_that_is_missing_is_not_silently_one_series():
    frame = pd.DataFrame({"date": ["2021-01-04"], "price": [1.0]})
    mapped, info = map_columns(frame, load_source_spec(ticker_column="Symbol"))
    assert info["mapped"] is False and info["missing_columns"] == ["Symbol"]
    assert list(mapped.columns) == ["date", "price"]


def test_one_column_cannot_play_two_roles():
    frame = pd.DataFrame({"date": ["2021-01-04"], "close": [1.0]})
    with pytest.raises(ConfigError, match="two roles"):
        map_columns(frame, load_source_spec(price_column="close", ticker_column="close"))
