"""The OpenAPI document: response models, and request schemas that describe the loaded model.

The predict bodies are validated by hand on the hot path (see :mod:`serving.protocol`), so their
schemas are written here from the loaded model (feature count and names, batch limit, raw-price
history) and patched into FastAPI's generated document. Clients and schemathesis then see the
exact contract this server enforces.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from serving import features as raw_features
from serving import protocol
from serving.lifecycle import ModelHolder
from serving.settings import ServerSettings


class ErrorBody(BaseModel):
    error: str = Field(description="What was wrong.")
    fix: str | None = Field(default=None, description="What to do about it.")


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: str | None = None
    reason: str | None = None


class V1PredictResponse(BaseModel):
    predictions: list[float] = Field(description="Predicted next-day log return per instance.")


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "Malformed JSON.", 404: "Unknown model name or version.", 405: "Method not allowed.",
            413: "Body or batch too large.", 415: "Content type is not JSON.",
            422: "Valid JSON the model cannot take (shape, types, values).",
            500: "Injected fault (tests only) or a server bug.", 503: "No model is loaded."}
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}


PREDICT_RESPONSES = _errors(400, 404, 413, 415, 422, 500, 503)
MODEL_RESPONSES = _errors(404, 503)


def _number() -> dict[str, Any]:
    return {"type": "number"}


def v1_request_schema(features: tuple[str, ...], max_batch: int) -> dict[str, Any]:
    """``{"instances": [...]}``: rows, named objects or raw prices (one kind per request)."""
    n = len(features)
    row = {"type": "array", "items": _number(), "description": "Feature values in the model's order."}
    if n:
        row.update(minItems=n, maxItems=n)
    kinds: list[dict[str, Any]] = [row]
    if n:
        kinds.append({"type": "object", "properties": {f: _number() for f in features},
                      "required": list(features), "additionalProperties": False})
        if raw_features.supported(features):
            lo, hi = raw_features.min_history(), raw_features.MAX_HISTORY
            kinds.append({
                "type": "object", "required": ["ticker", "dates", "prices"], "additionalProperties": False,
                "description": "Recent closes, oldest first; the server computes the features.",
                "properties": {
                    "ticker": {"type": "string", "minLength": 1, "maxLength": 64},
                    "dates": {"type": "array", "items": {"type": "string", "format": "date"},
                              "minItems": lo, "maxItems": hi},
                    "prices": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
                               "minItems": lo, "maxItems": hi},
                }})
    batches = [{"type": "array", "items": kind, "minItems": 1, "maxItems": max_batch} for kind in kinds]
    return {"type": "object", "required": ["instances"],
            "properties": {"instances": {"oneOf": batches} if len(batches) > 1 else batches[0]}}


def v2_request_schema(features: tuple[str, ...], max_batch: int) -> dict[str, Any]:
    """One ``[n, n_features]`` tensor, or one ``[n]``/``[n, 1]`` tensor per feature (named after it)."""
    n = len(features)
    rows = {"type": "integer", "minimum": 1, "maximum": max_batch}
    number = _number()
    data = {"type": "array", "description": "Row-major values, flat or one list per row.",
            "items": {"anyOf": [number, {"type": "array", "items": number}]}}
    datatype = {"type": "string", "enum": sorted(protocol.V2_NUMERIC)}

    def tensor(name: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "required": ["name", "shape", "datatype", "data"],
                "properties": {"name": name, "shape": shape, "datatype": datatype, "data": data}}

    matrix_shape: dict[str, Any] = {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}}
    if n:
        matrix_shape["prefixItems"] = [rows, {"const": n}]
    layouts: list[dict[str, Any]] = [{"type": "array", "minItems": 1, "maxItems": 1,
                                      "items": tensor({"type": "string"}, matrix_shape)}]
    if n:
        column_shape = {"anyOf": [{"type": "array", "prefixItems": [rows], "minItems": 1, "maxItems": 1},
                                  {"type": "array", "prefixItems": [rows, {"const": 1}], "minItems": 2, "maxItems": 2}]}
        layouts.append({"type": "array", "minItems": n, "maxItems": n,
                        "items": tensor({"type": "string", "enum": list(features)}, column_shape)})
    return {"type": "object", "required": ["inputs"],
            "properties": {"id": {"type": "string"}, "inputs": {"anyOf": layouts}}}


def _example(path: str, features: tuple[str, ...]) -> dict[str, Any]:
    """One row of small returns: what a client's first request looks like."""
    row = [0.001] * len(features)
    if path.startswith("/v1/"):
        return {"instances": [row]}
    return {"inputs": [{"name": "input-0", "shape": [1, len(features)], "datatype": "FP64", "data": row}]}


def install(api: FastAPI, settings: ServerSettings, holder: ModelHolder) -> None:
    """Make ``api.openapi()`` describe the loaded model (cached once a model is loaded)."""

    def build() -> dict[str, Any]:
        if api.openapi_schema:
            return api.openapi_schema
        doc = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
        model = holder.model
        feats = model.features if model else ()
        bodies = {"/v1/models/{name}:predict": v1_request_schema(feats, settings.max_batch),
                  "/v2/models/{name}/infer": v2_request_schema(feats, settings.max_batch),
                  "/v2/models/{name}/versions/{version}/infer": v2_request_schema(feats, settings.max_batch)}
        for path, ops in doc.get("paths", {}).items():
            for op in ops.values():
                for param in op.get("parameters", []):
                    if param["in"] == "path" and param["name"] == "name":
                        param["schema"] = {"type": "string", "enum": [settings.model_name]}
                    elif param["in"] == "path" and param["name"] == "version" and model:
                        param["schema"] = {"type": "string", "enum": [model.version]}
            if path in bodies and "post" in ops:
                media: dict[str, Any] = {"schema": bodies[path]}
                if feats:
                    media["example"] = _example(path, feats)
                ops["post"]["requestBody"] = {"required": True, "content": {"application/json": media}}
        if model:
            api.openapi_schema = doc
        return doc

    api.openapi = build  # type: ignore[method-assign]
