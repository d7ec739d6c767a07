"""The data plane: a request body in, a status and a response body out; no routes, no ASGI.

Both the raw ASGI hot path (:mod:`serving.asgi`) and the documented FastAPI routes call these
methods, so the two can never disagree. Errors become responses in one place
(:func:`serving.errors.to_response`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pricecast.frequency import Frequency
from serving import features, protocol
from serving.errors import (
    InjectedFaultError,
    InvalidInputError,
    ModelNotReadyError,
    UnknownModelError,
    UnsupportedMediaTypeError,
    to_response,
)
from serving.lifecycle import ModelHolder
from serving.metrics import ServingMetrics
from serving.model import LoadedModel
from serving.settings import ServerSettings


class FaultInjector:
    """TEST ONLY: added latency and a deterministic share of 500s (every request at which
    ``floor(n * rate)`` steps up), so a 10 % rate fails exactly one predict in ten."""

    def __init__(self, latency_ms: float, error_rate: float) -> None:
        self.latency_s = latency_ms / 1000.0
        self.error_rate = error_rate
        self.count = 0
        self.enabled = latency_ms > 0 or error_rate > 0

    async def apply(self) -> None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.error_rate:
            self.count += 1
            if math.floor(self.count * self.error_rate) > math.floor((self.count - 1) * self.error_rate):
                raise InjectedFaultError("Injected fault (PRICECAST_FAULT_ERROR_RATE is set).",
                                         "Unset PRICECAST_FAULT_* outside of tests.")


def is_json(content_type: str | None) -> bool:
    """JSON or no content type at all (curl-style clients often omit it)."""
    if not content_type or content_type == "application/json":
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class DataPlane:
    """Predict and infer for the model a :class:`ModelHolder` holds."""

    def __init__(self, settings: ServerSettings, holder: ModelHolder, metrics: ServingMetrics) -> None:
        self.name = settings.model_name
        self.max_batch = settings.max_batch
        self.max_body_bytes = settings.max_body_bytes
        self.holder = holder
        self.metrics = metrics
        self.faults = FaultInjector(settings.fault_latency_ms, settings.fault_error_rate)
        # Hooks that see every accepted batch of input rows (float64, model feature order), e.g.
        # the live drift monitor (issue 6): ``plane.input_observers.append(monitor.observe)``.
        self.input_observers: list[Callable[[np.ndarray], None]] = []
        # The loaded version's clipping bounds per ticker, for raw-price instances (set on load).
        self.outlier_bounds: dict[str, Any] | None = None
        # ... and its frequency: raw-price dates must be spaced at it (set on load).
        self.frequency = Frequency.BUSINESS

    def check_request(self, name: str, content_type: str | None, version: str | None = None) -> LoadedModel:
        """What can be refused before reading the body: content type, model name, readiness."""
        if not is_json(content_type):
            raise UnsupportedMediaTypeError(f"Content-Type {content_type!r} is not JSON.",
                                            "Send the body as JSON with Content-Type: application/json.")
        if name != self.name:
            raise UnknownModelError(f"This server serves model {self.name!r}, not {name!r}.",
                                    f"Use /v1/models/{self.name}:predict or /v2/models/{self.name}/infer.")
        model = self.holder.model
        if model is None:
            raise ModelNotReadyError(f"No model is loaded: {self.holder.reason}", "Retry when /readyz answers 200.")
        if version is not None and version != model.version:
            raise UnknownModelError(f"This server serves version {model.version!r} of {self.name!r}, not {version!r}.",
                                    f"Use /v2/models/{self.name}/infer or name version {model.version}.")
        return model

    def _predict(self, model: LoadedModel, rows: np.ndarray) -> np.ndarray:
        predictions = model.predict(rows)
        # Inputs are finite (JSON has no NaN/Infinity) but extreme ones can still overflow.
        finite = math.isfinite(predictions[0]) if predictions.size == 1 else np.isfinite(predictions).all()
        if not finite:
            raise InvalidInputError("Some inputs are so large that the prediction overflows.",
                                    "Check the feature values' units; they are returns and ratios.")
        self.metrics.record_predictions(predictions)
        for observe in self.input_observers:
            observe(rows)
        return predictions

    async def _run(self, name: str, content_type: str | None, body: bytes,
                   work: Callable[[LoadedModel, bytes], bytes], version: str | None = None) -> tuple[int, bytes]:
        try:
            model = self.check_request(name, content_type, version)
            if self.faults.enabled:
                await self.faults.apply()
            return 200, work(model, body)
        except Exception as exc:  # noqa: BLE001 - mapped to a response in one place
            return to_response(exc)

    def raw_rows(self, instances: list[Any], columns: Sequence[str]) -> np.ndarray:
        """Feature rows from raw-price instances, clipped with the loaded version's bounds."""
        return features.raw_rows(instances, columns, self.outlier_bounds, self.frequency)

    def _v1(self, model: LoadedModel, body: bytes) -> bytes:
        rows = protocol.decode_v1(body, model.features, self.max_batch, self.raw_rows)
        return protocol.encode_v1(self._predict(model, rows))

    def _v2(self, model: LoadedModel, body: bytes) -> bytes:
        rows, request_id = protocol.decode_v2(body, model.features, self.max_batch)
        return protocol.encode_v2(self._predict(model, rows), self.name, model.version, request_id)

    async def v1_predict(self, name: str, content_type: str | None, body: bytes) -> tuple[int, bytes]:
        """``POST /v1/models/{name}:predict``."""
        return await self._run(name, content_type, body, self._v1)

    async def v2_infer(self, name: str, content_type: str | None, body: bytes,
                       version: str | None = None) -> tuple[int, bytes]:
        """``POST /v2/models/{name}[/versions/{version}]/infer``."""
        return await self._run(name, content_type, body, self._v2, version)
