"""No training/serving skew: raw prices sent to the server give the pipeline's features exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from components.clean.core import clean_prices
from components.features.core import FEATURE_COLUMNS, build_features
from tests.serving.util import V1


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
