"""pricecast.frequency and pricecast.history: the spacing of prices, and how much of it the model needs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricecast import frequency as freq
from pricecast import history
from pricecast.errors import ConfigError
from pricecast.frequency import Frequency
from tests.support.prices import price_frame


@pytest.mark.parametrize("frequency", list(Frequency))
def test_every_frequency_is_detected_from_its_dates(frequency):
    frame = price_frame(frequency, tickers=3, periods=40)
    detection = freq.detect(frame["ticker"], frame["date"])
    assert detection.frequency is frequency
    assert detection.mixed == {} and detection.unclassified.empty
    assert freq.resolve("auto", frame["ticker"], frame["date"]) is frequency


def test_month_ends_on_business_days_and_a_holiday_week_still_read_as_monthly_and_weekly():
    month_ends = pd.bdate_range("2001-01-01", "2010-12-31", freq="BME")
    assert freq.detect(["X"] * len(month_ends), month_ends).frequency is Frequency.MONTHLY
    fridays = pd.date_range("2020-01-03", periods=30, freq="W-FRI").to_numpy().copy()
    fridays[10] -= np.timedelta64(1, "D")  # Good Friday: the week's close is Thursday's
    assert freq.detect(["X"] * 30, fridays).frequency is Frequency.WEEKLY


def test_mixed_and_unsupported_spacings_are_explained_with_the_tickers_and_days():
    mixed = pd.concat([price_frame("monthly", tickers=2, periods=30),
                       price_frame("business", tickers=1, periods=30).assign(ticker="DAILY")])
    detection = freq.detect(mixed["ticker"], mixed["date"])
    assert detection.frequency is None
    assert detection.mixed == {"business": ["DAILY"], "monthly": ["S00", "S01"]}
    assert "different frequencies" in freq.problem(detection)
    with pytest.raises(ConfigError, match="business: DAILY; monthly: S00, S01"):
        freq.resolve("auto", mixed["ticker"], mixed["date"])

    quarterly = pd.date_range("2000-01-01", periods=20, freq="QS")
    odd = freq.detect(["Q"] * 20, quarterly)
    assert "91 days apart" in freq.problem(odd) and "none of the supported frequencies" in freq.problem(odd)


def test_a_named_frequency_must_agree_with_the_series_detection_can_classify():
    monthly = price_frame("monthly", tickers=2, periods=30)
    detection = freq.detect(monthly["ticker"], monthly["date"])
    assert freq.problem(detection, Frequency.MONTHLY) is None
    assert freq.problem(detection, Frequency.BUSINESS) == \
        "frequency business was asked for, but S00, S01 are monthly"
    with pytest.raises(ConfigError, match="Unknown frequency 'hourly'"):
        freq.parse("hourly")


def test_steps_count_periods_and_gaps_are_judged_in_them():
    before = np.array(["2024-01-05", "2024-01-31", "2024-01-05"], dtype="datetime64[D]")
    after = np.array(["2024-01-08", "2024-02-01", "2024-01-19"], dtype="datetime64[D]")
    assert freq.steps("business", before, after).tolist() == [1, 1, 10]
    assert freq.steps("daily", before, after).tolist() == [3, 1, 14]
    assert freq.steps("weekly", before, after).tolist() == [0, 0, 2]
    assert freq.steps("monthly", before, after).tolist() == [0, 1, 0]
    # 5 business days: a missing week of daily closes is tolerated, a missing week or month is not.
    assert [freq.max_gap_periods(f, 5) for f in Frequency] == [5, 5, 1, 1]
    assert freq.max_gap_periods("weekly", 15) == 3


def test_history_builds_on_the_time_splits_own_rule():
    for test_fraction, n_windows in [(0.2, 3), (0.2, 1), (0.5, 4), (0.05, 2)]:
        least = history.min_dates(test_fraction, n_windows)
        assert history.model_fits(least, test_fraction, n_windows)
        assert history.split_fits(least, test_fraction, n_windows)
        assert not history.model_fits(least - 1, test_fraction, n_windows)
    # 22 dates before the test period (21 of history, then the first target), 6 test dates.
    assert history.min_dates(0.2, 3) == 28
