"""features_from_prices, the serving path (clean_prices -> build_features on a request's closes):
bit-for-bit the training rows, and clear errors for bad request data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.clean.core import clean_prices
from components.features.core import MIN_HISTORY, build_features
from components.features.tests.support import clean_frame
from pricecast.columns import FEATURE_COLUMNS
from pricecast.errors import ConfigError, SchemaValidationError
from serving.features import features_from_prices

FRAME = clean_frame(n_tickers=3, n_days=90, seed=7, gaps={"T001": 50})


@pytest.mark.parametrize("gap_before_window", [False, True])
def test_features_from_prices_equals_the_training_rows_bit_for_bit(gap_before_window: bool) -> None:
    """Training/serving identity: the pipeline's clean + features on the full history give the
    very numbers the server computes from the last closes alone."""
    one = FRAME[FRAME["ticker"] == "T002"][["date", "ticker", "price"]].reset_index(drop=True)
    if gap_before_window:  # a long halt 40 rows before the end: a new segment starts there
        one.loc[50:, "date"] = one.loc[50:, "date"] + pd.Timedelta(days=30)
    training = build_features(clean_prices(one)[0])
    recent = one.iloc[-30:]
    served = features_from_prices(recent["date"].astype(str), recent["price"].tolist(), ticker="T002")
    trained = training.set_index("date").loc[served["date"]]
    assert len(served) == 30 - MIN_HISTORY + 1
    np.testing.assert_array_equal(served[FEATURE_COLUMNS].to_numpy(), trained[FEATURE_COLUMNS].to_numpy())
    assert served["date"].iloc[-1] == one["date"].iloc[-1]


def test_a_close_stamped_with_a_utc_offset_keeps_its_own_day() -> None:
    """As validate reads a source: a Tokyo midnight (+09:00) is that day, not the UTC day before."""
    one = FRAME[FRAME["ticker"] == "T002"].iloc[-30:]
    days = one["date"].dt.strftime("%Y-%m-%d")
    plain = features_from_prices(days.tolist(), one["price"].tolist(), ticker="T002")
    stamped = features_from_prices((days + "T00:00:00+09:00").tolist(), one["price"].tolist(), ticker="T002")
    pd.testing.assert_frame_equal(stamped, plain)


def test_features_from_prices_needs_min_history_prices() -> None:
    one = FRAME[FRAME["ticker"] == "T000"].iloc[:MIN_HISTORY]
    assert len(features_from_prices(one["date"], one["price"])) == 1
    with pytest.raises(ConfigError, match=f"MIN_HISTORY={MIN_HISTORY}"):
        features_from_prices(one["date"].iloc[1:], one["price"].iloc[1:])


def test_features_from_prices_refuses_a_long_gap_right_before_the_last_date() -> None:
    dates = list(pd.bdate_range("2021-01-01", periods=MIN_HISTORY))
    dates[-1] = dates[-2] + pd.Timedelta(days=60)
    with pytest.raises(ConfigError, match="gap"):
        features_from_prices(dates, np.linspace(10, 11, MIN_HISTORY))


@pytest.mark.parametrize(
    ("dates", "prices", "message"),
    [
        (pd.bdate_range("2021-01-01", periods=MIN_HISTORY)[::-1], np.ones(MIN_HISTORY), "increasing"),
        (pd.bdate_range("2021-01-01", periods=MIN_HISTORY), [1.0] * (MIN_HISTORY - 1) + [0.0], "above zero"),
        (pd.bdate_range("2021-01-01", periods=MIN_HISTORY), [1.0] * (MIN_HISTORY - 1) + [np.nan], "above zero"),
        (["not a date"] * MIN_HISTORY, np.ones(MIN_HISTORY), "date could not be read"),
        (pd.bdate_range("2021-01-01", periods=MIN_HISTORY + 1), np.ones(MIN_HISTORY), "one date per price"),
    ],
)
def test_features_from_prices_names_bad_request_data(dates, prices, message: str) -> None:
    with pytest.raises(SchemaValidationError, match=message):
        features_from_prices(dates, prices)


def test_served_raw_prices_must_be_spaced_at_the_models_frequency():
    from tests.support.prices import price_frame

    monthly = price_frame("monthly", tickers=1, periods=30)
    served = features_from_prices(monthly["date"], monthly["price"], "S00", frequency="monthly")
    trained = build_features(clean_prices(monthly, frequency="monthly")[0], "monthly")
    np.testing.assert_array_equal(served.iloc[-1, 3:].to_numpy(float), trained.iloc[-1, 3:].to_numpy(float))
    with pytest.raises(SchemaValidationError, match=r"The dates are monthly, but this model forecasts business "
                                                    r"\(one price a business day\)"):
        features_from_prices(monthly["date"], monthly["price"], "S00")
    weekly = price_frame("weekly", tickers=1, periods=30)
    with pytest.raises(SchemaValidationError, match="The dates are weekly, but this model forecasts monthly"):
        features_from_prices(weekly["date"], weekly["price"], "S00", frequency="monthly")
