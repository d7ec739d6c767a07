"""Readiness follows the model: load at start-up, retry while not ready, never swap a loaded model.

A failed load leaves the server alive and not ready (``/readyz`` answers 503 with the reason),
writes one clear log line and counts ``pricecast_model_load_failures_total{reason}``. While not
ready the holder retries every ``PRICECAST_LOAD_RETRY_S`` seconds, so a server started before
the pipeline's first promotion becomes ready once the registry has a model. Once a model is
loaded it stays: a version change is a new rollout (the version lives in the pod template).

A model is published (ready, in the metrics) only after everything it is served with is set:
the ``before_publish`` hooks (the training run's outlier bounds and drift profile from its
metadata) run first, and a hook that fails makes the whole load fail and be retried. A server
that answered ready while a store blip hid the bounds would clip raw prices differently from
training for the life of the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from serving.metrics import ServingMetrics
from serving.model import LoadedModel, describe_failure, failure_reason, load_model

log = logging.getLogger(__name__)

# Endpoints whose request series are created with zeros as soon as a model is loaded.
PREDICT_ENDPOINTS = ("/v1/models/{name}:predict", "/v2/models/{name}/infer")


class ModelHolder:
    """The one loaded model of this process, or why there is none."""

    def __init__(self, store_url: str, pin: str, metrics: ServingMetrics, retry_s: float = 0.0) -> None:
        self.store_url = store_url
        self.pin = pin
        self.metrics = metrics
        self.retry_s = retry_s
        self.model: LoadedModel | None = None
        self.reason = "The model has not been loaded yet."
        self.attempts = 0
        # Called with the loaded model before it is published; raising fails the load (retried).
        self.before_publish: list[Callable[[LoadedModel], None]] = []

    @property
    def ready(self) -> bool:
        return self.model is not None

    def try_load(self) -> bool:
        """Load the pinned version once; on failure keep the reason and count it."""
        if self.model is not None:
            return True
        self.attempts += 1
        try:
            model = load_model(self.store_url, self.pin)
            for prepare in self.before_publish:
                prepare(model)
        except Exception as exc:  # noqa: BLE001 - every failure must leave us alive and not ready
            reason = failure_reason(exc)
            self.reason = describe_failure(exc)
            self.metrics.load_failed(reason)
            log.error("model load failed (%s, attempt %d, store %s, version %s): %s",
                      reason, self.attempts, self.store_url, self.pin, self.reason,
                      exc_info=reason == "error")
            return False
        self.model = model
        self.reason = ""
        self.metrics.model_loaded(model.version, model.sha256, model.trained_at, PREDICT_ENDPOINTS)
        log.info("serving model %s (sha256 %s…, %d features, trained %s) loaded in %.3fs",
                 model.version, model.sha256[:12], model.n_features, model.trained_at, model.load_seconds)
        return True

    async def retry_until_loaded(self) -> None:
        """Background task: retry the load while not ready (no-op when ``retry_s`` is 0)."""
        while self.retry_s > 0 and self.model is None:
            await asyncio.sleep(self.retry_s)
            await asyncio.to_thread(self.try_load)
