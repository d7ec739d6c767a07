"""clean_prices: sorting, duplicates, gaps, returns and outlier clipping, each rule checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.clean.core import MAD_TO_SIGMA, clean_prices
from components.clean.tests.conftest import random_walk, validated
from pricecast.columns import CLEAN_COLUMNS
from pricecast.errors import ConfigError, DataFormatError


def test_output_contract():
    clean, report = clean_prices(random_walk("AAA", 50, 1))
    assert tuple(clean.columns) == CLEAN_COLUMNS
    assert str(clean["date"].dtype) == "datetime64[ns]" and pd.api.types.is_string_dtype(clean["ticker"])
    assert clean["log_return"].dtype == np.float64 and clean["segment"].dtype == np.int64
    assert clean["clipped"].dtype == bool
    assert isinstance(clean.index, pd.RangeIndex)
    assert report.rows_in == report.rows_out == 50 and report.was_sorted


def test_log_returns_stay_inside_each_ticker():
    frame = pd.concat([random_walk("BBB", 30, 1), random_walk("AAA", 30, 2)], ignore_index=True)
    clean, _ = clean_prices(frame)
    assert clean["ticker"].tolist() == ["AAA"] * 30 + ["BBB"] * 30
    for _, group in clean.groupby("ticker"):
        prices = group["price"].to_numpy()
        assert np.isnan(group["log_return"].iloc[0])
        np.testing.assert_allclose(group["log_return"].iloc[1:], np.log(prices[1:] / prices[:-1]))


def test_unsorted_input_with_exact_duplicates_gives_the_sorted_result():
    frame = pd.concat([random_walk("AAA", 40, 1), random_walk("BBB", 40, 2)], ignore_index=True)
    expected, _ = clean_prices(frame)
    messy = pd.concat([frame.sample(frac=1.0, random_state=4), frame.iloc[[3, 3, 50]]], ignore_index=True)

    clean, report = clean_prices(messy)

    pd.testing.assert_frame_equal(clean, expected)
    assert report.duplicates_dropped == 3 and report.dropped == {"exact_duplicate": 3}
    assert report.rows_in == 83 and report.rows_out == 80 and not report.was_sorted


def test_cleaning_tickers_together_equals_cleaning_them_apart():
    parts = [random_walk(t, 60, seed) for seed, t in enumerate(("AAA", "BBB", "CCC"))]
    parts[1].loc[30, "price"] *= 3  # an outlier in one ticker must not move another's bounds
    together, _ = clean_prices(pd.concat(parts, ignore_index=True))
    apart = pd.concat([clean_prices(p)[0] for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(together, apart)


@pytest.mark.parametrize(("missing_days", "breaks"), [(4, False), (5, True), (15, True)])
def test_a_gap_longer_than_max_gap_days_starts_a_segment(missing_days, breaks):
    days = pd.bdate_range("2021-01-04", periods=30 + missing_days)
    kept = days[:10].append(days[10 + missing_days:])  # busday distance across the hole: missing_days + 1
    clean, report = clean_prices(validated("AAA", kept, np.linspace(100, 110, len(kept))), max_gap_days=5)

    assert report.gaps_found == int(breaks) and report.flagged["gap_starts_segment"] == int(breaks)
    assert clean["segment"].tolist() == [0] * 10 + [1 if breaks else 0] * 20
    assert np.isnan(clean["log_return"].iloc[10]) == breaks
    assert report.segments == 1 + int(breaks)


def test_segments_restart_for_every_ticker():
    gap_days = pd.bdate_range("2021-01-04", periods=40)
    gappy = validated("AAA", gap_days[:10].append(gap_days[30:]), np.linspace(1, 2, 20))
    clean, report = clean_prices(pd.concat([gappy, random_walk("BBB", 20, 1)], ignore_index=True))
    assert clean.groupby("ticker")["segment"].max().to_dict() == {"AAA": 1, "BBB": 0}
    assert report.gaps_found == 1 and report.segments == 3


def test_an_outlier_return_is_clipped_to_the_robust_bound_and_the_row_kept():
    frame = random_walk("AAA", 120, 7)
    frame.loc[60:, "price"] *= 1.8  # a one-day jump of log(1.8) = 0.59: far outside 8 sigma
    raw_returns = np.log(frame["price"]).diff().to_numpy()[1:]
    median = np.median(raw_returns)
    bound = median + 8.0 * MAD_TO_SIGMA * np.median(np.abs(raw_returns - median))

    clean, report = clean_prices(frame, outlier_sigma=8.0)

    assert len(clean) == 120 and clean["price"].equals(frame["price"])  # calendar and prices intact
    assert clean["clipped"].sum() == 1 and clean["clipped"].iloc[60]
    assert clean["log_return"].iloc[60] == pytest.approx(bound)
    assert report.returns_clipped == 1 and report.flagged["return_clipped"] == 1


def test_a_looser_threshold_clips_nothing():
    frame = random_walk("AAA", 120, 7)
    frame.loc[60:, "price"] *= 1.8
    assert clean_prices(frame, outlier_sigma=100.0)[1].returns_clipped == 0


def test_no_clipping_without_a_reliable_spread():
    flat = validated("AAA", pd.bdate_range("2021-01-04", periods=40), [10.0] * 20 + [20.0] * 20)  # MAD 0
    short = random_walk("BBB", 15, 3)  # fewer than MIN_RETURNS_FOR_OUTLIERS returns
    short.loc[10:, "price"] *= 5
    clean, report = clean_prices(pd.concat([flat, short], ignore_index=True))
    assert report.returns_clipped == 0
    assert clean.loc[clean["ticker"] == "AAA", "log_return"].max() == pytest.approx(np.log(2))


def test_conflicting_duplicates_and_bad_parameters_are_refused():
    frame = random_walk("AAA", 10, 1)
    with pytest.raises(DataFormatError, match="two different prices"):
        clean_prices(pd.concat([frame, frame.iloc[[2]].assign(price=1.0)], ignore_index=True))
    with pytest.raises(ConfigError, match="max_gap_days"):
        clean_prices(frame, max_gap_days=0)
    with pytest.raises(ConfigError, match="outlier_sigma"):
        clean_prices(frame, outlier_sigma=0.0)


def test_an_empty_frame_stays_empty_with_the_contract():
    clean, report = clean_prices(random_walk("AAA", 5, 1).iloc[:0])
    assert tuple(clean.columns) == CLEAN_COLUMNS and len(clean) == 0 and report.rows_out == 0
    assert clean["segment"].dtype == np.int64


def test_the_report_reads_well_and_serializes():
    _, report = clean_prices(random_walk("AAA", 30, 1))
    assert "30 rows in, 30 out (1 tickers); dropped 0 exact duplicates" in report.summary()
    assert report.as_dict()["dropped"] == {"exact_duplicate": 0}


# --------------------------------------------------------------------------- frequency (issue 13)
@pytest.mark.parametrize("frequency", ["daily", "weekly", "monthly"])
def test_regular_weekly_and_monthly_closes_are_no_gaps_but_a_missing_period_is(frequency):
    from tests.support.prices import price_frame

    frame = price_frame(frequency, tickers=2, periods=40)
    clean, report = clean_prices(frame, frequency=frequency)
    assert report.gaps_found == 0 and report.frequency == frequency  # was: every step a gap
    assert clean["log_return"].notna().sum() == 2 * 39

    # At weekly or monthly spacing one period missing is a gap; daily closes tolerate 5 business days.
    missing = 6 if frequency == "daily" else 1
    holed = frame.drop(index=range(20, 20 + missing))
    clean, report = clean_prices(holed, frequency=frequency)
    assert report.gaps_found == 1 and clean["segment"].max() == 1
    assert "gaps >" in report.summary() and ("5 days" if frequency == "daily" else f"1 {frequency[:-2]}") \
        in report.summary()


def test_business_frequency_keeps_the_business_day_gap_rule():
    frame = random_walk("AAA", 60, 1)
    holed = frame.drop(index=range(20, 25))  # 5 business days missing: a 6-day step, over 5
    assert clean_prices(holed)[1].gaps_found == clean_prices(holed, frequency="business")[1].gaps_found == 1
    assert clean_prices(frame.drop(index=range(20, 24)))[1].gaps_found == 0
