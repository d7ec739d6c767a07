"""Drift: PSI, KS, the report on returns-based features, and the live monitor with its gauge."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pricecast.columns import DRIFT_FEATURES
from pricecast.errors import ConfigError
from pricecast.monitoring.drift import (
    DriftThresholds,
    LiveDriftMonitor,
    drift_gauge,
    drift_report,
    drift_report_from_sketches,
    gauge_sink,
    kolmogorov_sf,
    ks_test,
    profile_from_sketch,
    psi,
    psi_from_sketch,
    reference_profile,
)
from pricecast.sketch import RELATIVE_ACCURACY, Sketch
from tests.monitoring.support import features_frame

RNG = np.random.default_rng(7)
REFERENCE = pd.DataFrame({"a": RNG.normal(0, 1, 20_000), "b": RNG.normal(0, 0.01, 20_000)})


def test_psi_of_identical_distributions_is_near_zero_and_of_shifted_ones_above_alert() -> None:
    profile = reference_profile(REFERENCE, ["a"])["features"]["a"]
    same = RNG.normal(0, 1, 5_000)
    shifted = RNG.normal(0.8, 1, 5_000)
    assert psi(profile, REFERENCE["a"]) == 0.0  # the reference against itself: the same exact counts
    assert psi(profile, same) < 0.01
    assert psi(profile, shifted) > DriftThresholds().psi_alert


def test_psi_stays_finite_when_every_value_falls_outside_the_reference() -> None:
    profile = reference_profile(REFERENCE, ["a"])["features"]["a"]
    value = psi(profile, np.full(100, 50.0))  # one bin full, nine empty
    assert math.isfinite(value) and value > 5
    assert math.isnan(psi(profile, [np.nan, np.inf]))


def test_profile_is_small_json_with_ten_reference_bins() -> None:
    profile = reference_profile(REFERENCE, ["a", "b"])
    text = json.dumps(profile)
    assert len(text) < 2_000
    feature = json.loads(text)["features"]["b"]
    assert len(feature["edges"]) == 9 and len(feature["proportions"]) == 10
    assert sum(feature["proportions"]) == pytest.approx(1.0)
    assert feature["n"] == 20_000 and feature["std"] == pytest.approx(0.01, rel=0.05)


def test_repeated_quantiles_collapse_into_one_edge_without_error() -> None:
    # Bins are (-inf, e1), [e1, e2), ..., [e_last, inf): a constant reference fills [c, inf).
    profile = reference_profile(pd.DataFrame({"c": np.zeros(100)}), ["c"])["features"]["c"]
    assert profile["edges"] == [0.0] and profile["proportions"] == [0.0, 1.0]
    assert psi(profile, np.zeros(10)) < 1e-9
    assert psi(profile, -np.ones(10)) > 1


def test_ks_detects_a_variance_change_with_the_same_mean() -> None:
    wider = RNG.normal(0, 0.02, 2_000)
    stat, p_value = ks_test(REFERENCE["b"], wider)
    assert p_value < 0.01 and stat > 0.1
    _, p_same = ks_test(REFERENCE["b"], RNG.normal(0, 0.01, 2_000))
    assert p_same > 0.01


def test_report_flags_the_drifted_feature_only_and_scores_the_worst() -> None:
    current = pd.DataFrame({"a": RNG.normal(0, 1, 3_000), "b": RNG.normal(0, 0.03, 3_000)})
    report = drift_report(REFERENCE, current, ["a", "b"])
    by_name = {f.feature: f for f in report.features}
    assert by_name["b"].level == "alert" and by_name["b"].ks_breach
    assert by_name["a"].level == "ok"
    assert report.score == by_name["b"].psi and report.worst.feature == "b" and report.level == "alert"
    document = json.loads(json.dumps(report.to_dict()))
    assert document["worst_feature"] == "b" and document["thresholds"]["psi_alert"] == 0.25
    assert "| b |" in report.to_markdown()


def test_drift_on_returns_ignores_a_price_level_shift() -> None:
    """Prices ten times higher with the same return dynamics: no returns-based feature drifts,
    while a PSI on the price itself would scream."""
    reference = features_frame(400, n_tickers=20, level=100.0, seed=1)
    current = features_frame(250, n_tickers=20, level=1_000.0, seed=2, start="2021-07-01")
    report = drift_report(reference, current, DRIFT_FEATURES)
    assert report.level == "ok", report.to_markdown()
    assert "price" not in DRIFT_FEATURES and not any(c.startswith(("dow_", "month_")) for c in DRIFT_FEATURES)
    price_psi = psi(reference_profile(reference, ["price"])["features"]["price"], current["price"])
    assert price_psi > 1.0


def test_drift_on_returns_sees_a_volatility_regime_change() -> None:
    reference = features_frame(400, vol=0.01, seed=1)
    current = features_frame(250, vol=0.03, seed=2)
    report = drift_report(reference, current, DRIFT_FEATURES)
    assert report.level == "alert"
    assert {f.feature for f in report.breached("alert")} >= {"ret_vol_5", "ret_vol_20"}


def test_thresholds_must_be_ordered_and_columns_present() -> None:
    with pytest.raises(ValueError, match="psi_warn"):
        DriftThresholds(psi_warn=0.3, psi_alert=0.2)
    with pytest.raises(ConfigError, match="lacks feature columns: zz"):
        drift_report(REFERENCE, REFERENCE, ["a", "zz"])
    with pytest.raises(ConfigError, match="no rows"):
        drift_report(REFERENCE, REFERENCE.iloc[:0], ["a"])


# --------------------------------------------------------------------------- live
def test_live_monitor_flags_a_shifted_stream_and_publishes_the_gauge() -> None:
    profile = json.loads(json.dumps(reference_profile(REFERENCE, ["a", "b"])))  # as read from metadata.json
    registry = CollectorRegistry()
    gauge = drift_gauge(registry)
    monitor = LiveDriftMonitor(profile, ["x", "b", "a"], window=500, every=50,
                               sink=gauge_sink(gauge, "v1", "canary"))
    calm = np.column_stack([np.zeros(600), RNG.normal(0, 0.01, 600), RNG.normal(0, 1, 600)])
    for row in calm:
        monitor.observe(row[None, :])  # one row per request, as the server sends them
    assert max(monitor.scores.values()) < 0.1

    shifted = np.column_stack([np.zeros(600), RNG.normal(0.02, 0.01, 600), RNG.normal(0, 1, 600)])
    monitor.observe(shifted[:300])
    monitor.observe(shifted[300:])  # a batch that wraps the ring
    assert monitor.scores["b"] > 0.25 and monitor.scores["a"] < 0.1
    exposition = generate_latest(registry).decode()
    line = next(x for x in exposition.splitlines() if x.startswith("pricecast_drift_score{") and 'feature="b"' in x)
    assert 'model_version="v1"' in line and 'track="canary"' in line
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(monitor.scores["b"])


def test_live_monitor_scores_exactly_the_last_window_of_rows() -> None:
    profile = reference_profile(REFERENCE, ["a"])
    monitor = LiveDriftMonitor(profile, ["a"], window=128, every=1_000_000)
    stream = RNG.normal(0.3, 1, (1_000, 1))
    for start in range(0, 1_000, 37):  # odd batch sizes, many wrap-arounds
        monitor.observe(stream[start:start + 37])
    assert monitor.compute()["a"] == pytest.approx(psi(profile["features"]["a"], stream[-128:, 0]))


def test_live_monitor_waits_for_enough_rows_before_scoring() -> None:
    seen: list[dict] = []
    monitor = LiveDriftMonitor(reference_profile(REFERENCE, ["a"]), ["a"], window=100, every=10,
                               sink=seen.append)
    monitor.observe(np.zeros((49, 1)))
    assert seen == []  # below min_rows (window // 2)
    monitor.observe(np.zeros((1, 1)))
    assert len(seen) == 1 and seen[0]["a"] > 1


def test_live_monitor_refuses_a_profile_without_the_models_features() -> None:
    with pytest.raises(ConfigError, match="shares no feature"):
        LiveDriftMonitor(reference_profile(REFERENCE, ["a"]), ["zz"])


def test_live_monitor_never_fails_the_request_when_publishing_fails(caplog: pytest.LogCaptureFixture) -> None:
    def broken(scores: dict) -> None:
        raise RuntimeError("gauge gone")

    monitor = LiveDriftMonitor(reference_profile(REFERENCE, ["a"]), ["a"], window=10, every=1, sink=broken)
    monitor.observe(np.zeros((10, 1)))  # must not raise
    assert monitor.scores["a"] > 1 and "Publishing live drift scores failed" in caplog.text


def test_the_server_reads_the_profile_stored_with_the_model(tmp_path) -> None:
    from pricecast.monitoring.drift import PROFILE_KEY, read_reference_profile
    from pricecast.registry import RegistryStore

    store = RegistryStore(f"file://{tmp_path / 'store'}")
    profile = reference_profile(REFERENCE, ["a", "b"])
    store.put_model("v1", b"model bytes", {"version": "v1", PROFILE_KEY: profile})
    store.put_model("v0", b"older bytes", {"version": "v0"})  # trained before profiles existed
    assert read_reference_profile(store.store_url, "v1") == json.loads(json.dumps(profile))
    assert read_reference_profile(store.store_url, "v0") is None
    assert read_reference_profile(store.store_url, "missing") is None


def test_ks_on_large_windows_is_close_to_the_exact_test_with_the_p_value_of_100k_rows() -> None:
    from scipy import stats

    reference = RNG.normal(0, 1, 300_000)
    current = RNG.normal(0.02, 1, 250_000)
    exact = stats.ks_2samp(reference, current)
    statistic, p_value = ks_test(reference, current)
    assert statistic <= exact.statistic and exact.statistic - statistic < 0.002  # one 0.39 % bin at most
    # The p-value of 100 000 rows per side: at millions of rows any shift at all has p ~ 0.
    assert p_value == pytest.approx(stats.kstwobign.sf(statistic * np.sqrt(100_000 / 2)), rel=1e-12)
    uncapped = ks_test(reference, current, max_samples=10**9)
    assert uncapped[0] == statistic
    assert uncapped[1] == pytest.approx(stats.kstwobign.sf(statistic * np.sqrt(300_000 * 250_000 / 550_000)), rel=1e-12)


def test_report_uses_the_profile_stored_with_the_model_when_it_covers_the_columns() -> None:
    current = pd.DataFrame({"a": RNG.normal(0, 1, 3_000), "b": RNG.normal(0, 0.01, 3_000)})
    # A profile whose "a" bins came from a distribution shifted by +1: PSI must use those bins.
    stored = reference_profile(pd.DataFrame({"a": REFERENCE["a"] + 1, "b": REFERENCE["b"]}), ["a", "b"])
    with_stored = {f.feature: f for f in drift_report(REFERENCE, current, ["a", "b"], profile=stored).features}
    computed = {f.feature: f for f in drift_report(REFERENCE, current, ["a", "b"]).features}
    assert with_stored["a"].psi > DriftThresholds().psi_alert > computed["a"].psi
    assert with_stored["a"].ks_statistic == computed["a"].ks_statistic  # KS always uses the rows
    # A profile missing a column, or with other bins, is recomputed from the reference rows.
    partial = {**stored, "features": {"a": stored["features"]["a"]}}
    assert drift_report(REFERENCE, current, ["a", "b"], profile=partial).features[0].psi == computed["a"].psi
    other_bins = {**stored, "bins": 20}
    assert drift_report(REFERENCE, current, ["a", "b"], profile=other_bins).features[0].psi == computed["a"].psi


# --------------------------------------------------------------------------- sketches and shards
def _shards(frame: pd.DataFrame, parts: int, rng: np.random.Generator) -> list[pd.DataFrame]:
    """Uneven random row subsets (like tickers hashed to shards), one possibly empty."""
    labels = rng.integers(0, parts, len(frame))
    labels[labels == parts - 1] = rng.integers(0, parts, int((labels == parts - 1).sum()))
    return [frame[labels == i] for i in range(parts)]


def _merged(shards: list[pd.DataFrame], columns: list[str]) -> dict[str, Sketch]:
    return {c: Sketch.merge([Sketch.of(shard[c].to_numpy()) for shard in shards]) for c in columns}


@pytest.mark.parametrize("parts", [2, 5, 16])
def test_merged_shard_sketches_give_the_unsharded_report_and_profile(parts: int) -> None:
    rng = np.random.default_rng(parts)
    reference = features_frame(300, n_tickers=12, vol=0.01, seed=parts)
    current = features_frame(120, n_tickers=12, vol=0.015, seed=parts + 100, start="2021-03-01")
    columns = list(DRIFT_FEATURES)
    whole = drift_report(reference, current, columns)
    sharded = drift_report_from_sketches(_merged(_shards(reference, parts, rng), columns),
                                         _merged(_shards(current, parts, rng), columns))
    for one, many in zip(whole.features, sharded.features, strict=True):
        # Counts are exact whatever the sharding, so PSI and KS are the very same floats.
        assert (one.feature, one.psi, one.ks_statistic, one.ks_p_value, one.level, one.ks_breach,
                one.n_reference, one.n_current) == (many.feature, many.psi, many.ks_statistic, many.ks_p_value,
                                                    many.level, many.ks_breach, many.n_reference, many.n_current)
        for stat in ("reference_mean", "current_mean", "reference_std", "current_std"):
            assert getattr(many, stat) == pytest.approx(getattr(one, stat), rel=1e-12, abs=1e-15), stat
    assert whole.level == "alert" and whole.score == sharded.score

    profile = reference_profile(reference, columns)
    merged = _merged(_shards(reference, parts, rng), columns)
    for column in columns:
        one, many = profile["features"][column], profile_from_sketch(merged[column])
        assert (one["edges"], one["proportions"], one["n"]) == (many["edges"], many["proportions"], many["n"])
        assert many["mean"] == pytest.approx(one["mean"], rel=1e-12, abs=1e-15)
        assert many["std"] == pytest.approx(one["std"], rel=1e-12)


def test_profile_edges_are_sketch_boundaries_within_the_relative_accuracy_of_the_deciles() -> None:
    values = np.concatenate([RNG.normal(0.001, 0.02, 100_000), -RNG.lognormal(-4, 1, 30_000)])
    feature = profile_from_sketch(Sketch.of(values))
    # The decile as a data value (rank floor(q (n - 1))); the interpolated one can lie further
    # off than one bin near zero, where neighbouring values are further apart than a bin is wide.
    deciles = np.quantile(values, np.arange(1, 10) / 10, method="lower")
    edges = np.asarray(feature["edges"])
    assert edges.size == 9
    assert np.all(np.abs(edges - deciles) <= RELATIVE_ACCURACY * np.abs(deciles))
    interpolated = np.quantile(values, np.arange(1, 10) / 10)
    assert np.all(np.abs(edges - interpolated) <= RELATIVE_ACCURACY * np.abs(interpolated).max())
    # Proportions are the exact shares on either side of each edge: the live monitor, counting
    # the raw values against the stored edges, sees exactly the reference.
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=10)
    assert feature["proportions"] == (counts / values.size).tolist()
    assert psi_from_sketch(feature, Sketch.of(values)) == psi(feature, values) == 0.0
    shifted = values * 1.5 + 0.01
    assert psi_from_sketch(feature, Sketch.of(shifted)) == psi(feature, shifted) > 0.1


def test_an_empty_current_feature_has_nan_drift_and_other_features_still_count() -> None:
    reference = {"a": Sketch.of(REFERENCE["a"]), "b": Sketch.of(REFERENCE["b"])}
    current = {"a": Sketch.of(RNG.normal(2, 1, 1_000)), "b": Sketch.of([np.nan])}
    report = drift_report_from_sketches(reference, current)
    by_name = {f.feature: f for f in report.features}
    assert math.isnan(by_name["b"].psi) and math.isnan(by_name["b"].ks_p_value) and not by_name["b"].ks_breach
    assert by_name["a"].level == "alert" and report.worst.feature == "a"
    with pytest.raises(ConfigError, match="current data lacks feature columns: b"):
        drift_report_from_sketches(reference, {"a": current["a"]})
    with pytest.raises(ConfigError, match="at least 2 finite values"):
        drift_report_from_sketches({"a": Sketch.of([1.0])}, {"a": current["a"]})


@pytest.mark.parametrize("x", [*np.linspace(0.0, 3.0, 61), 0.001, 0.04, 0.999999, 1.0, 1.000001, 4.0, 8.0, 19.0, 27.0])
def test_the_kolmogorov_p_value_is_scipys(x: float) -> None:
    # The drift task computes it without importing SciPy; SciPy is the reference here.
    from scipy.special import kolmogorov

    expected = float(kolmogorov(x))
    assert kolmogorov_sf(float(x)) == pytest.approx(expected, rel=1e-13, abs=1e-300)


def test_the_kolmogorov_p_value_of_no_statistic_is_nan_and_of_a_negative_one_is_one() -> None:
    assert math.isnan(kolmogorov_sf(math.nan)) and kolmogorov_sf(-0.5) == 1.0
