"""Canary analysis against a real Prometheus scraping stand-in exporters (simulated traffic).

One Prometheus scrapes four stable/canary pairs, each pair tagged with a ``scenario`` target
label, and the analysis tells them apart with ``--selector`` as it would tell releases apart in
a shared cluster Prometheus. The end-to-end test with real server processes is test_canary_e2e.py.
"""

from __future__ import annotations

import time

import pytest

from pricecast.canary import analysis
from pricecast.canary.prometheus import PrometheusClient
from tests.delivery.standin_exporter import Track, exporters
from tests.support.prometheus import Prometheus, prometheus_server

pytestmark = pytest.mark.prometheus

CANARIES = {
    "good": Track("canary", "v2", error_rate=0.0, latency_s=0.002),
    "failing": Track("canary", "v2", error_rate=0.2),
    "slow": Track("canary", "v2", latency_s=0.4),
}


def _policy(scenario: str, **overrides: object) -> analysis.Policy:
    settings = dict(canary_version="v2", window="10s", interval_s=0.5, checks=3, failure_threshold=2, min_success_rate=0.99,
                    max_p99_s=0.25, min_requests=50, selector=f'scenario="{scenario}"')
    return analysis.Policy(**{**settings, **overrides})


@pytest.fixture(scope="module")
def prom() -> Prometheus:
    tracks, labels = [], []
    for scenario, canary in CANARIES.items():
        tracks += [Track("stable", "v1"), canary]
        labels += [scenario, scenario]
    with exporters(*tracks, rate_per_s=200.0) as targets:
        target_labels = {t: {"scenario": s} for t, s in zip(targets, labels)}
        with prometheus_server(targets, target_labels=target_labels) as server:
            server.wait_for_targets()
            # Enough scrapes for increase()/rate() over the 10 s window on every target.
            server.wait_for(f"count(count_over_time(pricecast_requests_in_flight[10s]) >= 6) == {len(targets)}")
            yield server


def _run(prom: Prometheus, policy: analysis.Policy) -> analysis.Analysis:
    return analysis.run(policy, PrometheusClient(prom.url).query, sleep=time.sleep)


def test_standin_good_canary_is_promoted(prom: Prometheus) -> None:
    result = _run(prom, _policy("good"))
    assert result.verdict is analysis.Verdict.PROMOTE, [c.reasons for c in result.checks]
    assert len(result.checks) == 3
    check = result.checks[-1]
    assert check.canary.model_versions == ("v2",) and check.stable.model_versions == ("v1",)
    assert check.canary.success_rate == pytest.approx(1.0)
    assert check.canary.p99_s is not None and check.canary.p99_s <= 0.0025


def test_standin_failing_canary_is_rolled_back(prom: Prometheus) -> None:
    result = _run(prom, _policy("failing"))
    assert result.verdict is analysis.Verdict.ROLLBACK
    assert len(result.checks) == 2  # stopped as soon as the failure threshold was reached
    assert all("success rate" in c.reasons[0] for c in result.checks)
    assert result.checks[0].canary.success_rate == pytest.approx(0.8, abs=0.05)
    assert result.checks[0].stable.success_rate == pytest.approx(1.0)


def test_standin_slow_canary_is_rolled_back(prom: Prometheus) -> None:
    result = _run(prom, _policy("slow"))
    assert result.verdict is analysis.Verdict.ROLLBACK
    assert all(any("p99" in r for r in c.reasons) for c in result.checks)
    assert result.checks[0].canary.p99_s > 0.25 > result.checks[0].stable.p99_s


def test_standin_slow_canary_fails_the_relative_p99_check_alone(prom: Prometheus) -> None:
    # Absolute limit far away: only "canary p99 > 2 x stable p99" can fail it.
    result = _run(prom, _policy("slow", max_p99_s=10.0, max_p99_ratio=2.0))
    assert result.verdict is analysis.Verdict.ROLLBACK
    assert "x stable's" in result.checks[0].reasons[0]


def test_standin_canary_without_enough_traffic_is_inconclusive(prom: Prometheus) -> None:
    result = _run(prom, _policy("good", checks=2, failure_threshold=1, min_requests=100_000))
    assert result.verdict is analysis.Verdict.INCONCLUSIVE
    assert all(c.outcome == "no_data" for c in result.checks)
    assert "need at least 100000" in result.checks[0].reasons[0]


def test_standin_unknown_selector_has_no_traffic(prom: Prometheus) -> None:
    result = _run(prom, _policy("no-such-release", checks=1, failure_threshold=1))
    assert result.verdict is analysis.Verdict.INCONCLUSIVE
    assert result.checks[0].canary.requests is None


def _cli(*args: str):
    from typer.testing import CliRunner

    from cli.app import app

    return CliRunner().invoke(app, ["canary", "analyze", *args])


def test_standin_cli_analyze_exits_with_the_verdict_code(prom: Prometheus) -> None:
    common = ["--prometheus", prom.url, "--version", "v2", "--window", "10s", "--interval", "500ms", "--checks", "2",
              "--failure-threshold", "1"]
    good = _cli(*common, "--selector", 'scenario="good"')
    assert good.exit_code == 0, good.output
    assert "verdict: PROMOTE" in good.output and "check 2/2 PASS" in good.output

    failing = _cli(*common, "--selector", 'scenario="failing"', "--json")
    assert failing.exit_code == 1, failing.output
    doc = __import__("json").loads(failing.output)
    assert doc["verdict"] == "rollback" and doc["exit_code"] == 1
    assert doc["checks"][0]["canary"]["model_versions"] == ["v2"]

    thin = _cli(*common, "--selector", 'scenario="good"', "--min-requests", "100000")
    assert thin.exit_code == 75, thin.output
    assert "verdict: INCONCLUSIVE" in thin.output


def test_standin_cli_analyze_bad_selector_is_a_clean_config_error(prom: Prometheus) -> None:
    result = _cli("--prometheus", prom.url, "--version", "v2", "--selector", "scenario=good")
    assert result.exit_code == 2
    assert "selector" in result.output and "Traceback" not in result.output


def test_cli_analyze_unreachable_prometheus_is_a_source_error() -> None:
    from tests.support.prometheus import free_port

    result = _cli("--prometheus", f"http://127.0.0.1:{free_port()}", "--version", "v2", "--checks", "1",
                  "--failure-threshold", "1")
    assert result.exit_code == 3, result.output
    assert "did not answer" in result.output
    output = " ".join(result.output.split())
    # The PromQL as written, not percent-encoded inside requests' URL.
    assert 'to the query: sum(increase(pricecast_requests_total{track="canary",model_version="v2",endpoint=~' in output
    assert "%28" not in output and "+by+" not in output
