"""Assemble the server: settings -> metrics -> model holder -> data plane -> FastAPI + hot path.

``create_app()`` builds an app from settings (tests pass their own); ``app_from_env()`` is the
factory uvicorn calls in each worker process (``pricecast serve``), which also sets up logging.
The model is loaded in the lifespan, before the first request is accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pricecast import __version__
from pricecast.monitoring.drift import LiveDriftMonitor, gauge_sink, reference_profile_from
from pricecast.settings import get_settings
from serving import openapi, routes
from serving.asgi import PricecastApp
from serving.dataplane import DataPlane
from serving.errors import error_body, to_response
from serving.features import frequency_from, outlier_bounds_from
from serving.lifecycle import ModelHolder
from serving.metrics import ServingMetrics
from serving.model import LoadedModel
from serving.settings import ServerSettings, get_server_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Next-day log-return forecasts from the pricecast model registry.

Predict with KServe v1 (`POST /v1/models/{name}:predict`) or the Open Inference Protocol v2
(`POST /v2/models/{name}/infer`). Instances are feature rows (numbers in the model's feature
order, or objects keyed by feature name) or raw recent closes
(`{"ticker", "dates", "prices"}`), from which the server computes the features with the
pipeline's own code. Errors are `{"error": ..., "fix": ...}` with a 4xx status.
"""


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _install_error_handlers(api: FastAPI) -> None:
    """Every FastAPI-side error answers in the same ``{"error", "fix"}`` shape as the hot path."""

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        problem = {404: "No such endpoint.", 405: "This endpoint does not take that method."}.get(
            exc.status_code, str(exc.detail))
        return _json(exc.status_code, error_body(problem, "See /docs for the API."), exc.headers)

    @api.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _json(422, error_body(f"Invalid request at {where}: {first.get('msg', 'invalid')}.",
                                     "See /docs for the expected shape."))

    @api.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        return _json(*to_response(exc))


def create_app(settings: ServerSettings | None = None, store_url: str | None = None) -> PricecastApp:
    """The ASGI app serving ``settings.model_version`` from the store at ``store_url``.

    Args:
        settings: Server settings; default: read from ``PRICECAST_*`` once.
        store_url: Model store; default: ``PRICECAST_STORE_URL`` (pricecast's shared settings).
    """
    settings = settings or get_server_settings()
    metrics = ServingMetrics(settings.track)
    holder = ModelHolder(store_url or get_settings().store_url, settings.model_version, metrics,
                         retry_s=settings.load_retry_s)
    plane = DataPlane(settings, holder, metrics)

    def use_model_metadata(model: LoadedModel) -> None:
        """What train stored with this version, read and verified with the model (its sha256 is
        in the registry): the live drift profile (watch live inputs against it), the outlier
        bounds (clip raw prices as training did, no skew) and the frequency (raw prices must be
        spaced at it).

        Runs before the model is published; an unreadable or tampered metadata file already
        failed the load (retried). Nothing is set until everything is read, so a retry starts clean.
        """
        bounds = outlier_bounds_from(model.metadata, model.version)
        frequency = frequency_from(model.metadata, model.version)
        profile = reference_profile_from(model.metadata, model.version)
        monitor = None
        if profile and settings.drift_window:
            monitor = LiveDriftMonitor(profile, model.features, window=settings.drift_window,
                                       every=settings.drift_every,
                                       sink=gauge_sink(metrics.drift_score, model.version, settings.track))
        plane.outlier_bounds = bounds
        plane.frequency = frequency
        if monitor is not None:
            plane.input_observers.append(monitor.observe)

    holder.before_publish.append(use_model_metadata)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.try_load()  # before the first request: readiness is known when serving starts
        retry = asyncio.create_task(holder.retry_until_loaded()) if not holder.ready else None
        try:
            yield
        finally:
            if retry is not None:
                retry.cancel()
            metrics.process_exit()

    api = FastAPI(title="pricecast model server", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    api.state.settings = settings
    api.state.plane = plane
    api.state.metrics = metrics
    api.state.holder = holder
    for router in (routes.health, routes.v1, routes.v2, routes.ops):
        api.include_router(router)
    _install_error_handlers(api)
    openapi.install(api, settings, holder)
    return PricecastApp(api, plane, metrics)


def app_from_env() -> PricecastApp:
    """uvicorn's factory in every worker: logging, then the app from ``PRICECAST_*``."""
    from prometheus_client import disable_created_metrics

    from pricecast.logs import configure

    configure("serve")
    disable_created_metrics()  # *_created series double the scrape and no dashboard uses them
    settings = get_server_settings()
    log.info("starting model server: model %s version %s track %s store %s", settings.model_name,
             settings.model_version, settings.track, get_settings().store_url)
    return create_app(settings)
