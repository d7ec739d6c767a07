"""The canary cores without I/O: policy checks, the verdict table, PromQL, and values overlays."""

from __future__ import annotations

import pytest

from pricecast.canary import analysis, release
from pricecast.canary.analysis import Check, Policy, TrackStats, Verdict
from pricecast.errors import ConfigError

STABLE = TrackStats("stable", 1000.0, 1.0, 0.002, ("v1",))


def _canary(requests: float | None = 500.0, success: float | None = 1.0, p99: float | None = 0.003) -> TrackStats:
    return TrackStats("canary", requests, success, p99, ("v2",))


def _check(outcome: str) -> Check:
    return Check(outcome, (), _canary(), STABLE)


@pytest.mark.parametrize("kwargs, message", [
    ({"window": "5 minutes"}, "Prometheus duration"),
    ({"checks": 0}, "checks must be"),
    ({"checks": 3, "failure_threshold": 4}, "failure_threshold"),
    ({"min_success_rate": 1.5}, "min_success_rate"),
    ({"max_p99_s": 0}, "max_p99_s"),
    ({"max_p99_ratio": -1.0}, "max_p99_ratio"),
    ({"selector": 'job="x"} or vector(1) #'}, "label matchers"),
])
def test_policy_refuses_impossible_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**kwargs)


def test_queries_filter_by_track_endpoint_and_selector() -> None:
    q = analysis.queries("canary", Policy(window="2m", selector='namespace="prod",'))
    assert q["requests"] == ('sum(increase(pricecast_requests_total{track="canary",namespace="prod",'
                             'endpoint=~".*(predict|infer).*"}[2m]))')
    assert 'status_class="5xx"' in q["errors"]
    assert q["p99"].startswith("histogram_quantile(0.99, sum by (le) (rate(pricecast_request_duration_seconds_bucket{")
    assert q["versions"] == 'count by (model_version) (pricecast_model_info{track="canary",namespace="prod"})'


@pytest.mark.parametrize("canary, outcome, reason", [
    (_canary(), "pass", ""),
    (_canary(requests=None), "no_data", "answered 0 predict requests"),
    (_canary(requests=49), "no_data", "need at least 50"),
    (_canary(success=0.985), "fail", "success rate 98.50% < 99.00%"),
    (_canary(p99=0.3), "fail", "p99 300.0 ms > 250.0 ms"),
])
def test_evaluate_one_check(canary: TrackStats, outcome: str, reason: str) -> None:
    check = analysis.evaluate(canary, STABLE, Policy())
    assert check.outcome == outcome
    assert reason in " ".join(check.reasons)


def test_evaluate_relative_latency_only_when_asked() -> None:
    slowish = _canary(p99=0.010)  # 5x stable, far under the absolute limit
    assert analysis.evaluate(slowish, STABLE, Policy()).outcome == "pass"
    failed = analysis.evaluate(slowish, STABLE, Policy(max_p99_ratio=2.0))
    assert failed.outcome == "fail" and "2 x stable's 2.0 ms" in failed.reasons[0]


@pytest.mark.parametrize("outcomes, verdict", [
    (["pass"] * 5, Verdict.PROMOTE),
    (["pass", "fail", "pass", "pass", "pass"], Verdict.PROMOTE),  # under the threshold, like Flagger
    (["fail", "fail"], Verdict.ROLLBACK),
    (["pass", "no_data", "fail", "fail"], Verdict.ROLLBACK),
    (["pass"] * 4 + ["no_data"], Verdict.INCONCLUSIVE),
    (["pass"] * 3, Verdict.INCONCLUSIVE),  # run not finished
])
def test_decide(outcomes: list[str], verdict: Verdict) -> None:
    assert analysis.decide([_check(o) for o in outcomes], Policy(checks=5, failure_threshold=2)) is verdict


def test_run_stops_at_the_failure_threshold_and_sleeps_between_checks() -> None:
    def query(promql: str) -> list[tuple[dict[str, str], float]]:
        if "pricecast_model_info" in promql:
            return [({"model_version": "v2" if 'track="canary"' in promql else "v1"}, 1.0)]
        if "5xx" in promql:
            return [({}, 50.0 if 'track="canary"' in promql else 0.0)]
        if "histogram_quantile" in promql:
            return [({}, float("nan"))]  # no latency data: NaN is "unknown", not a failure
        return [({}, 1000.0)]

    slept: list[float] = []
    seen: list[int] = []
    result = analysis.run(Policy(checks=5, failure_threshold=2, interval_s=7), query, slept.append,
                          lambda n, c: seen.append(n))
    assert result.verdict is Verdict.ROLLBACK
    assert seen == [1, 2] and slept == [7]
    assert result.checks[0].canary.success_rate == pytest.approx(0.95)
    assert result.checks[0].canary.p99_s is None
    assert result.checks[0].canary.model_versions == ("v2",)


def test_exit_codes_are_distinct_from_error_codes() -> None:
    assert analysis.EXIT_CODES == {Verdict.PROMOTE: 0, Verdict.ROLLBACK: 1, Verdict.INCONCLUSIVE: 75}
    assert ConfigError.exit_code not in analysis.EXIT_CODES.values()


@pytest.mark.parametrize("weight, stable, canary", [(10, 9, 1), (10, 2, 1), (25, 3, 1), (50, 4, 4), (20, 8, 2)])
def test_canary_replicas_follow_the_weight(weight: int, stable: int, canary: int) -> None:
    assert release.canary_replicas(weight, stable) == canary


@pytest.mark.parametrize("weight", [0, 100, 150])
def test_canary_weight_out_of_range(weight: int) -> None:
    with pytest.raises(ConfigError, match="not between 1 and 99"):
        release.canary_replicas(weight, 9)


def test_overlays() -> None:
    started = release.start("v2", 10, 9)
    assert started.values == {"canary": {"enabled": True, "modelVersion": "v2", "replicaCount": 1, "weight": 10}}
    assert "~10 % by replica ratio" in started.summary
    assert release.start("v2", 10, 2).summary.endswith("next to 2 stable (~33 % by replica ratio) through the Service")
    scaled = release.start("v2", 10, 9, scale_stable=True)
    assert scaled.values["stable"] == {"replicaCount": 9}
    assert release.promote("v2").values == {"stable": {"modelVersion": "v2"},
                                            "canary": {"enabled": False, "modelVersion": ""}}
    assert release.rollback().values == {"canary": {"enabled": False, "modelVersion": ""}}
    with pytest.raises(ConfigError, match="explicit model version"):
        release.start("active", 10, 9)
    with pytest.raises(ConfigError, match="needs the canary's model version"):
        release.promote("")


def test_helm_upgrade_keeps_the_other_values() -> None:
    command = release.helm_upgrade_command("pc", "helm/pricecast", "ml", "o.yaml", "5m")
    assert command[:4] == ["helm", "upgrade", "pc", "helm/pricecast"]
    assert "--reuse-values" in command and command[command.index("--values") + 1] == "o.yaml"
