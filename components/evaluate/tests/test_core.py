"""Unit tests of the forecast metrics, the per-window evaluation and its pooling over shards."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.evaluate import core as evaluate_core
from components.evaluate.core import SAMPLE_ROWS, evaluate_shards, evaluate_window, parse_plot_tickers
from components.features.core import build_features
from components.features.tests.support import clean_frame
from components.train.core import time_split, train_model, window_mask
from pricecast import frames, modelio
from pricecast.columns import FEATURE_COLUMNS
from pricecast.time_split import iso_day
from pricecast.errors import ConfigError
from pricecast.forecast_metrics import METRICS, WindowResult, forecast_metrics, pool

PRICE = np.array([100.0, 200.0])
ACTUAL = np.log([1.10, 0.90])  # next prices 110 and 180
PREDICTED = np.log([1.05, 0.95])  # forecasts 105 and 190


def test_metrics_by_hand() -> None:
    m = forecast_metrics("candidate", PRICE, ACTUAL, PREDICTED)
    assert m.mae == pytest.approx(7.5)
    assert m.rmse == pytest.approx(math.sqrt((25 + 100) / 2))
    assert m.mape == pytest.approx(100 * (5 / 110 + 10 / 180) / 2)
    assert m.directional_accuracy == 1.0 and m.n == 2 and m.n_direction == 2


def test_naive_forecast_is_the_last_price_and_has_no_direction() -> None:
    m = forecast_metrics("naive", PRICE, ACTUAL, None)
    assert m.mae == pytest.approx(15.0)
    assert m.mape == pytest.approx(100 * (10 / 110 + 20 / 180) / 2)
    assert m.directional_accuracy is None


def test_directional_accuracy_skips_rows_that_did_not_move() -> None:
    m = forecast_metrics("candidate", np.ones(3), np.array([0.0, 0.01, -0.02]), np.array([0.5, 0.01, 0.01]))
    assert m.n_direction == 2 and m.directional_accuracy == 0.5


def test_pooled_metrics_equal_metrics_over_all_rows() -> None:
    rng = np.random.default_rng(1)
    price, actual, pred = rng.uniform(10, 100, 90), rng.normal(0, 0.02, 90), rng.normal(0, 0.01, 90)
    parts = [forecast_metrics("c", price[s], actual[s], pred[s]) for s in (slice(0, 20), slice(20, 90))]
    whole = forecast_metrics("c", price, actual, pred)
    pooled = pool("c", parts)
    for metric in ("mae", "rmse", "mape", "directional_accuracy"):
        assert pooled.get(metric) == pytest.approx(whole.get(metric), rel=1e-12)
    assert pooled.n == whole.n and pooled.n_direction == whole.n_direction


@pytest.fixture(scope="module")
def trained():
    features = build_features(clean_frame(n_tickers=4, n_days=300, seed=2, ar=0.3))
    split = time_split(features)
    model, _ = train_model(features, split)
    return features, split, model


def test_window_scores_every_row_with_a_target(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 1, model)
    assert result.n == window_mask(features, split, 1).sum()
    assert (result.start, result.end) == (iso_day(split.windows[1].start), iso_day(split.windows[1].end))
    assert result.active is None and result.active_version is None
    assert result.naive.directional_accuracy is None and result.candidate.directional_accuracy is not None


def test_active_model_is_scored_on_the_same_rows(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 0, model, active_model=model, active_version="v1")
    assert result.active is not None and result.active_version == "v1"
    assert {**result.active.to_dict(), "name": "x"} == {**result.candidate.to_dict(), "name": "x"}


def test_plot_samples_are_the_first_tickers_by_default_and_bounded(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 2, model)
    assert list(result.samples) == ["T000", "T001", "T002"]  # DEFAULT_PLOT_TICKERS of the four
    for ticker, sample in result.samples.items():
        assert 0 < len(sample) <= SAMPLE_ROWS
        first = sample[0]
        row = features[(features["ticker"] == ticker) & (features["date"] == first["date"])].iloc[0]
        assert first["actual"] == pytest.approx(row["price"] * math.exp(row["target"]))
        assert first["naive"] == row["price"]
    assert 0 < len(result.residuals_pct) <= result.n


def test_the_run_chooses_the_plotted_tickers(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 0, model, plot_tickers=parse_plot_tickers(" T003, T001,T003"))
    assert list(result.samples) == ["T003", "T001"]
    with pytest.raises(ConfigError, match="report_tickers names NOPE, not in test window 0"):
        evaluate_window(features, split, 0, model, plot_tickers=["NOPE"])
    with pytest.raises(ConfigError, match="at most 10"):
        parse_plot_tickers(",".join(f"T{i}" for i in range(11)))


def test_window_result_round_trips_through_json(trained) -> None:
    features, split, model = trained
    result = evaluate_window(features, split, 0, model, active_model=model, active_version="v1")
    assert WindowResult.from_dict(result.to_dict()) == result


def test_window_without_rows_is_refused(trained) -> None:
    features, split, model = trained
    with pytest.raises(ConfigError, match="no row"):
        evaluate_window(features[features["date"] < split.test_start], split, 0, model)
    with pytest.raises(ConfigError, match="does not exist"):
        evaluate_window(features, split, 7, model)


# --------------------------------------------------------------------------- numeric extremes (issue 13)
@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e300])
def test_price_space_metrics_stay_finite_and_exact_at_any_price_scale(scale) -> None:
    price = np.array([100.0, 101.0, 99.0, 102.0]) * scale
    actual = np.array([0.01, -0.02, 0.03, 0.0])
    predicted = np.array([0.0, 0.01, -0.01, 0.02])
    scaled = forecast_metrics("candidate", price, actual, predicted)
    unit = forecast_metrics("candidate", price / scale, actual, predicted)
    # Squares of 1e300 errors overflowed to inf (RMSE inf, the KFP metadata crash); of 1e-300 ones, to 0.
    assert math.isfinite(scaled.rmse) and scaled.rmse > 0
    assert scaled.rmse == pytest.approx(unit.rmse * scale, rel=1e-12)
    assert scaled.mape == pytest.approx(unit.mape, rel=1e-12)
    pooled = pool("candidate", [scaled, scaled])
    assert pooled.rmse == pytest.approx(scaled.rmse, rel=1e-12)


def test_forecasts_that_overflow_are_a_named_error_not_an_infinite_metric() -> None:
    from pricecast.errors import NumericRangeError

    with pytest.raises(NumericRangeError, match="overflow float64 on 1 of 2 rows"):
        forecast_metrics("candidate", np.array([1e300, 1.0]), np.array([0.0, 0.0]), np.array([50.0, 0.0]))


# --------------------------------------------------------------------------- shards (issue 14)
def _assert_same_result(sharded: WindowResult, whole: WindowResult) -> None:
    """Equal but for rounding in the pooled metrics: counts, samples and residuals exactly."""
    a, b = sharded.to_dict(), whole.to_dict()
    for name in ("candidate", "naive", "active", "candidate_vs_active"):
        assert (a.pop(name) is None) == (b[name] is None), name
        if b.pop(name) is None:
            continue
        pooled, single = getattr(sharded, name), getattr(whole, name)
        assert (pooled.n, pooled.n_direction) == (single.n, single.n_direction), name
        for metric in METRICS:
            if single.get(metric) is None:
                assert pooled.get(metric) is None
            else:
                assert pooled.get(metric) == pytest.approx(single.get(metric), rel=1e-12, abs=0), (name, metric)
    assert a == b  # n, dates, versions, excluded rows, plot samples and residuals


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Features of 11 tickers, their split, a candidate and an active model trained into window 1."""
    features = build_features(clean_frame(n_tickers=11, n_days=260, seed=5, ar=0.3))
    split = time_split(features, n_windows=3)
    model, _ = train_model(features, split)
    active, _ = train_model(features, split, alpha=300.0)
    trained_until = split.windows[1].start + (split.windows[1].end - split.windows[1].start) / 2
    return features, split, model, active, iso_day(trained_until), tmp_path_factory.mktemp("shards")


