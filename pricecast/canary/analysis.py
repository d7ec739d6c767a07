"""Canary analysis: compare the canary track with the stable one from Prometheus, Flagger-style.

Pure: the PromQL is built here, the numbers come in through a ``query`` callable (the HTTP
adapter is :mod:`pricecast.canary.prometheus`), and time through ``sleep``. So the same decision
code runs against a real Prometheus in tests and in ``pricecast canary analyze``.

Like Flagger's analysis, a run is a series of checks ``interval`` apart, each over the last
``window`` of traffic; the canary is rolled back as soon as ``failure_threshold`` checks fail.
A check without enough evidence neither passes nor fails: it is "no data", and any such check
turns a run that did not fail into ``inconclusive`` (run again once traffic flows). Evidence is
the expected canary version's own traffic: every traffic query matches its ``model_version``
(an older canary's requests must not vouch for a new one), the canary track must serve exactly
that version, and a p99 latency must exist (a NaN p99 proves nothing about latency).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

# Only prediction traffic counts: probes and scrapes would dilute the canary's error ratio.
PREDICT_ENDPOINTS = r".*(predict|infer).*"
_DURATION = re.compile(r"^[0-9]+(ms|s|m|h)$")
_SELECTOR = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"]*"\s*,?\s*)*$')
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a registry version; safe inside a PromQL string

Sample = tuple[dict[str, str], float]
QueryFn = Callable[[str], Sequence[Sample]]


class Verdict(str, Enum):
    """What to do with the canary; the CLI exits with :data:`EXIT_CODES`."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    INCONCLUSIVE = "inconclusive"


# 2-6 are PricecastError codes (bad options, Prometheus unreachable...), so "inconclusive" takes
# EX_TEMPFAIL (75, sysexits.h: "try again later") and can never be mistaken for an error.
EXIT_CODES = {Verdict.PROMOTE: 0, Verdict.ROLLBACK: 1, Verdict.INCONCLUSIVE: 75}


@dataclass(frozen=True)
class Policy:
    """Thresholds and pacing of one analysis run (``ValueError`` on impossible settings).

    ``canary_version`` is the model version the canary must serve: only its traffic counts.
    """

    canary_version: str
    window: str = "5m"
    interval_s: float = 30.0
    checks: int = 5
    failure_threshold: int = 2
    min_success_rate: float = 0.99
    max_p99_s: float = 0.25
    min_requests: int = 50
    max_p99_ratio: float | None = None
    endpoints: str = PREDICT_ENDPOINTS
    selector: str = ""

    def __post_init__(self) -> None:
        if not _VERSION.match(self.canary_version):
            raise ValueError(f"canary_version {self.canary_version!r} is not a model version like 20240301-101500-ab12cd34.")
        if not _DURATION.match(self.window):
            raise ValueError(f"window {self.window!r} is not a Prometheus duration like 30s, 5m or 1h.")
        if self.checks < 1 or not 1 <= self.failure_threshold <= self.checks:
            raise ValueError("checks must be >= 1 and failure_threshold between 1 and checks.")
        if not 0.0 < self.min_success_rate <= 1.0:
            raise ValueError("min_success_rate must be in (0, 1].")
        if self.max_p99_s <= 0 or self.min_requests < 1 or self.interval_s < 0:
            raise ValueError("max_p99_s must be > 0, min_requests >= 1 and interval_s >= 0.")
        if self.max_p99_ratio is not None and self.max_p99_ratio <= 0:
            raise ValueError("max_p99_ratio must be > 0 when set.")
        if not _SELECTOR.match(self.selector):
            raise ValueError(f'selector {self.selector!r} must be label matchers like job="pricecast",namespace="prod".')


