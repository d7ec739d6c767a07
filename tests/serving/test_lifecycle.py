"""Readiness follows the model: a failed load is not ready, says why, counts, and never serves."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pricecast.columns import FEATURE_COLUMNS
from tests.serving.util import V1, metric_value
from tests.support.server import model_file, publish_model

ROW = [0.001] * len(FEATURE_COLUMNS)


def _assert_not_ready(client: TestClient, reason_words: str, failure_reason: str) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert reason_words in ready.json()["reason"]
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/healthz").status_code == 200  # alive: Kubernetes must not restart-loop it
    refused = client.post(V1, json={"instances": [ROW]})
    assert refused.status_code == 503 and reason_words in refused.json()["error"]
    text = client.get("/metrics").text
    assert metric_value(text, "pricecast_model_load_failures_total", reason=failure_reason, track="stable") == 1
    assert "pricecast_model_info{" not in text


def test_an_empty_registry_is_not_ready(make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="serving.lifecycle"):
        client = make_client()
    _assert_not_ready(client, "no active model", "not_found")
    assert any("model load failed (not_found" in r.getMessage() for r in caplog.records)


def test_corrupted_bytes_are_not_ready(make_client: Any, store_url: str) -> None:
    publish_model(store_url, "v1")
    path = model_file(store_url, "v1")
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    _assert_not_ready(make_client(), "refusing to load", "integrity")


def test_missing_bytes_are_not_ready(make_client: Any, store_url: str) -> None:
    publish_model(store_url, "v1")
    model_file(store_url, "v1").unlink()
    _assert_not_ready(make_client(), "is missing", "not_found")


def test_an_unknown_pinned_version_is_not_ready(make_client: Any, published: Any) -> None:
    _assert_not_ready(make_client(model_version="v404"), "'v404' is not in the registry", "not_found")


def test_a_server_started_before_the_first_model_becomes_ready_when_one_is_promoted(
        make_client: Any, store_url: str) -> None:
    client = make_client(load_retry_s=0.05)
    assert client.get("/readyz").status_code == 503
    publish_model(store_url, "v1")
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get("/readyz").json() == {"status": "ready", "model_version": "v1"}
    assert client.post(V1, json={"instances": [ROW]}).status_code == 200


def test_a_loaded_model_keeps_serving_when_the_store_breaks_later(client: TestClient, store_url: str) -> None:
    model_file(store_url, "v1").write_bytes(b"garbage")
    assert client.post(V1, json={"instances": [ROW]}).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_fault_injection_fails_an_exact_share_of_predicts(make_client: Any, published: Any) -> None:
    faulty = make_client(fault_error_rate=0.25)
    statuses = [faulty.post(V1, json={"instances": [ROW]}).status_code for _ in range(20)]
    assert statuses.count(500) == 5 and statuses[3::4] == [500] * 5  # every 4th, deterministically
    text = faulty.get("/metrics").text
    assert metric_value(text, "pricecast_requests_total", status_class="5xx",
                        endpoint="/v1/models/{name}:predict") == 5
    assert faulty.get("/readyz").status_code == 200  # faults touch predicts only


def test_fault_latency_delays_each_predict(make_client: Any, published: Any) -> None:
    slow = make_client(fault_latency_ms=200)
    slow.post(V1, json={"instances": [ROW]})
    text = slow.get("/metrics").text
    # The latency histogram saw it: nothing under 0.1 s, everything under 0.25 s (bucket bounds).
    labels = {"endpoint": "/v1/models/{name}:predict", "model_version": "v1"}
    assert metric_value(text, "pricecast_request_duration_seconds_bucket", le="0.1", **labels) == 0
    assert metric_value(text, "pricecast_request_duration_seconds_count", **labels) == 1


def _wait_ready(client: TestClient, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_store_blip_on_the_metadata_is_a_failed_load_retried_until_the_bounds_are_set(
        make_client: Any, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pricecast.columns import OUTLIER_BOUNDS_KEY
    from pricecast import storage
    from pricecast.errors import StorageError

    bounds = {"ACME": [-0.01, 0.01]}
    publish_model(store_url, "v1", metadata={OUTLIER_BOUNDS_KEY: {"outlier_sigma": 8.0, "tickers": bounds}})
    outage = [True]

    def down_for_metadata(read: Any) -> Any:
        def reader(url: str) -> Any:
            if outage[0] and url.endswith("metadata.json"):
                raise StorageError(f"The store did not answer for {url}.", "Check the store.")
            return read(url)
        return reader

    # The server reads metadata.json as bytes to verify its sha256 (or as text for a version
    # registered before the hash was recorded): the store is down for both.
    monkeypatch.setattr(storage, "read_text", down_for_metadata(storage.read_text))
    monkeypatch.setattr(storage, "read_bytes", down_for_metadata(storage.read_bytes))
    client = make_client(load_retry_s=0.05)
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503 and "metadata.json" in not_ready.json()["reason"]
    assert client.app.plane.outlier_bounds is None  # type: ignore[attr-defined]
    text = client.get("/metrics").text
    assert "pricecast_model_info{" not in text  # not published without its bounds
    assert metric_value(text, "pricecast_model_load_failures_total", reason="storage", track="stable") >= 1

    outage[0] = False
    _wait_ready(client)
    assert client.get("/readyz").json() == {"status": "ready", "model_version": "v1"}
    assert client.app.plane.outlier_bounds == bounds  # type: ignore[attr-defined]


def test_metadata_that_is_not_json_is_a_failed_load(make_client: Any, store_url: str) -> None:
    """A metadata.json that is not JSON (here: truncated, and registered so, hash and all) fails
    the load with a named error instead of serving without the training run's bounds."""
    from pricecast.registry import RegistryStore
    from pricecast import storage
    from tests.support.server import model_file

    publish_model(store_url, "v1")
    path = model_file(store_url, "v1").with_name("metadata.json")
    path.write_text("{truncated")
    registry = RegistryStore(store_url)
    reg = registry.load()
    reg.versions["v1"].metadata_sha256 = storage.sha256_bytes(path.read_bytes())
    storage.write_text(registry.url, reg.model_dump_json(indent=2))  # as if registered so
    ready = make_client().get("/readyz")
    assert ready.status_code == 503 and "not a JSON object" in ready.json()["reason"]


def test_the_model_is_published_only_after_the_before_publish_hooks(store_url: str, published: Any) -> None:
    from serving.lifecycle import ModelHolder
    from serving.metrics import ServingMetrics

    holder = ModelHolder(store_url, "v1", ServingMetrics("stable"))
    seen_ready: list[bool] = []
    holder.before_publish.append(lambda model: seen_ready.append(holder.ready))
    assert holder.try_load() and seen_ready == [False] and holder.ready