def _write_shards(parts: list, folder) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    return [frames.write_frame(part, folder / frames.SHARD_FILE.format(i)) for i, part in enumerate(parts)]


@pytest.mark.parametrize("cut", ["by_ticker_hash", "by_row_blocks"])
@pytest.mark.parametrize("plot_tickers", [(), ("T009", "T002", "T004")])
def test_four_shards_give_the_result_of_one(sharded, monkeypatch, cut, plot_tickers) -> None:
    features, split, model, active, trained_until, tmp = sharded
    # A small residual sample, so its stride (2) crosses shard boundaries at every offset.
    monkeypatch.setattr(evaluate_core, "RESIDUAL_SAMPLE", 80)
    if cut == "by_ticker_hash":  # as ingest partitions: every row of a ticker in one shard
        shard = frames.shard_of(features["ticker"], 4)
        parts = [features[shard == k] for k in range(4)]
    else:  # tickers split across shards: plot samples are then joined over shards
        cuts = np.linspace(0, len(features), 5).astype(int)
        parts = [features.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    parts.append(features.iloc[:0])  # an empty shard (ingest keeps the schema) changes nothing
    one = pd.concat(parts, ignore_index=True)  # the same rows in shard order
    kwargs = dict(active_model=active, active_version="v-old", active_trained_until=trained_until,
                  plot_tickers=plot_tickers)

    whole = evaluate_shards(_write_shards([one], tmp / f"one-{cut}"), split, model, **kwargs)
    four = evaluate_shards(_write_shards(parts, tmp / f"four-{cut}"), split, model, **kwargs)

    assert [w.window_index for w in four] == [0, 1, 2]
    for w, (pooled, single) in enumerate(zip(four, whole, strict=True)):
        assert single == evaluate_window(one, split, w, model, **kwargs)  # one shard is the one-frame path
        _assert_same_result(pooled, single)
    assert four[1].active_excluded_rows > 0 and four[1].candidate_vs_active is not None  # the in-sample path ran
    assert len(four[0].residuals_pct) == 80
    assert list(four[0].samples) == (list(plot_tickers) or ["T000", "T001", "T002"])


def test_a_plot_ticker_in_no_shard_names_the_tickers_present(sharded) -> None:
    features, split, model, _, _, tmp = sharded
    shard = frames.shard_of(features["ticker"], 3)
    paths = _write_shards([features[shard == k] for k in range(3)], tmp / "three")
    with pytest.raises(ConfigError, match=r"report_tickers names NOPE, not in test window 0 \(tickers: T000, T001, "):
        evaluate_shards(paths, split, model, plot_tickers=["T005", "NOPE"])


def test_shards_without_test_rows_are_refused(sharded) -> None:
    features, split, model, _, _, tmp = sharded
    paths = _write_shards([features[features["date"] < split.test_start]] * 2, tmp / "no-test-rows")
    with pytest.raises(ConfigError, match="Test window 0 .* has no row"):
        evaluate_shards(paths, split, model)


# --------------------------------------------------------------------------- the task's start-up (issue 14)
def test_a_pricecast_model_is_scored_as_its_served_affine_map(trained) -> None:
    features, split, model = trained
    loaded = evaluate_core.load_model(modelio.dumps(model))
    assert isinstance(loaded, evaluate_core.AffineModel)
    x = features[list(FEATURE_COLUMNS)]
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-9, atol=1e-15)
    affine, fitted = evaluate_window(features, split, 0, loaded), evaluate_window(features, split, 0, model)
    assert affine.candidate.mape == pytest.approx(fitted.candidate.mape, rel=1e-9)


def test_scoring_never_imports_scikit_learn(trained, tmp_path) -> None:
    features, split, model = trained
    (tmp_path / "model.skops").write_bytes(modelio.dumps(model))
    shards = _write_shards([features], tmp_path / "shards")
    (tmp_path / "split.json").write_text(json.dumps(split.to_dict()))
    # Joined lines, not a multi-line string: the checkpoint keys' import scan reads lines that
    # begin with "import", and this script's imports are not the test module's.
    script = "\n".join([
        "import json, sys",
        "from pathlib import Path",
        "from components.evaluate import core",
        "from pricecast.time_split import Split",
        f"model = core.load_model(Path({str(tmp_path / 'model.skops')!r}).read_bytes())",
        f"split = Split.from_dict(json.loads(Path({str(tmp_path / 'split.json')!r}).read_text()))",
        f"core.evaluate_shards({[str(p) for p in shards]!r}, split, model)",
        'print(sorted(m for m in ("sklearn", "scipy", "skops", "matplotlib") if m in sys.modules))',
    ])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.stdout.strip() == "[]"
