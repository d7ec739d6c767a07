"""The server's Prometheus metrics, in one place, cheap enough for the hot path.

Names follow ``pricecast_<what>_<unit>``; the labels that matter are the model version and the
track (stable/canary), so canary analysis can compare the two. With several uvicorn workers
the values live in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, chosen
when that variable is set before prometheus_client is imported) and ``/metrics`` aggregates
every worker; with one worker they stay in memory.

Per request the hot path pays one dict lookup (label children are cached per label set), a
counter increment and a histogram observation. Batch predictions are observed with
:func:`observe_many`, one numpy pass instead of one Python call per row.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from pricecast.monitoring.drift import drift_gauge

NO_MODEL = "none"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Next-day log returns: a few basis points to ±10 %, symmetric around zero.
PREDICTION_BUCKETS = (-0.1, -0.05, -0.02, -0.01, -0.005, -0.002, -0.001, 0.0,
                      0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
STATUS_CLASSES = ("2xx", "4xx", "5xx")


def multiprocess_mode() -> bool:
    """True when values are shared through ``PROMETHEUS_MULTIPROC_DIR`` (several workers)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def observe_one(child: Histogram, value: float) -> None:
    """``child.observe(value)`` without its per-call checks and Python loop over the buckets.

    Same internals as :func:`observe_many` (a test checks the exposition is identical).
    """
    child._sum.inc(value)  # noqa: SLF001
    child._buckets[bisect_left(child._upper_bounds, value)].inc(1)  # noqa: SLF001


def observe_many(child: Histogram, values: np.ndarray) -> None:
    """Observe every value of ``values`` in ``child`` with one numpy pass.

    prometheus-client has no bulk observe; calling ``observe`` per row would cost more than the
    prediction itself for a 256-row batch. This adds the same per-bucket counts and sum that
    ``observe`` would (a test checks both give identical exposition). It relies on the
    histogram's ``_upper_bounds``/``_buckets``/``_sum`` (non-cumulative buckets), stable since
    prometheus-client 0.4.
    """
    if values.size == 0:
        return
    bounds = child._upper_bounds  # noqa: SLF001 - see docstring
    # observe() increments the first bucket whose bound >= value: searchsorted(side="left").
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds)).tolist()
    for bucket, count in zip(child._buckets, counts, strict=True):  # noqa: SLF001
        if count:
            bucket.inc(count)
    child._sum.inc(float(values.sum()))  # noqa: SLF001


@dataclass(frozen=True)
class _RequestSeries:
    count: Any
    duration: Any


class ServingMetrics:
    """Every metric of one server process, with label children cached per label set."""

    def __init__(self, track: str, registry: CollectorRegistry | None = None) -> None:
        self.track = track
        self.multiprocess = multiprocess_mode()
        # A fresh registry per app: tests get clean values, and in multiprocess mode values go
        # to the shared files whatever registry the metrics are attached to.
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter("pricecast_requests", "HTTP requests answered.",
                                ["endpoint", "status_class", "model_version", "track"], registry=reg)
        self.duration = Histogram("pricecast_request_duration_seconds",
                                  "Time from request start to the last response byte, in the app.",
                                  ["endpoint", "model_version", "track"], buckets=LATENCY_BUCKETS, registry=reg)
        self.predictions = Histogram("pricecast_prediction_value", "Predicted next-day log returns.",
                                     ["model_version", "track"], buckets=PREDICTION_BUCKETS, registry=reg)
        self.model_info = Gauge("pricecast_model_info", "The loaded model (value 1).",
                                ["model_version", "sha256", "trained_at", "track"],
                                multiprocess_mode="livemax", registry=reg)
        self.load_failures = Counter("pricecast_model_load_failures", "Model loads that failed, by reason.",
                                     ["reason", "track"], registry=reg)
        self.in_flight = Gauge("pricecast_requests_in_flight", "Requests being handled now.",
                               ["track"], multiprocess_mode="livesum", registry=reg)
        # Live-input drift (PSI per feature against the model's training profile): the highest
        # value across workers, set by pricecast.monitoring.drift.LiveDriftMonitor through gauge_sink.
        self.drift_score = drift_gauge(reg)
        self.in_flight_now = self.in_flight.labels(track)
        self.model_version = NO_MODEL
        self._series: dict[tuple[str, int], _RequestSeries] = {}
        self._prediction_child = self.predictions.labels(NO_MODEL, track)

    # ------------------------------------------------------------------ model lifecycle
    def model_loaded(self, version: str, sha256: str, trained_at: str, endpoints: tuple[str, ...]) -> None:
        """Switch the version label and publish model info; pre-create the request series."""
        self.model_version = version
        self._series.clear()
        self._prediction_child = self.predictions.labels(version, self.track)
        self.model_info.labels(version, sha256, trained_at, self.track).set(1)
        # Zero-valued series exist before the first error, so error-ratio queries return 0, not nothing.
        for endpoint in endpoints:
            for status in (200, 400, 500):
                self._get(endpoint, status)

    def load_failed(self, reason: str) -> None:
        self.load_failures.labels(reason, self.track).inc()

    # ------------------------------------------------------------------ per request
    def _get(self, endpoint: str, status: int) -> _RequestSeries:
        key = (endpoint, status // 100)
        series = self._series.get(key)
        if series is None:
            status_class = f"{status // 100}xx"
            series = _RequestSeries(
                self.requests.labels(endpoint, status_class, self.model_version, self.track),
                self.duration.labels(endpoint, self.model_version, self.track),
            )
            self._series[key] = series
        return series

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        series = self._series.get((endpoint, status // 100)) or self._get(endpoint, status)
        series.count.inc()
        observe_one(series.duration, seconds)

    def record_predictions(self, values: np.ndarray) -> None:
        if values.size == 1:
            observe_one(self._prediction_child, float(values[0]))
        else:
            observe_many(self._prediction_child, values)

    # ------------------------------------------------------------------ exposition
    def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric (of every worker, in multiprocess mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def process_exit(self) -> None:
        """Drop this worker's live gauges (in-flight, model info) from the shared files."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())
