"""Short human and JSON reports of a canary analysis."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pricecast.canary.analysis import EXIT_CODES, Analysis, Check, TrackStats, Verdict


def _stats(s: TrackStats) -> str:
    if s.requests is None:
        return f"{s.track}: no traffic"
    rate = "-" if s.success_rate is None else f"{s.success_rate:.2%}"
    p99 = "-" if s.p99_s is None else f"{s.p99_s * 1000:.1f} ms"
    versions = ",".join(s.model_versions) or "?"
    return f"{s.track} {versions}: {round(s.requests)} req, {rate} ok, p99 {p99}"


def check_line(number: int, total: int, check: Check) -> str:
    """One line per check: outcome, both tracks, and why it failed or lacked data."""
    why = f" ({'; '.join(check.reasons)})" if check.reasons else ""
    return f"check {number}/{total} {check.outcome.upper()}{why} | {_stats(check.canary)} | {_stats(check.stable)}"


def summary(result: Analysis) -> str:
    """The verdict with its reason and the exit code it maps to."""
    p = result.policy
    verdict = result.verdict
    if verdict is Verdict.ROLLBACK:
        why = f"{result.failed} of {len(result.checks)} checks failed (threshold {p.failure_threshold})"
    elif verdict is Verdict.PROMOTE:
        why = f"{len(result.checks)} checks with traffic, {result.failed} failed (threshold {p.failure_threshold})"
    else:
        why = (f"{result.no_data} of {len(result.checks)} checks lacked evidence for {p.canary_version} "
               "(too little traffic, another version on the canary track, or no p99); run again")
    return (f"verdict: {verdict.value.upper()} - {why}; thresholds: success >= {p.min_success_rate:.2%}, "
            f"p99 <= {p.max_p99_s * 1000:g} ms, >= {p.min_requests} requests per {p.window} "
            f"(exit {EXIT_CODES[verdict]})")


def as_dict(result: Analysis) -> dict[str, Any]:
    """The whole analysis as plain data for ``--json`` (CI logs, dashboards)."""
    return {
        "verdict": result.verdict.value,
        "exit_code": EXIT_CODES[result.verdict],
        "policy": asdict(result.policy),
        "checks": [asdict(c) for c in result.checks],
    }
