"""Metrics: names and labels other tools rely on, bulk observation identical to prometheus-client's."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from serving.metrics import LATENCY_BUCKETS, PREDICTION_BUCKETS, ServingMetrics, observe_many, observe_one
from tests.serving.util import metric_value


def test_fast_observation_gives_the_same_exposition_as_prometheus_client() -> None:
    rng = np.random.default_rng(0)
    # Values on bucket bounds, between them, and beyond both ends.
    values = np.concatenate([rng.normal(0, 0.03, 500), np.array(PREDICTION_BUCKETS), [-1.0, 1.0, 0.0]])
    registries = {way: CollectorRegistry() for way in ("observe", "observe_one", "observe_many")}
    children = {way: Histogram("p", "p", ["v"], buckets=PREDICTION_BUCKETS, registry=reg).labels("x")
                for way, reg in registries.items()}
    for value in values:
        children["observe"].observe(float(value))
        observe_one(children["observe_one"], float(value))
    observe_many(children["observe_many"], values)

    def without_created(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    reference = without_created(registries["observe"])
    assert without_created(registries["observe_one"]) == reference
    assert without_created(registries["observe_many"]) == reference
    assert metric_value(generate_latest(registries["observe_many"]).decode(), "p_count") == len(values)


def test_every_series_carries_model_version_and_track() -> None:
    metrics = ServingMetrics("canary")
    metrics.load_failed("integrity")
    metrics.model_loaded("v7", "ab" * 32, "2024-05-01T00:00:00+00:00", ("/v1/models/{name}:predict",))
    metrics.record_request("/v1/models/{name}:predict", 200, 0.0007)
    metrics.record_request("/v1/models/{name}:predict", 422, 0.0002)
    metrics.record_predictions(np.array([0.001, -0.002, 0.0]))
    metrics.in_flight_now.inc()
    text = metrics.exposition()[0].decode()

    labels = {"model_version": "v7", "track": "canary"}
    endpoint = {"endpoint": "/v1/models/{name}:predict", **labels}
    assert metric_value(text, "pricecast_requests_total", status_class="2xx", **endpoint) == 1
    assert metric_value(text, "pricecast_requests_total", status_class="4xx", **endpoint) == 1
    # Pre-created so an error ratio is 0 (not "no data") before the first error.
    assert 'status_class="5xx"' in text
    assert metric_value(text, "pricecast_request_duration_seconds_bucket", le="0.001", **endpoint) == 2
    assert metric_value(text, "pricecast_request_duration_seconds_bucket", le="0.0005", **endpoint) == 1
    assert metric_value(text, "pricecast_prediction_value_count", **labels) == 3
    assert metric_value(text, "pricecast_model_info", sha256="ab" * 32, trained_at="2024-05-01T00:00:00+00:00",
                        **labels) == 1
    assert metric_value(text, "pricecast_model_load_failures_total", reason="integrity", track="canary") == 1
    assert metric_value(text, "pricecast_requests_in_flight", track="canary") == 1


def test_latency_buckets_span_half_a_millisecond_to_two_and_a_half_seconds() -> None:
    assert LATENCY_BUCKETS[0] == 0.0005 and LATENCY_BUCKETS[-1] == 2.5
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)


def test_each_app_starts_from_zero() -> None:
    first, second = ServingMetrics("stable"), ServingMetrics("stable")
    first.record_request("/healthz", 200, 0.001)
    text = second.exposition()[0].decode()
    assert metric_value(text, "pricecast_requests_total") == 0
