"""A stand-in exporter with the server's metric names, for fast tests of queries and analysis.

It is a real prometheus-client HTTP exporter on 127.0.0.1 (Prometheus scrapes it for real); only
the traffic is simulated: :meth:`Track.serve` records requests as the server would, with a chosen
error rate and latency. The end-to-end tests use the real server instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PREDICT_ENDPOINT = "/v1/models/pricecast:predict"


@dataclass
class Track:
    """One track's metrics, exported on its own port like one server pod."""

    track: str
    model_version: str
    error_rate: float = 0.0
    latency_s: float = 0.002
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        reg = self.registry
        self.requests = Counter("pricecast_requests", "Requests.", ["endpoint", "status_class", "model_version", "track"], registry=reg)
        self.duration = Histogram("pricecast_request_duration_seconds", "Latency.", ["endpoint", "model_version", "track"],
                                  buckets=LATENCY_BUCKETS, registry=reg)
        self.predictions = Histogram("pricecast_prediction_value", "Predictions.", ["model_version", "track"], registry=reg)
        Gauge("pricecast_model_info", "Model.", ["model_version", "sha256", "trained_at", "track"], registry=reg) \
            .labels(self.model_version, "0" * 64, "2025-01-01T00:00:00Z", self.track).set(1)
        Counter("pricecast_model_load_failures", "Load failures.", ["reason", "track"], registry=reg).labels("none", self.track)
        Gauge("pricecast_requests_in_flight", "In flight.", ["track"], registry=reg).labels(self.track).set(1)
        Gauge("pricecast_drift_score", "Drift.", ["feature", "model_version", "track"], registry=reg) \
            .labels("return_1d", self.model_version, self.track).set(0.05)
        self._errors_owed = 0.0
        for status_class in ("2xx", "4xx", "5xx"):
            self.requests.labels(PREDICT_ENDPOINT, status_class, self.model_version, self.track)

    def serve(self, n: int) -> None:
        """Record ``n`` predict requests with this track's error rate and latency."""
        self._errors_owed += n * self.error_rate
        errors = int(self._errors_owed)
        self._errors_owed -= errors
        labels = (PREDICT_ENDPOINT, self.model_version, self.track)
        self.requests.labels(PREDICT_ENDPOINT, "2xx", self.model_version, self.track).inc(n - errors)
        self.requests.labels(PREDICT_ENDPOINT, "5xx", self.model_version, self.track).inc(errors)
        self.requests.labels("/metrics", "2xx", self.model_version, self.track).inc()
        for _ in range(n):
            self.duration.labels(*labels).observe(self.latency_s)
            self.predictions.labels(self.model_version, self.track).observe(0.001)


@contextlib.contextmanager
def exporters(*tracks: Track, rate_per_s: float = 200.0) -> Iterator[list[str]]:
    """Export each track on its own port and feed it traffic until the block ends; yield targets."""
    servers, targets = [], []
    stop = threading.Event()
    for track in tracks:
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=track.registry)
        servers.append(server)
        targets.append(f"127.0.0.1:{server.server_port}")

    def traffic() -> None:
        tick = 0.05
        while not stop.is_set():
            for track in tracks:
                track.serve(max(1, int(rate_per_s * tick)))
            stop.wait(tick)

    feeder = threading.Thread(target=traffic, name="standin-traffic", daemon=True)
    feeder.start()
    try:
        yield targets
    finally:
        stop.set()
        feeder.join(timeout=5)
        for server in servers:
            server.shutdown()
            server.server_close()

