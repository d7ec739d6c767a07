"""The canary workflow end to end on this machine: real servers, real Prometheus, real traffic.

One stable server (model v1) and three canaries (model v2): a good one, one answering 20 % of
predictions with 500 (PRICECAST_FAULT_ERROR_RATE) and one 300 ms slower (PRICECAST_FAULT_LATENCY_MS).
Prometheus scrapes the stable server once per scenario (a ``scenario`` target label, as releases
differ by namespace in a cluster) and each canary once; the analysis must promote the good canary
and roll back the other two. The same live setup checks the dashboard and the helm test script;
for the dashboard a fifth server, pinned to a version the registry does not hold, never loads its
model, so ``pricecast_model_load_failures_total`` is a real series too.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from pricecast.canary import analysis
from pricecast.canary.prometheus import PrometheusClient
from tests.delivery import grafana
from tests.delivery.chart import PINNED, manifests
from tests.support.prometheus import Prometheus, prometheus_server
from tests.support.server import RunningServer, publish_model, running_server

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

CANARIES = {
    "good": {},
    "failing": {"PRICECAST_FAULT_ERROR_RATE": "0.2"},
    "slow": {"PRICECAST_FAULT_LATENCY_MS": "300"},
}
TRAFFIC_LIMIT_S = 240.0  # the traffic threads stop by themselves even if a test hangs
LOAD_FAILURE = {"scenario": "load-failure"}  # the broken server's target label; no canary analysis selects it


@dataclass
class Live:
    prom: Prometheus
    stable: RunningServer
    canaries: dict[str, RunningServer]
    sent: dict[str, int]


def _traffic(server: RunningServer, name: str, n_features: int, stop: threading.Event, sent: dict[str, int]) -> None:
    """Predict requests in a bounded loop: v1 feature rows mostly, some v2 infer."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    deadline = time.monotonic() + TRAFFIC_LIMIT_S
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        i = 0
        while not stop.is_set() and time.monotonic() < deadline:
            rows = rng.normal(0.0, 0.01, size=(1 + i % 4, n_features)).round(6).tolist()
            if i % 5 == 4:
                client.post("/v2/models/pricecast/infer", json={"inputs": [
                    {"name": "input-0", "shape": [len(rows), n_features], "datatype": "FP64",
                     "data": [v for row in rows for v in row]}]})
            else:
                client.post("/v1/models/pricecast:predict", json={"instances": rows})
            sent[name] = sent.get(name, 0) + 1
            i += 1
            stop.wait(0.02)  # ~50 requests/s per thread: enough for 10 s windows, light on 2 cores


def _start_in_parallel(stack: contextlib.ExitStack, servers: list) -> list[RunningServer]:
    """Enter the servers' context managers concurrently (each waits for its own /readyz, or
    /healthz for one that never gets ready)."""
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        futures = [pool.submit(cm.__enter__) for cm in servers]
    for cm, future in zip(servers, futures):
        if future.exception() is None:
            stack.push(cm.__exit__)
    return [f.result() for f in futures]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    store = f"file://{tmp_path_factory.mktemp('store')}"
    publish_model(store, "v1", seed=1)
    publish_model(store, "v2", seed=2)
    stop = threading.Event()
    sent: dict[str, int] = {}
    threads: list[threading.Thread] = []
    with contextlib.ExitStack() as stack:
        stable, good, failing, slow, broken = _start_in_parallel(stack, [
            running_server(store, version="v1", track="stable"),
            running_server(store, version="v2", track="canary"),
            running_server(store, version="v2", track="canary", env=CANARIES["failing"]),
            running_server(store, version="v2", track="canary", env=CANARIES["slow"]),
            # A bad pin (tests/reliability/test_model_faults.py): alive, never ready, retrying each second.
            running_server(store, version="v404", track="stable", wait_for="live", env={"PRICECAST_LOAD_RETRY_S": "1"}),
        ])
        canaries = {"good": good, "failing": failing, "slow": slow}
        n_features = stable.get("/v2/models/pricecast").json()["inputs"][0]["shape"][1]
        # The stable server once per scenario (same address, different labels), each canary once.
        targets = [t for scenario, canary in canaries.items()
                   for t in ((f"127.0.0.1:{stable.port}", {"scenario": scenario}),
                             (f"127.0.0.1:{canary.port}", {"scenario": scenario}))]
        targets.append((f"127.0.0.1:{broken.port}", LOAD_FAILURE))
        workers = [("stable", stable), ("good", good), ("failing", failing), ("slow", slow), ("slow-2", slow)]
        try:
            for name, server in workers:
                thread = threading.Thread(target=_traffic, args=(server, name, n_features, stop, sent), daemon=True)
                thread.start()
                threads.append(thread)
            with prometheus_server(targets) as prom:
                prom.wait_for_targets()
                prom.wait_for('count(count_over_time(pricecast_requests_in_flight{scenario!="load-failure"}[10s]) >= 8)'
                              ' == 6', timeout_s=60)
                prom.wait_for('sum(increase(pricecast_model_load_failures_total{scenario="load-failure"}[10s])) > 0',
                              timeout_s=60)
                prom.wait_for('count(sum by (scenario) (increase(pricecast_requests_total{track="canary",'
                              'endpoint=~".*predict.*"}[10s])) > 40) == 3', timeout_s=60)
                yield Live(prom, stable, canaries, sent)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)


