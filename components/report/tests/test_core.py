"""Unit and behaviour tests of aggregation, the promotion gate and the rendered report."""

from __future__ import annotations

import base64
import copy
import re

import numpy as np
import pandas as pd
import pytest

from components.evaluate.core import evaluate_window
from components.features.core import build_features
from components.features.tests.support import clean_frame
from components.report.core import accuracy_alerts, accuracy_limits, aggregate, decide, gate, reference_for
from components.report.render import render_report
from components.report.summary import Summary
from components.train.core import time_split, train_model
from pricecast.columns import ACTUAL_RETURN, FEATURE_COLUMNS
from pricecast.time_split import iso_day
from pricecast.errors import ConfigError, RegistryError
from pricecast.forecast_metrics import ForecastMetrics
from pricecast.monitoring import checks
from pricecast.monitoring.thresholds import Thresholds


def metrics(name: str, mape: float, da: float | None = 0.55, n: int = 100) -> ForecastMetrics:
    return ForecastMetrics(name=name, n=n, mae=mape * 2, rmse=mape * 3, mape=mape,
                           directional_accuracy=da, n_direction=n)


# --------------------------------------------------------------------------- gate
def test_gate_rejects_a_candidate_20_percent_worse_than_the_active_model() -> None:
    result = gate(metrics("candidate", 1.2), metrics("active", 1.0), max_degradation=0.10)
    assert not result.passed and result.verdict == "reject" and result.reference_kind == "active"
    assert "1.200%" in result.reason and "1.000%" in result.reason and "1.100%" in result.reason


def test_gate_passes_a_candidate_5_percent_worse_than_the_active_model() -> None:
    result = gate(metrics("candidate", 1.05), metrics("active", 1.0), max_degradation=0.10)
    assert result.passed and result.verdict == "promote" and result.threshold == pytest.approx(1.1)


def test_first_run_compares_with_the_naive_forecast() -> None:
    summary = Summary(metrics("candidate", 0.9), metrics("naive", 1.0, da=None), None, None, ())
    result = gate(summary.candidate, reference_for(summary))
    assert result.passed and result.reference_kind == "naive" and "naive" in result.reason


@pytest.mark.parametrize(("metric", "cand", "ref", "passed"), [
    ("mae", 2.3, 2.0, False), ("rmse", 3.2, 3.0, True), ("mape", 1.1, 1.0, True),
    ("directional_accuracy", 0.52, 0.56, True), ("directional_accuracy", 0.48, 0.56, False),
])
def test_gate_direction_per_metric(metric: str, cand: float, ref: float, passed: bool) -> None:
    c = metrics("candidate", 1.0, da=cand) if metric == "directional_accuracy" else metrics("candidate", cand)
    r = metrics("active", 1.0, da=ref) if metric == "directional_accuracy" else metrics("active", ref)
    if metric in ("mae", "rmse"):  # metrics() derives mae/rmse from mape; set them directly
        c = ForecastMetrics(**{**c.to_dict(), metric: cand})
        r = ForecastMetrics(**{**r.to_dict(), metric: ref})
    assert gate(c, r, 0.10, metric).passed is passed


def test_directional_accuracy_on_a_first_run_is_compared_with_a_coin_flip() -> None:
    result = gate(metrics("candidate", 1.0, da=0.47), metrics("naive", 1.0, da=None), 0.10, "directional_accuracy")
    assert result.passed and result.reference_value == 0.5 and "coin flip" in result.reason
    assert not gate(metrics("candidate", 1.0, da=0.40), metrics("naive", 1.0, da=None), 0.10,
                    "directional_accuracy").passed


def test_gate_refuses_unknown_metric_and_negative_tolerance() -> None:
    with pytest.raises(ConfigError, match="Unknown gate metric"):
        gate(metrics("candidate", 1.0), metrics("naive", 1.0), metric="r2")
    with pytest.raises(ConfigError, match="max_degradation"):
        gate(metrics("candidate", 1.0), metrics("naive", 1.0), max_degradation=-0.1)


def test_a_nan_metric_never_passes() -> None:
    assert not gate(metrics("candidate", float("nan")), metrics("naive", 1.0)).passed


# --------------------------------------------------------------------------- with real models
@pytest.fixture(scope="module")
def evaluated():
    features = build_features(clean_frame(n_tickers=6, n_days=300, seed=4, ar=0.4))
    split = time_split(features)
    good, info = train_model(features, split)
    degraded = copy.deepcopy(good)
    degraded.named_steps["ridge"].coef_ = -4 * degraded.named_steps["ridge"].coef_  # predicts the wrong way
    return features, split, good, degraded, info


