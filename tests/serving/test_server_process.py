"""The real server as Kubernetes runs it: a process, readiness, SIGTERM, several workers."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from pricecast.columns import FEATURE_COLUMNS
from tests.serving.util import V1, metric_value
from tests.support.server import model_file, publish_model, running_server

ROW = [0.001] * len(FEATURE_COLUMNS)
PREDICT = {"endpoint": "/v1/models/{name}:predict"}


def test_pricecast_serve_starts_ready_and_serves_with_track_labels(store_url: str, published: Any) -> None:
    with running_server(store_url, track="canary") as srv:
        assert srv.get("/readyz").json() == {"status": "ready", "model_version": "v1"}
        assert srv.post(V1, json={"instances": [ROW]}).status_code == 200
        text = srv.metrics()
        assert metric_value(text, "pricecast_requests_total", status_class="2xx", track="canary",
                            model_version="v1", **PREDICT) == 1
        assert f"serving model v1 (sha256 {published.sha256[:12]}" in srv.output()


def test_a_corrupted_model_never_becomes_ready_and_says_why(store_url: str, published: Any) -> None:
    path = model_file(store_url, "v1")
    path.write_bytes(path.read_bytes().replace(b"Ridge", b"Rigde"))
    with running_server(store_url, wait_for="live") as srv:
        ready = srv.get("/readyz")
        assert ready.status_code == 503 and "refusing to load" in ready.json()["reason"]
        assert "model load failed (integrity" in srv.output()
        assert metric_value(srv.metrics(), "pricecast_model_load_failures_total", reason="integrity") >= 1
        assert srv.post(V1, json={"instances": [ROW]}).status_code == 503


def test_a_server_waiting_for_its_first_model_becomes_ready_when_it_is_promoted(store_url: str) -> None:
    with running_server(store_url, wait_for="live", env={"PRICECAST_LOAD_RETRY_S": "0.2"}) as srv:
        assert srv.get("/readyz").status_code == 503
        assert "model load failed (not_found" in srv.output()
        publish_model(store_url, "v1")
        deadline = time.monotonic() + 30
        while srv.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, srv.output()
            time.sleep(0.1)
        assert srv.post(V1, json={"instances": [ROW]}).status_code == 200


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_accepting_finishes_in_flight_requests_and_exits_cleanly(
        store_url: str, published: Any, tmp_path: Path, workers: int) -> None:
    # With several workers uvicorn's supervisor passes SIGTERM on to each; the gauge is summed
    # over workers through the multiprocess directory, as in the Helm chart.
    env = {"PRICECAST_FAULT_LATENCY_MS": "3000"}
    if workers > 1:
        (tmp_path / "metrics").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    with running_server(store_url, workers=workers, env=env) as srv:
        result: dict[str, Any] = {}

        def slow_request() -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as own:
                result["response"] = own.post(V1, json={"instances": [ROW]})

        worker = threading.Thread(target=slow_request)
        worker.start()
        deadline = time.monotonic() + 10
        # In flight: this scrape plus the slow predict.
        while metric_value(srv.metrics(), "pricecast_requests_in_flight") < 2:
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.05)
        srv.proc.send_signal(signal.SIGTERM)  # as the kubelet does

        refused = False
        while worker.is_alive() and not refused:  # new connections are refused while it finishes
            try:
                httpx.get(f"{srv.url}/healthz", timeout=1)
                time.sleep(0.05)
            except httpx.TransportError:
                refused = True
        worker.join(timeout=30)
        assert refused, "the server kept accepting connections after SIGTERM"
        assert result["response"].status_code == 200
        assert len(result["response"].json()["predictions"]) == 1
        assert srv.proc.wait(timeout=30) == 0
        assert "Finished server process" in srv.output()


def _per_worker_predict_counts(multiproc_dir: Path, scratch: Path) -> dict[str, float]:
    """Successful predicts counted by each worker, read from its own metric files."""
    counts: dict[str, float] = {}
    for db in multiproc_dir.glob("counter_*.db"):
        pid = db.stem.split("_")[-1]
        only = scratch / pid
        only.mkdir(exist_ok=True)
        shutil.copy(db, only / db.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(only))
        counts[pid] = metric_value(generate_latest(registry).decode(), "pricecast_requests_total",
                                   status_class="2xx", **PREDICT)
    return counts


@pytest.mark.slow
def test_two_workers_report_the_sum_of_both_on_every_scrape(store_url: str, published: Any, tmp_path: Path) -> None:
    multiproc_dir = tmp_path / "prometheus"
    with running_server(store_url, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}) as srv:

        def predict(_: int) -> int:  # a new connection each time, so the kernel spreads them
            with httpx.Client(base_url=srv.url, timeout=30) as own:
                return own.post(V1, json={"instances": [ROW]}).status_code

        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(20):  # until both workers have served some (bounded)
                assert set(pool.map(predict, range(40))) == {200}
                sent += 40
                counts = _per_worker_predict_counts(multiproc_dir, tmp_path)
                if sum(1 for c in counts.values() if c > 0) >= 2:
                    break
        assert sum(1 for c in counts.values() if c > 0) >= 2, counts
        for _ in range(6):  # whichever worker answers the scrape, it reports both
            text = srv.metrics()
            assert metric_value(text, "pricecast_requests_total", status_class="2xx", **PREDICT) == sent
            assert metric_value(text, "pricecast_prediction_value_count") == sent
            assert metric_value(text, "pricecast_model_info", model_version="v1") == 1
        assert srv.terminate() == 0