def _policy(scenario: str) -> analysis.Policy:
    return analysis.Policy(canary_version="v2", window="10s", interval_s=1.0, checks=3, failure_threshold=2, min_success_rate=0.99,
                           max_p99_s=0.25, min_requests=20, selector=f'scenario="{scenario}"')


def test_real_good_canary_is_promoted(live: Live) -> None:
    result = analysis.run(_policy("good"), PrometheusClient(live.prom.url).query, time.sleep)
    assert result.verdict is analysis.Verdict.PROMOTE, [(c.outcome, c.reasons) for c in result.checks]
    last = result.checks[-1]
    assert last.canary.model_versions == ("v2",) and last.stable.model_versions == ("v1",)
    assert last.canary.success_rate == pytest.approx(1.0) and last.stable.success_rate == pytest.approx(1.0)
    assert last.canary.requests >= 20 and last.canary.p99_s < 0.25


def test_real_failing_canary_is_rolled_back(live: Live) -> None:
    result = analysis.run(_policy("failing"), PrometheusClient(live.prom.url).query, time.sleep)
    assert result.verdict is analysis.Verdict.ROLLBACK
    assert len(result.checks) == 2
    first = result.checks[0]
    assert first.canary.success_rate == pytest.approx(0.8, abs=0.06)
    assert first.stable.success_rate == pytest.approx(1.0)
    assert "success rate" in first.reasons[0]


def test_real_slow_canary_is_rolled_back(live: Live) -> None:
    result = analysis.run(_policy("slow"), PrometheusClient(live.prom.url).query, time.sleep)
    assert result.verdict is analysis.Verdict.ROLLBACK
    first = result.checks[0]
    assert first.canary.p99_s > 0.25 > first.stable.p99_s
    assert first.canary.success_rate == pytest.approx(1.0)  # slow, not failing: latency decides


def test_real_cli_analyze_exit_codes(live: Live) -> None:
    """`pricecast canary analyze` as a user runs it: the console script, exit code = verdict."""
    pricecast = str(Path(sys.executable).with_name("pricecast"))
    common = [pricecast, "canary", "analyze", "--prometheus", live.prom.url, "--version", "v2", "--window", "10s",
              "--interval", "1s", "--checks", "2", "--failure-threshold", "1", "--min-requests", "20"]
    good = subprocess.run([*common, "--selector", 'scenario="good"'], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "verdict: PROMOTE" in good.stdout
    failing = subprocess.run([*common, "--selector", 'scenario="failing"'], capture_output=True, text=True, timeout=120)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "verdict: ROLLBACK" in failing.stdout and "success rate" in failing.stdout


def test_real_every_dashboard_panel_returns_data(live: Live) -> None:
    dashboard = grafana.load()
    results = grafana.panel_results(live.prom.url, dashboard)
    empty = {title: counts for title, counts in results.items() if not all(counts)}
    assert empty == {}, f"panels without data: {empty}"

    # `or vector(0)` would return data with no series at all: each such query must also find its
    # real series on its own (load failures: the broken server's counter).
    bare, with_fallback = grafana.without_fallbacks(dashboard)
    assert {"Model load failures (time range)", "Canary share of traffic"} <= with_fallback
    results = grafana.panel_results(live.prom.url, bare)
    empty = {title: counts for title, counts in results.items() if title in with_fallback and not all(counts)}
    assert empty == {}, f"panels with data only through `or vector(0)`: {empty}"
    failures = live.prom.query("sum by (reason, track, scenario) (increase(pricecast_model_load_failures_total[1m]))")
    assert [(labels, value > 0) for labels, value in failures] == [
        ({"reason": "not_found", "track": "stable", **LOAD_FAILURE}, True)]


def test_helm_test_pod_script_passes_against_the_real_server(live: Live, tmp_path: Path) -> None:
    """The `helm test` pod's script, taken from the rendered chart, run against a real server."""
    pod = next(d for d in manifests(PINNED) if d["kind"] == "Pod")
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "-c"]
    env = {**os.environ, "BASE_URL": live.stable.url, "MODEL_NAME": "pricecast"}
    done = subprocess.run([sys.executable, "-c", container["args"][0]], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: ['v1'] predicts" in done.stdout
    # And it fails when the server is not there, so `helm test` would report a broken release.
    env["BASE_URL"] = "http://127.0.0.1:9"
    broken = subprocess.run([sys.executable, "-c", container["args"][0]], capture_output=True, text=True,
                            timeout=60, env=env)
    assert broken.returncode != 0


def test_traffic_reached_every_server(live: Live) -> None:
    assert all(live.sent.get(name, 0) > 50 for name in ("stable", "good", "failing", "slow")), live.sent