def test_gate_refuses_a_degraded_model_against_the_active_one(evaluated) -> None:
    features, split, good, degraded, _ = evaluated
    results = [evaluate_window(features, split, i, degraded, active_model=good, active_version="v-good")
               for i in range(len(split.windows))]
    summary = aggregate(results)
    decision = gate(summary.candidate, reference_for(summary))
    assert summary.active_version == "v-good"
    assert not decision.passed and decision.reference_kind == "active"

    same_quality = aggregate([evaluate_window(features, split, i, good, active_model=good, active_version="v-good")
                              for i in range(len(split.windows))])
    assert gate(same_quality.candidate, reference_for(same_quality)).passed


class _Memorizer:
    """An incumbent that was fitted on some test rows and knows their answers: perfect in sample,
    the naive forecast (no change) elsewhere. Scored in sample, it beats any honest model."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.known = {tuple(r): t for r, t in zip(rows[FEATURE_COLUMNS].to_numpy().tolist(),
                                                  rows[ACTUAL_RETURN].to_numpy().tolist(), strict=True)}

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.array([self.known.get(tuple(r), 0.0) for r in x.to_numpy().tolist()])


def test_an_incumbent_trained_into_the_test_windows_is_scored_out_of_sample_only(evaluated) -> None:
    features, split, good, _, _ = evaluated
    trained_until = split.windows[1].end  # through window 1: windows 0 and 1 in sample, 2 half
    active = _Memorizer(features[features["date"] <= trained_until])

    results = [evaluate_window(features, split, i, good, active, "v-old", iso_day(trained_until))
               for i in range(len(split.windows))]
    assert [r.active is None for r in results] == [True, True, False]
    assert results[2].active_excluded_rows == 0 and results[2].candidate_vs_active is None
    summary = aggregate(results)
    assert summary.active_excluded_rows == results[0].n + results[1].n
    assert summary.active.n == summary.candidate_vs_active.n == results[2].n  # same rows for both
    decision = decide(summary)
    assert decision.passed and decision.reference_kind == "active"  # the honest AR model beats "no change"
    assert f"trained through {iso_day(trained_until)}" in decision.reason and "rows after it" in decision.reason

    # Scored on every row (the old behaviour), the memorizer's in-sample rows win it the gate.
    in_sample = aggregate([evaluate_window(features, split, i, good, active, "v-old")
                           for i in range(len(split.windows))])
    assert not decide(in_sample).passed


def test_an_incumbent_trained_past_every_test_date_is_not_the_reference(evaluated) -> None:
    features, split, good, _, _ = evaluated
    active = _Memorizer(features)
    summary = aggregate([evaluate_window(features, split, i, good, active, "v-old", iso_day(split.windows[-1].end))
                         for i in range(len(split.windows))])
    assert summary.active is None and summary.active_version == "v-old"
    decision = decide(summary)
    assert decision.reference_kind == "naive" and "past every test date" in decision.reason


def test_aggregate_weights_windows_by_rows(evaluated) -> None:
    features, split, good, _, _ = evaluated
    results = [evaluate_window(features, split, i, good) for i in range(len(split.windows))]
    summary = aggregate(list(reversed(results)))
    assert [w.window_index for w in summary.windows] == [0, 1, 2]
    assert summary.candidate.n == sum(r.n for r in results)
    weighted = sum(r.candidate.mape * r.n for r in results) / sum(r.n for r in results)
    assert summary.candidate.mape == pytest.approx(weighted)
    assert summary.active is None and reference_for(summary).name == "naive"
    assert Summary.from_dict(summary.to_dict()) == summary


def test_aggregate_refuses_windows_scored_against_different_active_models(evaluated) -> None:
    features, split, good, _, _ = evaluated
    a = evaluate_window(features, split, 0, good, active_model=good, active_version="v1")
    b = evaluate_window(features, split, 1, good, active_model=good, active_version="v2")
    with pytest.raises(RegistryError, match="active model changed"):
        aggregate([a, b])
    with pytest.raises(ConfigError):
        aggregate([])


# --------------------------------------------------------------------------- report
def test_report_puts_the_verdict_first_and_embeds_its_plots(evaluated) -> None:
    features, split, good, degraded, info = evaluated
    results = [evaluate_window(features, split, i, degraded, active_model=good, active_version="v-good")
               for i in range(len(split.windows))]
    summary = aggregate(results)
    decision = gate(summary.candidate, reference_for(summary))
    md, html, plots = render_report(summary, decision, info.to_dict())

    assert md.index("Verdict: REJECT") < md.index("| window |") < md.index("## Model")
    assert decision.reason in md and info.version in md and info.data_hash in md
    # 3 windows + overall, each with candidate, naive and active rows
    assert len(re.findall(r"^\| (0|1|2|all) \|", md, flags=re.M)) == 4 * 3
    assert "active (v-good)" in md
    for name, png in plots.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and f"]({name})" in md
        assert base64.b64encode(png).decode() in html
    assert html.startswith("<!doctype html>") and 'class="reject"' in html
    assert "http://" not in html and "https://" not in html  # one self-contained file


# --------------------------------------------------------------------------- accuracy alerts
def test_a_candidate_under_the_accuracy_limits_raises_high_alerts_with_what_to_do() -> None:
    limits = accuracy_limits(min_directional_accuracy=0.5, max_mape=1.0)
    alerts = accuracy_alerts(metrics("candidate", 1.5, da=0.4), limits, "v7", "promote")
    assert [(a.severity, a.name) for a in alerts] == [
        ("HIGH", checks.ACCURACY_LOW), ("HIGH", checks.FORECAST_ERROR_HIGH)]
    low, error = alerts
    assert "Candidate v7" in low.message and "40.0%" in low.message and "50.0%" in low.message
    assert (low.value, low.threshold) == (0.4, 0.5) and (error.value, error.threshold) == (1.5, 1.0)
    assert "registry rollback" in low.suggested_action and "naive baseline" in error.suggested_action
    assert low.labels == {"model_version": "v7", "verdict": "promote"}


def test_a_candidate_within_the_limits_raises_nothing_and_zero_turns_a_limit_off() -> None:
    defaults = Thresholds()
    assert accuracy_limits(defaults.min_directional_accuracy, defaults.max_mape) == defaults
    assert accuracy_alerts(metrics("candidate", 1.0, da=0.55), defaults, "v7", "promote") == []
    off = accuracy_limits(min_directional_accuracy=0, max_mape=0)
    assert (off.min_directional_accuracy, off.max_mape) == (None, None)
    assert accuracy_alerts(metrics("candidate", 99.0, da=0.0), off, "v7", "reject") == []


@pytest.mark.parametrize(("accuracy", "mape"), [(1.5, 5.0), (0.45, -1.0)])
def test_an_impossible_accuracy_limit_is_a_config_error(accuracy: float, mape: float) -> None:
    with pytest.raises(ConfigError, match="of the report stage") as raised:
        accuracy_limits(accuracy, mape)
    assert "Valid keys" in raised.value.fix


def test_the_report_lists_the_alerts_right_after_the_verdict(evaluated) -> None:
    features, split, good, _, info = evaluated
    summary = aggregate([evaluate_window(features, split, i, good) for i in range(len(split.windows))])
    decision = gate(summary.candidate, reference_for(summary))
    strict = accuracy_limits(min_directional_accuracy=0.99, max_mape=5.0)
    alerts = accuracy_alerts(summary.candidate, strict, info.version, decision.verdict)
    md, html, _ = render_report(summary, decision, info.to_dict(), alerts, strict)

    assert md.index("Verdict: PROMOTE") < md.index("## Alerts") < md.index("## Metrics on the test windows")
    assert "directional accuracy at least 99.0% and MAPE at most 5.000%; 1 alert(s) raised" in md
    [alert] = alerts
    assert f"- HIGH PricecastDirectionalAccuracyLow: {alert.message} What to do: {alert.suggested_action}" in md
    assert "<h2>Alerts</h2>" in html and 'class="alert"' in html

    calm, _, _ = render_report(summary, decision, info.to_dict(), [], Thresholds())
    assert "## Alerts" in calm and "the candidate is within them, no alert" in calm
    assert "## Alerts" not in render_report(summary, decision, info.to_dict())[0]


def test_the_report_names_the_frequency_and_the_horizon_it_forecasts(evaluated) -> None:
    features, split, good, _, info = evaluated
    summary = aggregate([evaluate_window(features, split, i, good) for i in range(len(split.windows))])
    decision = gate(summary.candidate, reference_for(summary))
    daily, _, _ = render_report(summary, decision, info.to_dict())
    assert "- **frequency**: business (one price a business day)" in daily
    assert "Price forecasts for the next trading day;" in daily

    monthly, page, _ = render_report(summary, decision, {**info.to_dict(), "frequency": "monthly"})
    assert "- **frequency**: monthly (one price a month)" in monthly
    assert "Price forecasts for the next month;" in monthly and "on the next month's log return" in monthly
    assert "<p>Price forecasts for the next month;" in page


# --------------------------------------------------------------------------- what a newcomer hit (issue 13, item 12)
DRIFT = {"score": 0.1234, "level": "warn", "thresholds": {"psi_warn": 0.1, "psi_alert": 0.25, "ks_p_value": 0.01},
         "features": [{"feature": "ret_mean_20", "psi": 0.01, "level": "ok", "ks_statistic": 0.02,
                       "ks_p_value": 0.5, "ks_breach": False},
                      {"feature": "ret_vol_20", "psi": 0.1234, "level": "warn", "ks_statistic": 0.2,
                       "ks_p_value": 2.5e-06, "ks_breach": True}],
         "alerts": [{"severity": "LOW", "name": "PricecastFeatureDrift", "message": "PSI 0.1234 on ret_vol_20.",
                     "suggested_action": "Watch the next runs."}]}


def test_the_report_has_a_drift_section_with_the_runs_drift_alert(evaluated) -> None:
    features, split, good, _, info = evaluated
    summary = aggregate([evaluate_window(features, split, i, good) for i in range(len(split.windows))])
    decision = gate(summary.candidate, reference_for(summary))
    md, html, _ = render_report(summary, decision, info.to_dict(), drift=DRIFT)
    assert md.index("## Metrics on the test windows") < md.index("## Drift") < md.index("## Model")
    assert "score (largest PSI) 0.1234, level WARN" in md
    assert "| ret_vol_20 | 0.1234 | warn (KS) | 0.2000 | 2.500e-06 |" in md  # worst first
    assert md.index("| ret_vol_20 |") < md.index("| ret_mean_20 |")
    assert "- LOW PricecastFeatureDrift: PSI 0.1234 on ret_vol_20. What to do: Watch the next runs." in md
    assert "<h2>Drift</h2>" in html and "PricecastFeatureDrift" in html


def test_the_report_plots_the_chosen_tickers_and_explains_the_lines(evaluated) -> None:
    features, split, good, _, info = evaluated
    chosen = ["T005", "T002"]
    summary = aggregate([evaluate_window(features, split, i, good, plot_tickers=chosen)
                         for i in range(len(split.windows))])
    decision = gate(summary.candidate, reference_for(summary))
    md, _, plots = render_report(summary, decision, info.to_dict())
    assert "![Forecast vs actual for T005, T002](forecast_vs_actual.png)" in md
    assert "Dashed red lines separate the test windows" in md and "report_tickers" in md
    assert "naive forecast (orange, wide)" in md
    # One panel pair per ticker: the figure grows with the tickers.
    one = render_report(aggregate([evaluate_window(features, split, i, good, plot_tickers=["T005"])
                                   for i in range(len(split.windows))]), decision, info.to_dict())[2]
    assert _png_height(plots["forecast_vs_actual.png"]) > 1.8 * _png_height(one["forecast_vs_actual.png"])


def _png_height(png: bytes) -> int:
    return int.from_bytes(png[20:24], "big")  # IHDR: width at 16..20, height at 20..24


def test_every_number_of_a_metric_has_the_same_decimals(evaluated) -> None:
    features, split, good, degraded, info = evaluated
    summary = aggregate([evaluate_window(features, split, i, degraded, active_model=good, active_version="v-good")
                         for i in range(len(split.windows))])
    decision = gate(summary.candidate, reference_for(summary))
    md, _, _ = render_report(summary, decision, info.to_dict(), [], Thresholds())
    rows = [line.split(" | ") for line in md.splitlines() if re.match(r"^\| (0|1|2|all) \|", line)]
    assert rows
    for row in rows:
        mae, rmse, mape, direction = row[4], row[5], row[6], row[7].rstrip(" |")
        assert re.fullmatch(r"\d+\.\d{3}", mae) and re.fullmatch(r"\d+\.\d{3}", rmse), row
        assert re.fullmatch(r"\d+\.\d{3}%", mape), row
        assert direction == "n/a" or re.fullmatch(r"\d+\.\d%", direction), row
    # The limits sentence writes MAPE like the table does.
    assert re.search(r"MAPE at most \d+\.\d{3}%", md)
