"""The checks that turn a breached :class:`~pricecast.monitoring.thresholds.Thresholds` into an
:class:`~pricecast.monitoring.alerts.Alert`.

Four things are watched: the model's accuracy (directional accuracy and MAPE), input drift
(PSI, see :mod:`pricecast.monitoring.drift`), the pipeline's run time (from ``<log_dir>/stage-metrics.jsonl``,
which :mod:`pricecast.stage` appends one line to per stage run) and the freshness of the data
(business days since each ticker's latest date). Alert names match README.md (Runbook).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pricecast.errors import DataFormatError
from pricecast.local_day import UTC_OFFSET, from_unix_time
from pricecast.monitoring.alerts import Alert
from pricecast.monitoring.drift import DriftReport
from pricecast.monitoring.thresholds import Thresholds
from pricecast.stage import base_stage

if TYPE_CHECKING:  # pandas loads where freshness is checked, not in every process that alerts
    import pandas as pd

log = logging.getLogger("pricecast.monitoring")

# Exit code of a `pricecast check` whose threshold is breached (1-6 are PricecastError codes).
BREACH_EXIT_CODE = 7

ACCURACY_LOW = "PricecastDirectionalAccuracyLow"
FORECAST_ERROR_HIGH = "PricecastForecastErrorHigh"
FEATURE_DRIFT = "PricecastFeatureDrift"
FEATURE_SHIFT_KS = "PricecastFeatureShiftKS"
PIPELINE_SLOW = "PricecastPipelineSlow"
DATA_STALE = "PricecastDataStale"


# --------------------------------------------------------------------------- freshness
@dataclasses.dataclass(frozen=True)
class TickerFreshness:
    ticker: str
    latest: date
    age_business_days: int
    stale: bool


@dataclasses.dataclass(frozen=True)
class Freshness:
    """How far each ticker's newest date lags ``today``."""

    tickers: tuple[TickerFreshness, ...]
    today: date
    max_age_business_days: int
    source: str = ""

    @property
    def stale(self) -> list[TickerFreshness]:
        return [t for t in self.tickers if t.stale]

    @property
    def newest(self) -> TickerFreshness:
        return min(self.tickers, key=lambda t: t.age_business_days)


def data_freshness(frame: pd.DataFrame, today: date, max_age_business_days: int, source: str = "") -> Freshness:
    """Latest date and its age in business days per ticker (a frame without tickers is one series).

    Raises:
        DataFormatError: No ``date`` column, or no row with a readable date.
    """
    import numpy as np
    import pandas as pd

    if "date" not in frame.columns:
        raise DataFormatError(f"The data {source} has no 'date' column (columns: {', '.join(map(str, frame.columns))}).",
                              "Map the date column with --date-column.")
    dates = frame["date"]
    if pd.api.types.is_string_dtype(dates) or dates.dtype == object:
        # The day each row was stamped (pricecast.local_day); offsets that change with daylight
        # saving time (+01:00, +02:00) would also make pandas refuse the column.
        dates = dates.astype("str").str.replace(UTC_OFFSET, r"\1", regex=True)
    elif (unix_time := from_unix_time(dates)) is not None:  # seconds (ms, ...) since 1970
        dates = unix_time
    elif pd.api.types.is_numeric_dtype(dates) and not pd.api.types.is_bool_dtype(dates):
        dates = dates.astype("str")  # 20240308: a YYYYMMDD date, not nanoseconds
    if not pd.api.types.is_datetime64_any_dtype(dates):
        dates = pd.to_datetime(dates, errors="coerce", format="mixed")
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_localize(None)
    tickers = frame["ticker"].astype("str") if "ticker" in frame.columns else pd.Series("SERIES", index=frame.index)
    latest = dates.groupby(tickers, sort=True).max().dropna()
    if latest.empty:
        raise DataFormatError(f"The data {source} has no row with a readable date.",
                              "Check the date column and --date-format.")
    days = latest.to_numpy().astype("datetime64[D]")
    # busday_count(latest, today) counts business days in [latest, today): 1 when today's
    # close is the only one missing. Dates after today (time zones) count as fresh.
    ages = np.maximum(np.busday_count(days, np.datetime64(today, "D")), 0)
    rows = tuple(TickerFreshness(str(t), pd.Timestamp(d).date(), int(a), bool(a > max_age_business_days))
                 for t, d, a in zip(latest.index, days, ages, strict=True))
    return Freshness(rows, today, max_age_business_days, source)