@dataclass(frozen=True)
class TrackStats:
    """One track's traffic over the window; ``None`` where Prometheus had no data."""

    track: str
    requests: float | None
    success_rate: float | None
    p99_s: float | None
    model_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One comparison: ``outcome`` is "pass", "fail" or "no_data", with the reasons why."""

    outcome: str
    reasons: tuple[str, ...]
    canary: TrackStats
    stable: TrackStats


@dataclass
class Analysis:
    """The checks made so far and the verdict they add up to."""

    policy: Policy
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(c.outcome == "fail" for c in self.checks)

    @property
    def no_data(self) -> int:
        return sum(c.outcome == "no_data" for c in self.checks)

    @property
    def verdict(self) -> Verdict:
        return decide(self.checks, self.policy)


def queries(track: str, policy: Policy) -> dict[str, str]:
    """The PromQL for one track: requests, 5xx responses, p99 latency and loaded model versions.

    The canary's traffic queries match ``model_version``; its versions query does not, so a
    canary that also serves another version is seen.
    """
    extra = policy.selector.strip().rstrip(",")
    info = f'track="{track}"' + (f",{extra}" if extra else "")
    version = f',model_version="{policy.canary_version}"' if track == "canary" else ""
    matchers = f'{info}{version},endpoint=~"{policy.endpoints}"'
    w = policy.window
    return {
        "requests": f"sum(increase(pricecast_requests_total{{{matchers}}}[{w}]))",
        "errors": f'sum(increase(pricecast_requests_total{{{matchers},status_class="5xx"}}[{w}]))',
        "p99": f"histogram_quantile(0.99, sum by (le) (rate(pricecast_request_duration_seconds_bucket{{{matchers}}}[{w}])))",
        "versions": f"count by (model_version) (pricecast_model_info{{{info}}})",
    }


def _scalar(samples: Sequence[Sample]) -> float | None:
    """The value of a one-sample aggregate; no sample or NaN (no traffic) means no data."""
    if not samples:
        return None
    value = float(samples[0][1])
    return None if math.isnan(value) else value


def track_stats(track: str, policy: Policy, query: QueryFn) -> TrackStats:
    """Ask Prometheus for one track's numbers over the policy's window."""
    q = queries(track, policy)
    requests = _scalar(query(q["requests"]))
    errors = _scalar(query(q["errors"])) or 0.0
    success = None if not requests else max(0.0, 1.0 - errors / requests)
    versions = tuple(sorted({labels.get("model_version", "") for labels, _ in query(q["versions"])}))
    return TrackStats(track, requests, success, _scalar(query(q["p99"])), versions)


def evaluate(canary: TrackStats, stable: TrackStats, policy: Policy) -> Check:
    """Judge one check: enough canary traffic first, then success rate and latency, then evidence.

    A failure found in the expected version's traffic fails the check; without one, the check
    passes only with full evidence: the canary serves exactly ``policy.canary_version`` and has a p99.
    """
    if canary.requests is None or canary.requests < policy.min_requests:
        seen = 0 if canary.requests is None else round(canary.requests)
        reason = f"canary answered {seen} predict requests in {policy.window}; need at least {policy.min_requests}"
        return Check("no_data", (reason,), canary, stable)
    reasons: list[str] = []
    if canary.success_rate is not None and canary.success_rate < policy.min_success_rate:
        reasons.append(f"success rate {canary.success_rate:.2%} < {policy.min_success_rate:.2%}")
    if canary.p99_s is not None and canary.p99_s > policy.max_p99_s:
        reasons.append(f"p99 {canary.p99_s * 1000:.1f} ms > {policy.max_p99_s * 1000:.1f} ms")
    if policy.max_p99_ratio and canary.p99_s is not None and stable.p99_s:
        if canary.p99_s > policy.max_p99_ratio * stable.p99_s:
            reasons.append(f"p99 {canary.p99_s * 1000:.1f} ms > {policy.max_p99_ratio:g} x stable's "
                           f"{stable.p99_s * 1000:.1f} ms")
    if reasons:
        return Check("fail", tuple(reasons), canary, stable)
    missing: list[str] = []
    if canary.model_versions != (policy.canary_version,):
        serves = ", ".join(canary.model_versions) or "no model"
        missing.append(f"canary track serves {serves}; expected exactly {policy.canary_version}")
    if canary.p99_s is None:
        missing.append(f"no p99 latency for the canary in {policy.window}")
    return Check("no_data" if missing else "pass", tuple(missing), canary, stable)


def decide(checks: Sequence[Check], policy: Policy) -> Verdict:
    """Roll back at ``failure_threshold`` failures; promote only a full run with traffic in every check."""
    failed = sum(c.outcome == "fail" for c in checks)
    if failed >= policy.failure_threshold:
        return Verdict.ROLLBACK
    if len(checks) >= policy.checks and not any(c.outcome == "no_data" for c in checks):
        return Verdict.PROMOTE
    return Verdict.INCONCLUSIVE


def run(
    policy: Policy,
    query: QueryFn,
    sleep: Callable[[float], None],
    on_check: Callable[[int, Check], None] | None = None,
) -> Analysis:
    """Make up to ``policy.checks`` checks ``interval_s`` apart; stop early on rollback."""
    analysis = Analysis(policy)
    for number in range(1, policy.checks + 1):
        if number > 1:
            sleep(policy.interval_s)
        check = evaluate(track_stats("canary", policy, query), track_stats("stable", policy, query), policy)
        analysis.checks.append(check)
        if on_check is not None:
            on_check(number, check)
        if analysis.verdict is Verdict.ROLLBACK:
            break
    return analysis
