"""Thresholds: loading, and each check producing alerts of the right severity (or none)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricecast.errors import ConfigError, DataFormatError
from pricecast.monitoring import checks
from pricecast.monitoring.checks import accuracy_alerts, drift_alerts, freshness_alerts, run_time_alerts
from pricecast.monitoring.drift import drift_report
from pricecast.monitoring.thresholds import Thresholds, load_thresholds
from pricecast.settings import Settings
from pricecast.stage import run_stage


# --------------------------------------------------------------------------- thresholds
def test_defaults_are_the_standard_limits() -> None:
    t = Thresholds()
    assert (t.psi_warn, t.psi_alert, t.ks_p_value) == (0.1, 0.25, 0.01)
    assert t.drift().psi_alert == 0.25


def test_a_yaml_file_overrides_and_flags_win(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text("thresholds:\n  psi-alert: 0.3\n  max_run_time_s: 60\n  max_mape: null\n")
    t = load_thresholds(path, max_run_time_s=90)
    assert t.psi_alert == 0.3 and t.max_run_time_s == 90 and t.max_mape is None
    assert t.min_directional_accuracy == Thresholds().min_directional_accuracy


@pytest.mark.parametrize(("text", "message"), [
    ("psi_alrt: 0.3\n", "psi_alrt"),
    ("psi_warn: 0.5\n", "psi_warn"),
    ("- 1\n- 2\n", "key: value"),
    ("psi_alert: [\n", "not valid YAML"),
])
def test_a_bad_thresholds_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_thresholds(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_thresholds(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- accuracy
def test_accuracy_breaches_are_high_and_passing_metrics_raise_nothing() -> None:
    t = Thresholds(min_directional_accuracy=0.5, max_mape=2.0)
    alerts = accuracy_alerts(t, {"directional_accuracy": 0.41, "mape": 3.5})
    assert [(a.severity, a.name) for a in alerts] == [
        ("HIGH", checks.ACCURACY_LOW), ("HIGH", checks.FORECAST_ERROR_HIGH)]
    assert alerts[0].value == 0.41 and alerts[0].threshold == 0.5 and "rollback" in alerts[0].suggested_action
    assert accuracy_alerts(t, {"directional_accuracy": 0.55, "mape": 1.0}) == []
    assert accuracy_alerts(Thresholds(min_directional_accuracy=None, max_mape=None),
                               metrics={"directional_accuracy": 0.0, "mape": 99.0}) == []


# --------------------------------------------------------------------------- drift
def _frame(scale: float, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"r": rng.normal(0, 0.01 * scale, n), "q": rng.normal(0, 1, n)})


def test_drift_severity_follows_the_psi_level() -> None:
    reference = _frame(1.0, 20_000, 0)
    alert = drift_alerts(drift_report(reference, _frame(3.0, 3_000, 1), ["r", "q"]))
    assert [(a.severity, a.name) for a in alert] == [("MEDIUM", checks.FEATURE_DRIFT)]
    assert alert[0].labels["features"] == "r" and alert[0].threshold == 0.25

    mild = _frame(1.0, 3_000, 2).assign(r=lambda d: d["r"] + 0.004)
    warn = drift_alerts(drift_report(reference, mild, ["r", "q"]))
    assert [(a.severity, a.name, a.threshold) for a in warn] == [("LOW", checks.FEATURE_DRIFT, 0.1)]

    calm = drift_alerts(drift_report(reference, _frame(1.0, 3_000, 3), ["r", "q"]))
    assert calm == []


def test_a_ks_only_shift_is_low() -> None:
    reference = _frame(1.0, 20_000, 0)
    slight = _frame(1.0, 20_000, 4).assign(r=lambda d: d["r"] + 0.0006)  # visible to KS, not to PSI
    report = drift_report(reference, slight, ["r"])
    assert report.level == "ok" and report.features[0].ks_breach
    assert [(a.severity, a.name) for a in checks.drift_alerts(report)] == [("LOW", checks.FEATURE_SHIFT_KS)]


# --------------------------------------------------------------------------- run time
def _record(stage: str, at: str, elapsed: float) -> dict:
    return {"stage": stage, "at": at, "restored": False, "elapsed_s": elapsed}


def test_the_last_run_starts_at_the_last_ingest_and_counts_wall_time() -> None:
    records = [
        _record("ingest", "2024-01-01T00:00:00+00:00", 5),  # an older run
        _record("ingest", "2024-01-02T00:00:00+00:00", 10),
        _record("evaluate", "2024-01-02T00:00:20+00:00", 30),  # two windows in parallel
        _record("evaluate", "2024-01-02T00:00:20+00:00", 40),
        _record("promote", "2024-01-02T00:01:00+00:00", 2),
    ]
    run = checks.last_run(records)
    assert run.seconds == 62  # 00:00:00 -> 00:01:02, not the 82 s the stages add up to
    assert run.stages == {"ingest": 10, "evaluate": 70, "promote": 2}
    slow = run_time_alerts(Thresholds(max_run_time_s=60), run)
    assert [(a.severity, a.name, a.value) for a in slow] == [("MEDIUM", checks.PIPELINE_SLOW, 62)]
    assert slow[0].labels["slowest_stage"] == "evaluate"
    assert run_time_alerts(Thresholds(max_run_time_s=62), run) == []


def test_run_time_is_read_from_what_run_stage_writes(isolated_store: Settings) -> None:
    for stage in ("ingest", "validate"):
        run_stage(stage, params={}, inputs={}, outputs={}, compute=lambda ctx: ctx.record(rows_in=1), mode="off")
    log_dir = isolated_store.log_dir
    with open(Path(log_dir) / "stage-metrics.jsonl", "a") as fh:
        fh.write('{"stage": "clean", "at": "2024-0\n')  # a line cut short by a killed process
    records = checks.read_stage_metrics(log_dir)
    assert [r["stage"] for r in records] == ["ingest", "validate"]
    run = checks.last_run(records)
    assert set(run.stages) == {"ingest", "validate"} and 0 <= run.seconds < 600
    assert checks.read_stage_metrics(Path(log_dir) / "nowhere") == []
    assert checks.last_run([]) is None


def test_pricecast_run_checks_its_own_wall_time_and_names_the_slowest_stage_of_this_run(
        isolated_store: Settings) -> None:
    from datetime import UTC, datetime

    from pipelines.local_run import _run_time_alerts

    log_dir = isolated_store.log_dir
    log_dir.mkdir(parents=True)
    (log_dir / "stage-metrics.jsonl").write_text(json.dumps(_record("train", "2024-01-01T00:00:00+00:00", 900)) + "\n")
    started = datetime.now(UTC)
    for stage in ("ingest", "validate"):
        run_stage(stage, params={}, inputs={}, outputs={}, compute=lambda ctx: ctx.record(rows_in=1), mode="off")
    [slow] = _run_time_alerts(Thresholds(max_run_time_s=0.001), started, 25.5, log_dir)
    assert (slow.severity, slow.name, slow.value, slow.threshold) == ("MEDIUM", checks.PIPELINE_SLOW, 25.5, 0.001)
    assert slow.labels["slowest_stage"] in {"ingest", "validate"}  # an earlier run's train is not this run's
    assert "took 25.5s, over 0.001s" in slow.message and "logs/" in slow.suggested_action
    assert _run_time_alerts(Thresholds(), started, 25.5, log_dir) == []  # within the default 1800 s
    assert _run_time_alerts(Thresholds(max_run_time_s=None), started, 1e6, log_dir) == []  # check off


def test_a_run_time_alert_without_stage_records_still_says_what_to_do() -> None:
    run = checks.RunTime(pd.Timestamp("2024-01-02T00:00:00Z").to_pydatetime(),
                             pd.Timestamp("2024-01-02T00:40:00Z").to_pydatetime(), {}, ())
    [slow] = run_time_alerts(Thresholds(), run)
    assert "took 2400s, over 1800s" in slow.message and slow.labels["slowest_stage"] == "<stage>"


# --------------------------------------------------------------------------- freshness
def _prices(latest: dict[str, str]) -> pd.DataFrame:
    rows = []
    for ticker, last in latest.items():
        for day in pd.bdate_range(end=last, periods=5):
            rows.append({"date": day, "ticker": ticker, "price": 10.0})
    return pd.DataFrame(rows)


def test_age_counts_business_days_so_a_weekend_is_not_stale() -> None:
    monday = date(2024, 3, 11)
    fresh = checks.data_freshness(_prices({"A": "2024-03-08"}), monday, max_age_business_days=1)
    assert fresh.tickers[0].age_business_days == 1 and fresh.stale == []
    assert freshness_alerts(fresh) == []


def test_all_tickers_stale_is_high_and_some_is_medium() -> None:
    today = date(2024, 3, 29)
    every = checks.data_freshness(_prices({"A": "2024-03-15", "B": "2024-03-18"}), today, 3, "feed.csv")
    alerts = freshness_alerts(every)
    assert [(a.severity, a.name) for a in alerts] == [("HIGH", checks.DATA_STALE)]
    assert alerts[0].value == 9 and alerts[0].threshold == 3 and "2024-03-18" in alerts[0].message

    some = checks.data_freshness(_prices({"A": "2024-03-28", "B": "2024-03-15"}), today, 3)
    alerts = freshness_alerts(some)
    assert [(a.severity, a.labels["stale_tickers"]) for a in alerts] == [("MEDIUM", "1")]
    assert "B (2024-03-15)" in alerts[0].message


def test_freshness_reads_raw_string_dates_and_a_frame_without_tickers() -> None:
    raw = pd.DataFrame({"date": ["2024-03-01", "2024-03-04", "not a date"], "price": ["1", "2", "3"]})
    result = checks.data_freshness(raw, date(2024, 3, 5), 3)
    assert [(t.ticker, str(t.latest), t.age_business_days) for t in result.tickers] == [("SERIES", "2024-03-04", 1)]
    with pytest.raises(DataFormatError, match="no row with a readable date"):
        checks.data_freshness(pd.DataFrame({"date": ["x"]}), date(2024, 3, 5), 3)
    with pytest.raises(DataFormatError, match="no 'date' column"):
        checks.data_freshness(pd.DataFrame({"day": [1]}), date(2024, 3, 5), 3)


def test_freshness_reads_offsets_that_change_with_daylight_saving_as_the_days_they_name() -> None:
    """yfinance's export of a European stock: +01:00 in winter, +02:00 in summer (pandas refuses
    the mix); a Friday midnight in Paris is that Friday, not Thursday in UTC."""
    raw = pd.DataFrame({"date": ["2024-03-08 00:00:00+01:00", "2024-06-07 00:00:00+02:00"], "ticker": ["A", "B"]})
    result = checks.data_freshness(raw, date(2024, 6, 10), 3)
    assert [(t.ticker, str(t.latest)) for t in result.tickers] == [("A", "2024-03-08"), ("B", "2024-06-07")]
    assert [t.ticker for t in result.stale] == ["A"]


def test_freshness_reads_unix_milliseconds_and_yyyymmdd_numbers() -> None:
    friday = pd.Timestamp("2024-03-08")
    for column in ([friday.value // 10**6], [20240308]):
        result = checks.data_freshness(pd.DataFrame({"date": column}), date(2024, 3, 11), 3)
        assert [str(t.latest) for t in result.tickers] == ["2024-03-08"], column


def test_every_check_raises_json_ready_alerts_for_the_webhook() -> None:
    fresh = checks.data_freshness(_prices({"A": "2024-01-01"}), date(2024, 3, 1), 3)
    run = checks.last_run([_record("ingest", "2024-01-02T00:00:00+00:00", 7200)])
    alerts = (accuracy_alerts(Thresholds(), {"directional_accuracy": 0.2}) + run_time_alerts(Thresholds(), run)
              + freshness_alerts(fresh))
    assert sorted(a.name for a in alerts) == sorted(
        [checks.ACCURACY_LOW, checks.PIPELINE_SLOW, checks.DATA_STALE])
    json.dumps([a.model_dump() for a in alerts])  # every alert is JSON for the webhook
