"""No test-window leakage: nothing dated in the test windows can change the fitted model.

The path is the pipeline's own: clean (the split, then bounds from the training dates) ->
features -> train on the split's training rows. Prices dated from ``test_start`` on are then
rewritten at will (spikes, crashes, any positive number), and the model must come out
bit-identical.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.clean.core import clean_for_training
from components.evaluate.core import evaluate_window
from components.features.core import build_features
from components.ingest.generator import generate_prices
from components.train.core import TrainInfo, train_model
from pricecast.columns import ACTUAL_RETURN, TARGET

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _with_training_spikes(prices: pd.DataFrame) -> pd.DataFrame:
    """Bad ticks in the training period: returns the bounds clip, so bounds that moved would show."""
    spiked = prices.copy()
    rows = np.arange(30, len(spiked), 37)  # every ticker, early and late, never the same day twice
    spiked.loc[spiked.index[rows], "price"] *= np.where(np.arange(len(rows)) % 2, 1.25, 0.8)
    return spiked


PRICES = _with_training_spikes(generate_prices(tickers=3, days=260, start_date="2021-01-04", seed=5, drift=0.05,
                                               volatility=0.3, ar_coef=0.2))


def _train(validated: pd.DataFrame) -> tuple[TrainInfo, dict]:
    clean, report, split = clean_for_training(validated, test_fraction=0.25, n_windows=2)
    _, info = train_model(build_features(clean), split, now=NOW)
    return info, report.bounds_document()


BASELINE, BASELINE_BOUNDS = _train(PRICES)
TEST_START = pd.Timestamp(BASELINE.split["test_start"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(factors=st.lists(st.floats(0.2, 5.0), min_size=1, max_size=40), seed=st.integers(0, 2**32 - 1))
def test_any_change_confined_to_the_test_windows_leaves_the_model_bit_identical(factors: list[float], seed: int) -> None:
    changed = PRICES.copy()
    in_test = np.flatnonzero((changed["date"] >= TEST_START).to_numpy())
    rows = np.random.default_rng(seed).choice(in_test, size=min(len(factors), len(in_test)), replace=False)
    changed.loc[changed.index[rows], "price"] *= np.asarray(factors[:len(rows)])

    info, bounds = _train(changed)
    assert bounds == BASELINE_BOUNDS
    assert info.coefficients == BASELINE.coefficients  # exact float equality: bit-identical
    assert info.data_hash == BASELINE.data_hash and info.rows == BASELINE.rows


def test_the_bounds_come_from_the_training_dates_and_say_so() -> None:
    assert BASELINE_BOUNDS["fit_before"] == BASELINE.split["test_start"]
    assert BASELINE.training_window["end"] < BASELINE.split["test_start"]


def test_a_clipped_spike_in_a_test_window_is_scored_unclipped() -> None:
    """The feature rows clip the spike (as the server would); the score uses the real next price."""
    spiked = PRICES.copy()
    row = int(np.flatnonzero(((spiked["date"] > TEST_START) & (spiked["ticker"] == spiked["ticker"].iloc[0]))
                            .to_numpy())[5])
    spiked.loc[spiked.index[row], "price"] *= 1.5
    clean, _, split = clean_for_training(spiked, test_fraction=0.25, n_windows=2)
    features = build_features(clean)
    model, _ = train_model(features, split, now=NOW)
    before_spike = features[(features["ticker"] == spiked["ticker"].iloc[row])
                            & (features["date"] < spiked["date"].iloc[row])].iloc[-1]
    real_return = np.log(1.5 * PRICES["price"].iloc[row] / PRICES["price"].iloc[row - 1])
    assert before_spike[ACTUAL_RETURN] == pytest.approx(real_return, rel=1e-12)
    assert before_spike[TARGET] < real_return / 2  # the fit sees it clipped

    window = next(i for i, w in enumerate(split.windows) if w.start <= before_spike["date"] <= w.end)
    result = evaluate_window(features, split, window, model)
    rows = features[(features["date"] >= split.windows[window].start) & (features["date"] <= split.windows[window].end)
                    & features[TARGET].notna()]
    next_price = rows["price"] * np.exp(rows[ACTUAL_RETURN])
    expected_naive_mae = float(np.mean(np.abs(next_price - rows["price"])))
    assert result.naive.mae == pytest.approx(expected_naive_mae, rel=1e-12)
