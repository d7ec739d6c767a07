"""validate_frame: the contract it produces, each failing check and the schema diff it explains."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components.validate.core import analyse_duplicates, price_schema, validate_frame
from components.validate.diff import render_markdown
from pricecast.errors import SchemaValidationError


def _fail(raw: pd.DataFrame, **kwargs) -> SchemaValidationError:
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(raw, **kwargs)
    json.dumps(info.value.diff)  # the diff is always JSON-serializable
    assert info.value.diff["valid"] is False and info.value.fix
    return info.value


def _check(error: SchemaValidationError, label: str, column: str | None = None) -> dict:
    found = [c for c in error.diff["checks"] if label in c["check"] and (column is None or c["column"] == column)]
    assert found, [c["check"] for c in error.diff["checks"]]
    return found[0]


# --------------------------------------------------------------------------- valid data
def test_valid_raw_strings_become_the_validated_contract(good):
    validated, diff = validate_frame(good)
    assert list(validated.columns) == ["date", "ticker", "price"]
    assert str(validated["date"].dtype) == "datetime64[ns]"
    assert pd.api.types.is_string_dtype(validated["ticker"]) and validated["price"].dtype == np.float64
    assert validated["date"].iloc[0] == pd.Timestamp("2021-01-01")
    assert diff["valid"] and diff["checks"] == [] and diff["rows"]["found"] == 150
    assert all(d["status"] in ("ok", "parsed to datetime64[ns]") for d in diff["dtypes"])
    price_schema(100).validate(validated)  # the declared schema accepts what validate returns


def test_prices_as_numeric_strings_and_numeric_tickers_are_parsed(good):
    raw = good.assign(price=good["price"].map(lambda p: f" {p} "), ticker=7)
    validated, _ = validate_frame(raw)
    assert validated["price"].iloc[0] == 100.0 and validated["ticker"].iloc[0] == "7"


def test_timestamps_are_normalized_to_tz_naive_days(good):
    raw = good.assign(date=pd.to_datetime(good["date"]).dt.tz_localize("UTC") + pd.Timedelta(hours=15))
    validated, _ = validate_frame(raw)
    assert validated["date"].dt.tz is None
    assert (validated["date"] == validated["date"].dt.normalize()).all()


@pytest.mark.parametrize("stamp", [
    "{day} 00:00:00+09:00",  # Tokyo's midnight: 15:00 the day before in UTC
    "{day}T00:00:00.000+01:00",  # a European daily bar, as yfinance writes it
    "{day} 00:00:00-05:00",
    "{day}T00:00Z",
    "{day} 00:00:00 +0900",
])
def test_a_timestamp_with_an_offset_keeps_the_day_it_was_stamped(good, stamp):
    raw = good.assign(date=pd.to_datetime(good["date"]).dt.strftime("%Y-%m-%d").map(lambda d: stamp.format(day=d)))
    validated, _ = validate_frame(raw)
    pd.testing.assert_series_equal(validated["date"], pd.to_datetime(good["date"]).astype("datetime64[ns]"),
                                   check_names=False)


def test_a_zoned_timestamp_column_and_a_format_with_an_offset_keep_their_local_days(good):
    days = pd.to_datetime(good["date"]).astype("datetime64[ns]")
    zoned = good.assign(date=days.dt.tz_localize("Asia/Tokyo"))  # a tz-aware Parquet column
    validated, _ = validate_frame(zoned)
    pd.testing.assert_series_equal(validated["date"], days, check_names=False)
    formatted = good.assign(date=days.dt.strftime("%d.%m.%Y 00:00 +0100"))
    validated, _ = validate_frame(formatted, date_format="%d.%m.%Y %H:%M %z")
    pd.testing.assert_series_equal(validated["date"], days, check_names=False)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_unix_time_in_any_unit_is_the_utc_day(good, unit):
    """APIs (exchanges, crypto feeds, JavaScript) write dates as seconds or milliseconds since 1970."""
    days = pd.to_datetime(good["date"]).astype("datetime64[ns]")
    numbers = (days + pd.Timedelta(hours=21)).astype("int64") // {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    validated, _ = validate_frame(good.assign(date=numbers))
    pd.testing.assert_series_equal(validated["date"], days, check_names=False)
    yyyymmdd = good.assign(date=days.dt.strftime("%Y%m%d").astype("int64"))  # a number, not Unix time
    pd.testing.assert_series_equal(validate_frame(yyyymmdd)[0]["date"], days, check_names=False)


def test_date_format_parses_month_names(good):
    raw = good.assign(date=pd.to_datetime(good["date"]).dt.strftime("%b %d %Y"))
    validated, diff = validate_frame(raw, date_format="%b %d %Y")
    assert validated["date"].iloc[0] == pd.Timestamp("2021-01-01") and diff["date_format"] == "%b %d %Y"


def test_exact_duplicates_and_unsorted_rows_pass_with_warnings(good):
    raw = pd.concat([good.iloc[::-1], good.iloc[[3, 4]]], ignore_index=True)
    validated, diff = validate_frame(raw)
    assert len(validated) == 152  # kept: clean drops them
    assert any("2 exact duplicate" in w for w in diff["warnings"])
    assert any("not sorted" in w for w in diff["warnings"])


def test_extra_columns_are_reported_and_dropped(good):
    validated, diff = validate_frame(good.assign(volume=1))
    assert list(validated.columns) == ["date", "ticker", "price"]
    assert diff["columns"]["unexpected"] == ["volume"] and "volume" in diff["warnings"][0]


# --------------------------------------------------------------------------- failures
def test_missing_and_renamed_columns_give_a_column_diff(good):
    error = _fail(good.rename(columns={"price": "close", "date": "day"}))
    columns = error.diff["columns"]
    assert columns["missing"] == ["date", "price"] and columns["unexpected"] == ["day", "close"]
    assert "missing column(s) date, price" in error.problem
    assert "--price-column" in error.fix
    assert error.diff["head"][0] == {"day": "2021-01-01", "ticker": "AAA", "close": "100.0"}
    assert {d["column"]: d["status"] for d in error.diff["dtypes"]}["price"] == "missing"


@pytest.mark.parametrize(("bad_value", "label"), [(-3.0, "price > 0"), (0.0, "price > 0"),
                                                  (np.nan, "no missing values"), (np.inf, "price is finite")])
def test_bad_prices(good, bad_value, label):
    raw = good.copy()
    raw.loc[5, "price"] = bad_value
    error = _fail(raw)
    check = _check(error, label, "price")
    assert check["failing_rows"] == 1
    assert check["sample"][0]["row"] == 6  # 1-based data row
    assert "price" in error.problem


def test_a_price_that_is_not_a_number_is_a_dtype_failure_with_the_value(good):
    raw = good.astype({"price": str})
    raw.loc[4, "price"] = "abc"
    error = _fail(raw)
    check = _check(error, "price is a number")
    assert check["sample"][0]["value"] == "abc"
    assert not [c for c in error.diff["checks"] if c["check"] == "no missing values"]  # not counted twice
    assert {d["column"]: d["status"] for d in error.diff["dtypes"]}["price"] == "1 value(s) do not parse"


def test_unparseable_dates_list_sample_values(good):
    raw = good.copy()
    raw.loc[[2, 9], "date"] = ["31/02/2021", "yesterday"]
    error = _fail(raw)
    check = _check(error, "date parses", "date")
    assert [s["value"] for s in check["sample"]] == ["31/02/2021", "yesterday"]
    assert [s["row"] for s in check["sample"]] == [3, 10]
    assert "--date-format" in error.fix and "'31/02/2021'" in error.fix


def test_wrong_date_format_fails_every_row_but_samples_only_ten(good):
    error = _fail(good, date_format="%d.%m.%Y")
    check = _check(error, "date parses with '%d.%m.%Y'")
    assert check["failing_rows"] == 150 and len(check["sample"]) == 10
    assert "(140 more failing rows not shown)" in render_markdown(error.diff)


def test_conflicting_duplicates_fail_listing_every_row_of_the_key(good):
    raw = pd.concat([good, good.iloc[[3]].assign(price=1.0)], ignore_index=True)
    error = _fail(raw)
    check = _check(error, "conflicting duplicate")
    assert [s["row"] for s in check["sample"]] == [4, 151]
    assert "duplicate" in error.problem and "one price per (ticker, date)" in error.fix


def test_missing_values_and_empty_tickers(good):
    raw = good.copy()
    raw.loc[1, "ticker"] = None
    raw.loc[2, "ticker"] = "  "
    raw.loc[3, "date"] = None
    error = _fail(raw)
    assert _check(error, "no missing values", "ticker")["sample"][0]["row"] == 2
    assert _check(error, "ticker is not empty")["sample"][0]["row"] == 3
    assert _check(error, "no missing values", "date")["sample"][0]["row"] == 4


def test_too_few_rows_and_empty_frames(good):
    error = _fail(good, min_rows=1000)
    assert "150 row(s) found, fewer than the minimum 1000" in error.problem and "--min-rows" in error.fix
    empty = _fail(good.iloc[:0], min_rows=0)  # even min_rows=0 needs one row
    assert empty.diff["rows"]["found"] == 0 and "0 row(s) found" in empty.problem


def test_every_failure_is_reported_at_once(good):
    raw = good.copy()
    raw.loc[1, "price"] = -1.0
    raw.loc[2, "date"] = "garbage"
    error = _fail(raw)
    assert {c["check"] for c in error.diff["checks"]} >= {"price > 0", "date parses (ISO 8601 or one inferred format)"}
    assert error.diff["rows"]["failing"] == 2


def test_the_markdown_report_shows_columns_checks_and_rows(good):
    raw = good.copy()
    raw.loc[5, "price"] = -3.0
    markdown = render_markdown(_fail(raw).diff)
    assert "# Schema check: FAILED" in markdown
    assert "| price | float64 | float64 | ok |" in markdown
    assert "### price > 0 — `price`" in markdown
    assert "| 6 | 2021-01-08 | AAA | -3.0 |" in markdown


def test_duplicate_analysis_ignores_rows_without_a_key():
    frame = pd.DataFrame({"date": pd.to_datetime(["2021-01-04", None, None]).astype("datetime64[ns]"),
                          "ticker": pd.array(["A", "A", "A"], dtype="str"), "price": [1.0, 2.0, 3.0]})
    analysis = analyse_duplicates(frame)
    assert not analysis.conflicting.any() and analysis.exact_extra == 0


def test_validation_of_generated_data_at_scale_has_no_warnings():
    from components.ingest.generator import generate_prices

    raw = generate_prices(50, 400, "2020-01-01", 1, 0.05, 0.25, 0.15)
    validated, diff = validate_frame(raw)
    assert len(validated) == 20_000 and diff["warnings"] == []
    assert validated["date"].equals(raw["date"]) and validated["price"].equals(raw["price"])



@pytest.mark.parametrize("shuffle", [False, True])
def test_the_duplicate_check_orders_the_rows_as_the_frequency_checks_would(shuffle: bool) -> None:
    # validate reuses the duplicate check's (ticker, date) sort for the series checks.
    from pricecast import frequency as freq

    rng = np.random.default_rng(4)
    tickers = np.repeat(["B", "A", "ÇX", "a"], 60)
    dates = pd.Timestamp("2022-01-03") + pd.to_timedelta(np.tile(np.arange(60) * 7, 4), "D")
    frame = pd.DataFrame({"date": dates.astype("datetime64[ns]"), "ticker": pd.array(tickers, dtype="str"),
                          "price": rng.lognormal(3, 0.1, 240)})
    frame = pd.concat([frame, frame.iloc[[5, 70]]], ignore_index=True)  # exact duplicates tie
    frame = frame.sort_values(["ticker", "date"], kind="stable", ignore_index=True)
    if shuffle:
        frame = frame.sample(frac=1, random_state=3).reset_index(drop=True)
    analysis = analyse_duplicates(frame)
    assert analysis.is_sorted is not shuffle and analysis.exact_extra == 2
    codes, names, day = analysis.sorted_series()
    expected_codes, expected_names, expected_day = freq.sorted_series(frame["ticker"], frame["date"])
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_array_equal(day, expected_day)
    assert list(names) == list(expected_names)
