"""FastAPI routes: health, model metadata (v1 and v2), metrics, and the documented predict routes.

The predict routes here are what the OpenAPI document shows; at run time :mod:`serving.asgi`
answers those requests before FastAPI sees them, through the same :class:`DataPlane` methods,
so these handlers only serve requests that reach the FastAPI app directly.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.convertors import StringConvertor, register_url_convertor

from pricecast import __version__
from serving import features as raw_features
from serving import protocol
from serving.dataplane import DataPlane
from serving.errors import body_too_large, to_response
from serving.metrics import ServingMetrics
from serving.openapi import (
    MODEL_RESPONSES,
    PREDICT_RESPONSES,
    Liveness,
    Readiness,
    V1PredictResponse,
    V2InferResponse,
)


class ModelNameConvertor(StringConvertor):
    """A model name has no ':' so that ``/v1/models/{name}`` never swallows ``NAME:predict``."""

    regex = "[^/:]+"


register_url_convertor("model", ModelNameConvertor())


async def _plane(request: Request) -> DataPlane:  # async: sync dependencies run in a thread pool
    return request.app.state.plane


async def _metrics(request: Request) -> ServingMetrics:
    return request.app.state.metrics


PlaneDep = Annotated[DataPlane, Depends(_plane)]
MetricsDep = Annotated[ServingMetrics, Depends(_metrics)]

health = APIRouter(tags=["health"])
v1 = APIRouter(tags=["v1 (KServe)"])
v2 = APIRouter(tags=["v2 (Open Inference Protocol)"])
ops = APIRouter(tags=["operations"])


def _json(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _too_large(plane: DataPlane) -> Response:
    return _json(*to_response(body_too_large(plane.max_body_bytes)))


def _model_or_error(plane: DataPlane, name: str) -> Any:
    """The loaded model, or the error response (404 unknown name, 503 not ready)."""
    try:
        return plane.check_request(name, None)
    except Exception as exc:  # noqa: BLE001 - mapped to a response in one place
        return _json(*to_response(exc))


# --------------------------------------------------------------------------- health
@health.get("/healthz", response_model=Liveness, summary="Liveness: the process answers.")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@health.get("/readyz", response_model=Readiness, response_model_exclude_none=True,
            responses={503: {"model": Readiness}},
            summary="Readiness: a verified model is loaded.")
async def readyz(plane: PlaneDep) -> Any:
    model = plane.holder.model
    if model is None:
        return JSONResponse({"status": "not ready", "reason": plane.holder.reason}, status_code=503)
    return {"status": "ready", "model_version": model.version}


@health.get("/v2/health/live", summary="OIP server liveness.")
async def v2_live() -> dict[str, bool]:
    return {"live": True}


@health.get("/v2/health/ready", responses={503: {"description": "No model loaded."}}, summary="OIP server readiness.")
async def v2_ready(plane: PlaneDep) -> Any:
    ready = plane.holder.ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@health.get("/v2", summary="OIP server metadata.")
async def v2_server() -> dict[str, Any]:
    return {"name": "pricecast", "version": __version__, "extensions": []}


# --------------------------------------------------------------------------- v1
@v1.get("/v1/models", summary="The models this server serves.")
async def v1_models(plane: PlaneDep) -> dict[str, list[str]]:
    return {"models": [plane.name]}


@v1.get("/v1/models/{name:model}", responses=MODEL_RESPONSES, summary="Model status, version and inputs.")
async def v1_model(name: str, plane: PlaneDep) -> Any:
    model = _model_or_error(plane, name)
    if isinstance(model, Response):
        return model
    return {"name": plane.name, "ready": True, "version": model.version, "sha256": model.sha256,
            "trained_at": model.trained_at, "features": list(model.features),
            "raw_prices": {"supported": raw_features.supported(model.features),
                           "min_history": raw_features.min_history(), "max_history": raw_features.MAX_HISTORY},
            "max_batch": plane.max_batch}


@v1.post("/v1/models/{name:model}:predict", response_model=V1PredictResponse, responses=PREDICT_RESPONSES,
         summary="Predict next-day log returns (KServe v1).")
async def v1_predict(name: str, request: Request, plane: PlaneDep) -> Response:
    body = await request.body()
    if len(body) > plane.max_body_bytes:
        return _too_large(plane)
    return _json(*await plane.v1_predict(name, request.headers.get("content-type"), body))


# --------------------------------------------------------------------------- v2
@v2.get("/v2/models/{name:model}", responses=MODEL_RESPONSES, summary="OIP model metadata.")
async def v2_model(name: str, plane: PlaneDep) -> Any:
    model = _model_or_error(plane, name)
    if isinstance(model, Response):
        return model
    return protocol.v2_model_metadata(plane.name, model.version, model.features)


@v2.get("/v2/models/{name:model}/ready", responses=MODEL_RESPONSES, summary="OIP model readiness.")
async def v2_model_ready(name: str, plane: PlaneDep) -> Any:
    model = _model_or_error(plane, name)
    if isinstance(model, Response):
        return model
    return {"name": plane.name, "ready": True}


@v2.post("/v2/models/{name:model}/infer", response_model=V2InferResponse, responses=PREDICT_RESPONSES,
         summary="Predict next-day log returns (Open Inference Protocol v2).")
async def v2_infer(name: str, request: Request, plane: PlaneDep) -> Response:
    body = await request.body()
    if len(body) > plane.max_body_bytes:
        return _too_large(plane)
    return _json(*await plane.v2_infer(name, request.headers.get("content-type"), body))


@v2.post("/v2/models/{name:model}/versions/{version}/infer", response_model=V2InferResponse,
         responses=PREDICT_RESPONSES, summary="OIP infer on a named version (must be the loaded one).")
async def v2_infer_version(name: str, version: str, request: Request, plane: PlaneDep) -> Response:
    body = await request.body()
    if len(body) > plane.max_body_bytes:
        return _too_large(plane)
    return _json(*await plane.v2_infer(name, request.headers.get("content-type"), body, version))


# --------------------------------------------------------------------------- operations
@ops.get("/metrics", response_class=Response, summary="Prometheus metrics (all workers).",
         responses={200: {"content": {"text/plain": {}}}})
async def metrics(metrics: MetricsDep) -> Response:
    payload, content_type = metrics.exposition()
    return Response(payload, media_type=content_type)