# --------------------------------------------------------------------------- run time
@dataclasses.dataclass(frozen=True)
class RunTime:
    """A pipeline run's wall time: from ``stage-metrics.jsonl`` (local) or the KFP API (cluster)."""

    started_at: datetime
    finished_at: datetime
    stages: dict[str, float]  # seconds per stage; a stage's shards (clean-s0, clean-s1, ...) summed
    restored: tuple[str, ...]
    kfp_run: str | None = None  # the KFP run id when the run is a cluster run

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def read_stage_metrics(log_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of ``<log_dir>/stage-metrics.jsonl``; unreadable lines are skipped."""
    path = Path(log_dir) / "stage-metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            datetime.fromisoformat(record["at"])
            float(record["elapsed_s"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a killed process
        records.append(record)
    return records


def last_run(records: Sequence[Mapping[str, Any]], first_stage: str = "ingest") -> RunTime | None:
    """The run that starts at the last ``first_stage`` record (or all records if none): wall time
    from its first start to its last end, so parallel stages are not counted twice."""
    if not records:
        return None
    starts = [i for i, r in enumerate(records) if r.get("stage") == first_stage]
    run = records[starts[-1]:] if starts else records
    begin = [datetime.fromisoformat(r["at"]) for r in run]
    end = [b + timedelta(seconds=float(r["elapsed_s"])) for b, r in zip(begin, run, strict=True)]
    stages: dict[str, float] = {}
    for r in run:
        name = base_stage(str(r["stage"]))  # a stage's shards count as the stage
        stages[name] = round(stages.get(name, 0.0) + float(r["elapsed_s"]), 3)
    return RunTime(min(begin), max(end), stages, tuple(dict.fromkeys(r["stage"] for r in run if r.get("restored"))))


def _kfp_time(value: Any) -> datetime | None:
    """A KFP API timestamp (datetime or RFC 3339 text); KFP's zero time (1970) means 'not yet'."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None if moment.year <= 1970 else moment


def kfp_run_time(run: Mapping[str, Any], now: datetime | None = None) -> RunTime:
    """A run as the KFP v2beta1 API returns it (``Run.to_dict()``) as a :class:`RunTime`.

    Wall time is ``created_at`` to ``finished_at``; a run that has not finished counts up to
    ``now``, so a stuck run breaches the limit while it hangs, not only once it ends. Stages are
    the run's task details that have both ends (fanned-out tasks summed under their name).
    """
    started = _kfp_time(run.get("created_at"))
    if started is None:
        raise DataFormatError(f"The KFP run {run.get('run_id')!r} has no created_at.",
                              "Pass the id of a run that has started (`--run-id`).")
    finished = _kfp_time(run.get("finished_at")) or now or datetime.now(UTC)
    stages: dict[str, float] = {}
    for task in (run.get("run_details") or {}).get("task_details") or []:
        begin, end = _kfp_time(task.get("start_time") or task.get("create_time")), _kfp_time(task.get("end_time"))
        name = str(task.get("display_name") or task.get("task_id") or "task")
        if begin and end and not name.startswith(("root", "condition", "for-loop", "iteration")):
            stages[name] = round(stages.get(name, 0.0) + (end - begin).total_seconds(), 3)
    return RunTime(started, max(finished, started), stages, (), kfp_run=str(run.get("run_id") or "?"))


# --------------------------------------------------------------------------- alerts
def accuracy_alerts(thresholds: Thresholds, metrics: Mapping[str, float], what: str = "the model") -> list[Alert]:
    """HIGH when directional accuracy is under its minimum or MAPE over its maximum."""
    alerts = []
    accuracy, mape = metrics.get("directional_accuracy"), metrics.get("mape")
    if thresholds.min_directional_accuracy is not None and accuracy is not None \
            and accuracy < thresholds.min_directional_accuracy:
        alerts.append(Alert(
            severity="HIGH", name=ACCURACY_LOW, value=accuracy, threshold=thresholds.min_directional_accuracy,
            message=f"{what} calls {accuracy:.1%} of next-day moves right, under the minimum "
                    f"{thresholds.min_directional_accuracy:.1%}.",
            suggested_action="Do not promote it; if it is active, `pricecast registry rollback`, then look for "
                             "drift (`pricecast check drift`) and retrain with `pricecast run`."))
    if thresholds.max_mape is not None and mape is not None and mape > thresholds.max_mape:
        alerts.append(Alert(
            severity="HIGH", name=FORECAST_ERROR_HIGH, value=mape, threshold=thresholds.max_mape,
            message=f"{what} misses next-day prices by {mape:.2f}% on average (MAPE), over the maximum "
                    f"{thresholds.max_mape:.2f}%.",
            suggested_action="Compare with the naive baseline in the report; roll back (`pricecast registry "
                             "rollback`) if the active model is worse, and check the data (`pricecast validate`)."))
    return alerts


def drift_alerts(report: DriftReport) -> list[Alert]:
    """MEDIUM when a feature's PSI reaches psi_alert, LOW at psi_warn or for a KS-only shift."""
    t = report.thresholds
    for level, severity, threshold in (("alert", "MEDIUM", t.psi_alert), ("warn", "LOW", t.psi_warn)):
        breached = sorted(report.breached(level), key=lambda f: -f.psi)
        if breached:
            names = ", ".join(f"{f.feature} (PSI {f.psi:.3f})" for f in breached)
            return [Alert(
                severity=severity, name=FEATURE_DRIFT, value=report.score, threshold=threshold,
                labels={"features": ",".join(f.feature for f in breached), "level": level},
                message=f"{len(breached)} input feature(s) drifted from the training reference: {names}.",
                suggested_action="Read the drift report; if returns really changed regime, retrain on recent data "
                                 "(`pricecast run`); if the data is wrong, fix the source and rerun."
                                 if severity == "MEDIUM" else "Watch the next runs; no action unless it grows.")]
    shifted = [f for f in report.features if f.ks_breach]
    if not shifted:
        return []
    return [Alert(
        severity="LOW", name=FEATURE_SHIFT_KS, value=min(f.ks_p_value for f in shifted), threshold=t.ks_p_value,
        labels={"features": ",".join(f.feature for f in shifted)},
        message=f"The KS test sees a shift in {', '.join(f.feature for f in shifted)} that PSI rates below "
                f"{t.psi_warn}: real but small.",
        suggested_action="No action; it matters if PSI follows in later runs.")]


def run_time_alerts(thresholds: Thresholds, run: RunTime) -> list[Alert]:
    """MEDIUM when the last run took longer than ``max_run_time_s``."""
    if thresholds.max_run_time_s is None or run.seconds <= thresholds.max_run_time_s:
        return []
    stage, seconds = max(run.stages.items(), key=lambda kv: kv[1], default=("<stage>", 0.0))
    return [Alert(
        severity="MEDIUM", name=PIPELINE_SLOW, value=run.seconds, threshold=thresholds.max_run_time_s,
        labels={"slowest_stage": stage},
        message=f"The pipeline run started {run.started_at.isoformat()} took {_seconds(run.seconds)}s, over "
                f"{_seconds(thresholds.max_run_time_s)}s; slowest stage {stage} ({_seconds(seconds)}s).",
        suggested_action=(f"Read logs/{stage}.log for the slow step; check the data volume and the "
                          "object store's latency; rerun with `pricecast run`." if run.kfp_run is None else
                          f"Open KFP run {run.kfp_run} in the KFP UI and read the {stage} step's logs; check "
                          "the data volume, pending pods (`kubectl -n kubeflow get pods`) and the object "
                          "store's latency."))]


def _seconds(value: float) -> str:
    """Whole seconds for real runs, significant digits below 100 s (a 0.001 s limit stays readable)."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def freshness_alerts(freshness: Freshness) -> list[Alert]:
    """HIGH when every ticker is stale (the feed stopped), MEDIUM when only some are."""
    stale = freshness.stale
    if not stale:
        return []
    newest = freshness.newest
    every = len(stale) == len(freshness.tickers)
    listed = ", ".join(f"{t.ticker} ({t.latest})" for t in stale[:10]) + (" …" if len(stale) > 10 else "")
    return [Alert(
        severity="HIGH" if every else "MEDIUM", name=DATA_STALE,
        value=float(newest.age_business_days if every else max(t.age_business_days for t in stale)),
        threshold=float(freshness.max_age_business_days),
        labels={"source": freshness.source, "stale_tickers": str(len(stale))},
        message=(f"The newest data {freshness.source} is from {newest.latest}, {newest.age_business_days} business "
                 f"day(s) before {freshness.today}." if every else
                 f"{len(stale)} of {len(freshness.tickers)} tickers stopped updating: {listed}."),
        suggested_action="Check the source feed and the ingest log (logs/ingest.log); rerun `pricecast run` once "
                         "it has new rows. Forecasts until then start from old prices.")]
