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
    ({"canary_version": 'v2"} or vector(1) #'}, "not a model version"),
    ({"canary_version": ""}, "not a model version"),
])
def test_policy_refuses_impossible_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**{"canary_version": "v2", **kwargs})


def test_queries_filter_by_track_endpoint_and_selector() -> None:
    q = analysis.queries("canary", Policy("v2", window="2m", selector='namespace="prod",'))
    assert q["requests"] == ('sum(increase(pricecast_requests_total{track="canary",namespace="prod",'
                             'model_version="v2",endpoint=~".*(predict|infer).*"}[2m]))')
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
    check = analysis.evaluate(canary, STABLE, Policy("v2"))
    assert check.outcome == outcome
    assert reason in " ".join(check.reasons)


def test_evaluate_relative_latency_only_when_asked() -> None:
    slowish = _canary(p99=0.010)  # 5x stable, far under the absolute limit
    assert analysis.evaluate(slowish, STABLE, Policy("v2")).outcome == "pass"
    failed = analysis.evaluate(slowish, STABLE, Policy("v2", max_p99_ratio=2.0))
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
    assert analysis.decide([_check(o) for o in outcomes], Policy("v2", checks=5, failure_threshold=2)) is verdict


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
    result = analysis.run(Policy("v2", checks=5, failure_threshold=2, interval_s=7), query, slept.append,
                          lambda n, c: seen.append(n))
    assert result.verdict is Verdict.ROLLBACK
    assert seen == [1, 2] and slept == [7]
    assert result.checks[0].canary.success_rate == pytest.approx(0.95)
    assert result.checks[0].canary.p99_s is None
    assert result.checks[0].canary.model_versions == ("v2",)


def test_every_canary_traffic_query_matches_the_expected_version() -> None:
    canary, stable = analysis.queries("canary", Policy("v2")), analysis.queries("stable", Policy("v2"))
    assert all('model_version="v2"' in canary[q] for q in ("requests", "errors", "p99"))
    assert "model_version=" not in canary["versions"]  # must see any other version the track serves
    assert all("model_version=" not in q for q in stable.values())


@pytest.mark.parametrize("versions, p99, reason", [
    (("v2",), None, "no p99 latency for the canary"),
    (("v1", "v2"), 0.003, "canary track serves v1, v2; expected exactly v2"),
    (("v1",), 0.003, "canary track serves v1; expected exactly v2"),
    ((), 0.003, "canary track serves no model"),
])
def test_a_check_without_full_evidence_is_no_data(versions: tuple[str, ...], p99: float | None, reason: str) -> None:
    canary = TrackStats("canary", 500.0, 1.0, p99, versions)
    check = analysis.evaluate(canary, STABLE, Policy("v2"))
    assert check.outcome == "no_data" and reason in " ".join(check.reasons)


def test_an_old_canary_versions_traffic_never_promotes_the_new_one() -> None:
    """v1 served the canary track all window; v2 just rolled out and has no traffic of its own."""
    def query(promql: str) -> list[tuple[dict[str, str], float]]:
        if "pricecast_model_info" in promql:
            return [({"model_version": "v1"}, 1.0), ({"model_version": "v2"}, 1.0)] if 'track="canary"' in promql \
                else [({"model_version": "v1"}, 1.0)]
        if 'model_version="v2"' in promql:
            return []  # no v2 traffic: an absent series
        if "histogram_quantile" in promql:
            return [({}, 0.002)]
        return [({}, 0.0 if "5xx" in promql else 1000.0)]

    result = analysis.run(Policy("v2", checks=3, failure_threshold=2, interval_s=0), query, lambda s: None)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert all(c.outcome == "no_data" and c.canary.requests is None for c in result.checks)


def test_requests_without_a_p99_never_promote() -> None:
    def query(promql: str) -> list[tuple[dict[str, str], float]]:
        if "pricecast_model_info" in promql:
            return [({"model_version": "v2" if 'track="canary"' in promql else "v1"}, 1.0)]
        if "histogram_quantile" in promql:
            return [({}, float("nan"))]
        return [({}, 0.0 if "5xx" in promql else 1000.0)]

    result = analysis.run(Policy("v2", checks=3, failure_threshold=2, interval_s=0), query, lambda s: None)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "no p99 latency" in result.checks[0].reasons[0]


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
