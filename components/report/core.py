"""Report: pool the test windows and apply the promotion gate (``render`` draws the report).

The gate rule: the candidate passes when its main metric is no more than ``max_degradation``
worse than the reference's. The reference is the active model when the registry has one (scored
on the same rows, out of sample: when its training window reaches into the test windows, both
are scored only on the dates after it, and the reason says so), else the naive last-value
forecast (a first run, or an active model trained past every test date). For error metrics (mae,
rmse, mape) lower is better: pass when candidate <= reference * (1 + max_degradation). For
directional accuracy higher is better: pass when candidate >= reference * (1 - max_degradation);
the naive forecast never predicts a direction, so on a first run that metric is compared with a
coin flip (0.5).

The gate is relative; :func:`accuracy_alerts` adds the absolute limits of
:class:`pricecast.monitoring.thresholds.Thresholds`, so a candidate that beats a bad reference but is bad
itself still reaches a person (an alert, never a failed run).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

from components.report.summary import GateResult, ReferenceKind, Summary
from pricecast.errors import ConfigError, RegistryError
from pricecast.forecast_metrics import HIGHER_IS_BETTER, METRICS, ForecastMetrics, WindowResult, format_metric, pool
from pricecast.monitoring import checks
from pricecast.monitoring.alerts import Alert
from pricecast.monitoring.thresholds import Thresholds, thresholds_from

COIN_FLIP = 0.5

__all__ = ["accuracy_alerts", "accuracy_limits", "aggregate", "decide", "gate", "reference_for", "run_folder"]


def aggregate(window_results: list[WindowResult]) -> Summary:
    """Pool the windows' metrics, weighting each window by its rows (see ``metrics.pool``).

    Raises:
        ConfigError: No window results.
        RegistryError: Windows were scored against different active models (the registry changed
            during the run), so no single active reference exists.
    """
    if not window_results:
        raise ConfigError("The report got no window results.", "Run at least one evaluate task (n_windows >= 1).")
    windows = tuple(sorted(window_results, key=lambda w: w.window_index))
    active_versions = {w.active_version for w in windows}
    if len(active_versions) > 1:
        raise RegistryError(
            "The active model changed while the test windows were evaluated (saw "
            f"{', '.join(sorted(str(v) for v in active_versions))}).",
            "Rerun the pipeline so every window is compared with the same active model.",
        )
    active_version = active_versions.pop()
    scored = [w for w in windows if w.active is not None]  # windows where the active model is out of sample
    in_sample = any(w.active_excluded_rows for w in windows)
    return Summary(
        candidate=pool("candidate", [w.candidate for w in windows]),
        naive=pool("naive", [w.naive for w in windows]),
        active=pool("active", [w.active for w in scored]) if scored else None,  # type: ignore[misc]
        active_version=active_version,
        windows=windows,
        candidate_vs_active=(pool("candidate", [w.candidate_vs_active or w.candidate for w in scored])
                             if scored and in_sample else None),
    )


def run_folder(version: str, run_id: str = "", now: datetime | None = None) -> str:
    """``<version>/<run>`` under ``reports/``: one folder per run, so a rerun keeps the earlier report.

    ``run_id`` is the pipeline run's name; without one (a direct call), the UTC time stands in.
    """
    run = run_id.strip().replace("/", "-") or f"{now or datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    return f"{version}/{run}"


def reference_for(summary: Summary) -> ForecastMetrics:
    """What the candidate must not be much worse than: the active model, else the naive forecast."""
    return summary.active if summary.active is not None else summary.naive


def decide(summary: Summary, max_degradation: float = 0.10, metric: str = "mape") -> GateResult:
    """:func:`gate` the candidate against :func:`reference_for` the summary, on the same rows.

    When the active model's training window reached into the test windows, the comparison uses
    only the dates after it (the candidate's ``candidate_vs_active``) and the reason says so; an
    active model trained past every test date cannot be scored out of sample, so the naive
    forecast is the reference and the reason says why.
    """
    reference = reference_for(summary)
    candidate = summary.candidate_vs_active if reference is summary.active and summary.candidate_vs_active \
        else summary.candidate
    result = gate(candidate, reference, max_degradation, metric)
    if not summary.active_excluded_rows:
        return result
    if summary.active is None:
        note = (f" The active model {summary.active_version} was trained through {summary.active_trained_until}, "
                "past every test date: scored in sample it would look better than it is, so the naive "
                "forecast is the reference instead.")
    else:
        note = (f" The active model {summary.active_version} was trained through {summary.active_trained_until}, "
                f"inside the test windows: both models are compared on the {summary.active.n} rows after it "
                f"({summary.active_excluded_rows} in-sample rows left out).")
    return dataclasses.replace(result, reason=result.reason + note)


def gate(
    candidate: ForecastMetrics,
    reference: ForecastMetrics,
    max_degradation: float = 0.10,
    metric: str = "mape",
) -> GateResult:
    """Decide whether the candidate may be promoted (see the module docstring for the rule).

    Args:
        candidate: The candidate's pooled metrics.
        reference: The active model's pooled metrics (``name == "active"``) or the naive
            forecast's; :func:`reference_for` picks it.
        max_degradation: Tolerated relative degradation, e.g. 0.10 for 10 %.
        metric: ``mae``, ``rmse``, ``mape`` or ``directional_accuracy``.

    Returns:
        The decision, with a sentence giving both numbers and the threshold.

    Raises:
        ConfigError: Unknown metric or negative ``max_degradation``.
    """
    if metric not in METRICS:
        raise ConfigError(f"Unknown gate metric {metric!r}.", f"Use one of: {', '.join(METRICS)}.")
    if not max_degradation >= 0:
        raise ConfigError(f"max_degradation must be >= 0, got {max_degradation}.", "Use e.g. 0.1 for 10 %.")
    kind: ReferenceKind = "active" if reference.name == "active" else "naive"
    who = "the active model" if kind == "active" else "the naive last-value forecast"
    cand, ref = candidate.get(metric), reference.get(metric)
    if ref is None and metric == "directional_accuracy":
        ref, who = COIN_FLIP, "a coin flip (the naive forecast predicts no direction)"
    label = metric.upper() if metric != "directional_accuracy" else "Directional accuracy"

    def result(passed: bool, reason: str, threshold: float | None) -> GateResult:
        return GateResult(passed, reason, kind, metric, cand, ref, threshold, max_degradation)

    if cand is None or ref is None or math.isnan(cand) or math.isnan(ref):
        return result(False, f"Candidate {label} ({format_metric(metric, cand)}) cannot be compared with "
                             f"{who} ({format_metric(metric, ref)}): reject.", None)
    allowed = f"{max_degradation:.0%}"
    if metric in HIGHER_IS_BETTER:
        threshold = ref * (1 - max_degradation)
        passed = cand >= threshold
        relation = "is at least" if passed else "is below"
    else:
        threshold = ref * (1 + max_degradation)
        passed = cand <= threshold
        relation = "is within" if passed else "exceeds"
    return result(passed, (
        f"Candidate {label} {format_metric(metric, cand)} {relation} the threshold "
        f"{format_metric(metric, threshold)} ({who}: {format_metric(metric, ref)}, {allowed} degradation "
        f"allowed): {'promote' if passed else 'reject'}."
    ), threshold)


def accuracy_limits(min_directional_accuracy: float, max_mape: float) -> Thresholds:
    """The report stage's parameters as thresholds; 0 turns a limit off (KFP has no null parameter).

    Raises:
        ConfigError: A limit out of range, e.g. a directional accuracy above 1 or a negative MAPE.
    """
    return thresholds_from({"min_directional_accuracy": min_directional_accuracy or None,
                                       "max_mape": max_mape or None}, " of the report stage")


def accuracy_alerts(candidate: ForecastMetrics, limits: Thresholds, version: str,
                    verdict: str) -> list[Alert]:
    """HIGH alerts for a candidate under the minimum directional accuracy or over the maximum MAPE.

    Args:
        candidate: The candidate's metrics pooled over the test windows.
        limits: From :func:`accuracy_limits`.
        version: The candidate's version, named in the message and the labels.
        verdict: The gate's verdict, a label: a promoted candidate needs the alert most.
    """
    alerts = checks.accuracy_alerts(limits, candidate.to_dict(), what=f"Candidate {version}")
    return [a.model_copy(update={"labels": {"model_version": version, "verdict": verdict}}) for a in alerts]
