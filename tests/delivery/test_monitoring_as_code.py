"""Alert rules (promtool check + unit tests) and the dashboard (generated, shipped, queryable)."""

from __future__ import annotations

import subprocess

import pytest

from delivery.monitoring import build
from delivery.monitoring.dashboards import pricecast as dashboard_code
from tests.delivery import grafana
from tests.delivery.chart import ROOT
from tests.delivery.standin_exporter import Track, exporters
from tests.support.prometheus import prometheus_server

RULES = ROOT / "delivery" / "monitoring" / "alerts" / "pricecast.rules.yaml"
RULE_TESTS = ROOT / "delivery" / "monitoring" / "alerts" / "pricecast.rules.test.yaml"


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 10 rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = _promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_can_fail(tmp_path) -> None:
    """The unit tests really assert: a rule file with a looser threshold makes them fail."""
    loose = tmp_path / "pricecast.rules.yaml"
    loose.write_text(RULES.read_text().replace("> 0.01", "> 0.5"))
    tests = tmp_path / "tests.yaml"
    tests.write_text(RULE_TESTS.read_text())
    done = _promtool("test", "rules", str(tests))
    assert done.returncode != 0 and "PricecastHighErrorRatio" in done.stdout + done.stderr


def test_every_alert_has_severity_priority_and_an_action() -> None:
    import yaml

    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]
    assert {r["alert"] for r in rules} == {
        "PricecastTargetDown", "PricecastAbsent", "PricecastHighErrorRatio", "PricecastHighLatencyP99",
        "PricecastNoPredictions", "PricecastModelLoadFailures", "PricecastDriftHigh"}
    tested = RULE_TESTS.read_text()
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["labels"]["priority"] in {"HIGH", "MEDIUM", "LOW"}
        assert {"summary", "description", "action"} <= set(rule["annotations"]), rule["alert"]
        assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no promtool test"


def test_generated_files_are_up_to_date() -> None:
    assert build.stale() == [], "run: python -m delivery.monitoring.build"


def test_dashboard_covers_what_operators_need() -> None:
    doc = grafana.load()
    assert doc["uid"] == "pricecast-serving"
    queries = dashboard_code.panel_queries(doc)
    joined = "\n".join(e for exprs in queries.values() for e in exprs)
    for needle in ("pricecast_requests_total", 'status_class="5xx"', "histogram_quantile(0.5,",
                   "histogram_quantile(0.95,", "histogram_quantile(0.99,", "pricecast_requests_in_flight",
                   "pricecast_model_info", "pricecast_drift_score", "pricecast_model_load_failures_total",
                   "pricecast_prediction_value_bucket"):
        assert needle in joined, needle
    for panel in doc["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert set(variables) == {"datasource", "job", "namespace", "track"}


@pytest.mark.prometheus
def test_standin_every_panel_query_returns_data() -> None:
    """Fast check of the queries' syntax and labels against stand-in exporters of both tracks.

    The same check against the real server under load is in test_canary_e2e.py.
    """
    with exporters(Track("stable", "v1"), Track("canary", "v2", error_rate=0.05)) as targets, \
            prometheus_server(targets) as prom:
        prom.wait_for_targets()
        prom.wait_for("count(count_over_time(pricecast_requests_in_flight[10s]) >= 8) == 2")
        results = grafana.panel_results(prom.url, grafana.load())
        bare = grafana.panel_results(prom.url, grafana.without_fallbacks(grafana.load())[0])
    empty = {title: counts for title, counts in results.items() if not all(counts)}
    assert empty == {}
    assert len(results) == 10
    # Without `or vector(0)` too: the stand-ins export every series the panels read.
    assert {title: counts for title, counts in bare.items() if not all(counts)} == {}
