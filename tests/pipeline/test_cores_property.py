"""Property: any price frame the schema allows ends in a verdict or a named error (issue 13).

Hypothesis generates frames within the schema's ranges (prices 1e-300 to 1e300, every supported
frequency, constant series, one short ticker among long ones, spikes, tickers sharing dates or
not) and runs the pure cores end to end: validate -> clean (and the split) -> features -> train ->
evaluate -> aggregate -> gate -> report. A :class:`PricecastError` (named, with a fix) is an
accepted end; any other exception fails the test, and so does a verdict whose metrics, model
metadata or report cells hold NaN or Infinity.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from components.clean.core import clean_for_training
from components.evaluate.core import evaluate_window
from components.features.core import build_features
from components.report.core import aggregate, gate, reference_for
from components.report.render import render_report
from components.train.core import train_model
from components.validate.core import validate_frame
from pricecast.errors import PricecastError
from pricecast.frequency import Frequency
from tests.support.prices import ALIASES

N_WINDOWS = 2
TEST_FRACTION = 0.2
NON_FINITE = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


@st.composite
def price_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Raw prices as ingest hands them over: ISO date strings, tickers, float prices."""
    frequency = draw(st.sampled_from(list(Frequency)))
    exponent = draw(st.sampled_from([-300.0, -150.0, 0.0, 2.0, 150.0, 299.5]) | st.floats(-300.0, 299.5))
    long_tickers = draw(st.integers(1, 3))
    length = draw(st.integers(30, 64) | st.integers(2, 29))  # mostly long enough, sometimes not
    short = draw(st.none() | st.integers(1, 8))  # one short ticker among the long ones
    shared_dates = draw(st.booleans())
    volatility = draw(st.sampled_from([0.0, 0.005, 0.03]))
    constant = draw(st.lists(st.booleans(), min_size=long_tickers + 1, max_size=long_tickers + 1))
    spikes = draw(st.lists(st.tuples(st.integers(0, 63), st.sampled_from([0.2, 3.0, 50.0])), max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    lengths = [length] * long_tickers + ([short] if short is not None else [])
    frames = []
    for k, n in enumerate(lengths):
        start = pd.Timestamp("2001-01-01") + (0 if shared_dates else k) * pd.tseries.frequencies.to_offset(
            ALIASES[frequency])
        dates = pd.date_range(start, periods=n, freq=ALIASES[frequency])
        path = np.ones(n) if constant[k] else np.exp(np.cumsum(rng.normal(0.0, volatility, size=n)))
        price = 10.0**exponent * path
        for at, jump in spikes:
            if at < n:
                price[at] *= jump
        frames.append(pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "ticker": f"T{k}", "price": price}))
    return pd.concat(frames, ignore_index=True)


def run_cores(raw: pd.DataFrame) -> dict:
    """The pipeline's pure cores in order, as the components chain them."""
    validated, diff = validate_frame(raw, min_rows=1, test_fraction=TEST_FRACTION, n_windows=N_WINDOWS)
    frequency = diff["frequency"]
    clean, _, split = clean_for_training(validated, test_fraction=TEST_FRACTION, n_windows=N_WINDOWS,
                                         frequency=frequency)
    features = build_features(clean, frequency)
    model, info = train_model(features, split, frequency=frequency)
    results = [evaluate_window(features, split, i, model, feature_names=info.features) for i in range(N_WINDOWS)]
    summary = aggregate(results)
    decision = gate(summary.candidate, reference_for(summary))
    markdown, _, _ = render_report(summary, decision, info.to_dict())
    return {"frequency": frequency, "info": info.to_dict(), "summary": summary.to_dict(),
            "gate": decision.to_dict(), "markdown": markdown}


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=price_frames())
def test_any_frame_within_the_schema_ends_in_a_verdict_or_a_named_error(raw: pd.DataFrame) -> None:
    try:
        outcome = run_cores(raw)
    except PricecastError as exc:
        assert exc.problem and exc.fix, f"{type(exc).__name__} without a problem and a fix: {exc}"
        checks = [c["check"] for c in getattr(exc, "diff", {}).get("checks", [])]
        event(f"{type(exc).__name__}: {', '.join(checks) or exc.problem[:60]}")  # --hypothesis-show-statistics
        return
    event(f"verdict at {outcome['frequency']} frequency")
    assert outcome["gate"]["verdict"] in ("promote", "reject")
    # allow_nan=False raises on NaN and Infinity, as KFP's protobuf metadata does.
    json.dumps([outcome["info"], outcome["summary"], outcome["gate"]], allow_nan=False)
    assert not NON_FINITE.search(outcome["markdown"]), outcome["markdown"]
    assert outcome["info"]["frequency"] == outcome["frequency"]
