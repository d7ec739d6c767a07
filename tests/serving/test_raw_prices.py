"""No training/serving skew: raw prices sent to the server give the pipeline's features exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from components.clean.core import clean_prices
from components.features.core import build_features
from pricecast.columns import FEATURE_COLUMNS
from serving.features import features_from_prices
from tests.serving.util import V1
from tests.support.server import publish_model


def _history(ticker: str, seed: int, days: int = 160) -> pd.DataFrame:
    """A validated frame: business-day closes of a gentle random walk (no outliers to clip)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2023-01-02", periods=days)
    prices = 50.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, size=days)))
    return pd.DataFrame({"date": dates.astype("datetime64[ns]"), "ticker": ticker, "price": prices})


def _pipeline_rows(validated: pd.DataFrame) -> pd.DataFrame:
    """What the pipeline computes: clean stage, then features stage, over the whole history."""
    clean, _ = clean_prices(validated)
    return build_features(clean)


def _raw_instance(validated: pd.DataFrame, last: int) -> dict[str, Any]:
    recent = validated.tail(last)
    return {"ticker": str(recent["ticker"].iloc[0]), "dates": recent["date"].dt.strftime("%Y-%m-%d").tolist(),
            "prices": recent["price"].tolist()}


def test_raw_prices_give_bit_identical_features_and_predictions_to_the_pipeline(client: TestClient) -> None:
    histories = [_history("ACME", 1), _history("INIT", 2)]
    seen: list[np.ndarray] = []
    client.app.plane.input_observers.append(seen.append)  # type: ignore[attr-defined]

    served = client.post(V1, json={"instances": [_raw_instance(h, last=30) for h in histories]})
    assert served.status_code == 200, served.text

    pipeline = np.array([_pipeline_rows(h)[FEATURE_COLUMNS].to_numpy()[-1] for h in histories])
    np.testing.assert_array_equal(seen[0], pipeline)  # the features, bit for bit
    from_rows = client.post(V1, json={"instances": pipeline.tolist()}).json()["predictions"]
    assert served.json()["predictions"] == from_rows


def test_more_history_than_needed_gives_the_same_forecast(client: TestClient) -> None:
    history = _history("ACME", 3)
    short = client.post(V1, json={"instances": [_raw_instance(history, last=21)]}).json()["predictions"]
    long = client.post(V1, json={"instances": [_raw_instance(history, last=150)]}).json()["predictions"]
    np.testing.assert_allclose(short, long, rtol=0, atol=1e-15)


def test_a_gap_right_before_the_last_date_is_refused_with_a_reason(client: TestClient) -> None:
    history = _history("ACME", 4, days=40)
    instance = _raw_instance(history, last=40)
    instance["dates"][-1] = "2024-06-03"  # weeks after the previous close: a new segment of one price
    response = client.post(V1, json={"instances": [instance]})
    assert response.status_code == 422 and "gap" in response.json()["error"]


def _with_spike(history: pd.DataFrame, at: int, jump: float) -> pd.DataFrame:
    """The same closes with one day's price ``jump`` times higher (a bad tick or a squeeze)."""
    spiked = history.copy()
    spiked.loc[at, "price"] *= jump
    return spiked


def test_a_spike_in_a_short_window_is_clipped_with_the_training_bounds_bit_for_bit(
        store_url: str, make_client: Any) -> None:
    from pricecast.columns import OUTLIER_BOUNDS_KEY

    acme = _with_spike(_history("ACME", 5), at=150, jump=1.4)
    _, report = clean_prices(acme)  # what the clean stage stored with the model
    publish_model(store_url, "v1", metadata={OUTLIER_BOUNDS_KEY: report.bounds_document()})
    client = make_client()
    seen: list[np.ndarray] = []
    client.app.plane.input_observers.append(seen.append)  # type: ignore[attr-defined]

    # 30 closes hold the spike: a spread estimated from them would clip it elsewhere.
    assert client.post(V1, json={"instances": [_raw_instance(acme, last=30)]}).status_code == 200
    pipeline = _pipeline_rows(acme)[FEATURE_COLUMNS].to_numpy()[-1]
    np.testing.assert_array_equal(seen[0][0], pipeline)
    window_only = features_from_prices(acme["date"].tail(30), acme["price"].tail(30), "ACME")
    assert not np.array_equal(window_only[FEATURE_COLUMNS].to_numpy()[-1], pipeline), \
        "the spike must matter, or this test proves nothing"


def test_a_ticker_training_never_saw_gets_bounds_from_its_window(store_url: str, make_client: Any) -> None:
    from pricecast.columns import OUTLIER_BOUNDS_KEY

    _, report = clean_prices(_history("ACME", 5))
    publish_model(store_url, "v1", metadata={OUTLIER_BOUNDS_KEY: report.bounds_document()})
    client = make_client()
    seen: list[np.ndarray] = []
    client.app.plane.input_observers.append(seen.append)  # type: ignore[attr-defined]
    other = _with_spike(_history("OTHER", 6), at=150, jump=1.4)
    assert client.post(V1, json={"instances": [_raw_instance(other, last=30)]}).status_code == 200
    window_only = features_from_prices(other["date"].tail(30), other["price"].tail(30), "OTHER")
    np.testing.assert_array_equal(seen[0][0], window_only[FEATURE_COLUMNS].to_numpy()[-1])


def test_a_monthly_model_serves_monthly_closes_and_refuses_daily_ones_naming_both(
        store_url: str, make_client: Any) -> None:
    from pricecast.columns import feature_columns
    from tests.support.prices import price_frame

    monthly_features = feature_columns("monthly")
    publish_model(store_url, "v1", features=monthly_features, metadata={"frequency": "monthly"})
    client = make_client()
    seen: list[np.ndarray] = []
    client.app.plane.input_observers.append(seen.append)  # type: ignore[attr-defined]

    months = price_frame("monthly", tickers=1, periods=30, start="2000-01-01")
    assert client.post(V1, json={"instances": [_raw_instance(months, last=24)]}).status_code == 200
    trained = build_features(clean_prices(months, frequency="monthly")[0], "monthly")
    np.testing.assert_array_equal(seen[0][0], trained[monthly_features].to_numpy()[-1])

    days = _history("S00", 7)
    refused = client.post(V1, json={"instances": [_raw_instance(days, last=30)]})
    assert refused.status_code == 422
    assert refused.json()["error"] == ("instance 0 (S00): The dates are business, but this model forecasts "
                                       "monthly (one price a month).")
    assert refused.json()["fix"] == "Send one close per month, oldest first, as the model was trained on."


def test_a_model_without_a_recorded_frequency_is_business_daily(client: TestClient) -> None:
    from tests.support.prices import price_frame

    assert client.app.plane.frequency == "business"  # type: ignore[attr-defined]
    weeks = _raw_instance(price_frame("weekly", tickers=1, periods=30), last=30)
    refused = client.post(V1, json={"instances": [weeks]})
    assert refused.status_code == 422 and "The dates are weekly, but this model forecasts business" in \
        refused.json()["error"]

