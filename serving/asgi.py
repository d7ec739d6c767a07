"""The ASGI entry point: predict requests on a raw hot path, everything else through FastAPI.

Profiling a plain FastAPI predict route showed most of its time in the framework (middleware
stack, routing regexes, request object, dependency resolution, response classes), not in the
model. So the two predict paths are matched here with two string tests and served straight
from :class:`~serving.dataplane.DataPlane`; FastAPI still owns them for the OpenAPI document
and for any request the hot path does not take (other methods, odd paths), and serves every
other endpoint. Every request, hot or not, is timed and counted here, once.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from fastapi import FastAPI

from serving.dataplane import DataPlane
from serving.errors import body_too_large, to_response
from serving.metrics import ServingMetrics

V1_PREFIX, V1_SUFFIX = "/v1/models/", ":predict"
V2_PREFIX, V2_SUFFIX = "/v2/models/", "/infer"
V1_ENDPOINT = "/v1/models/{name}:predict"
V2_ENDPOINT = "/v2/models/{name}/infer"
UNMATCHED = "unmatched"
JSON_HEADERS = (b"content-type", b"application/json")


class _BodyTooLarge(Exception):
    pass


async def _read_body(receive: Any, limit: int) -> bytes:
    """The whole request body, refusing to buffer more than ``limit`` bytes."""
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _BodyTooLarge
        return body
    chunks, size = [body], len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _split_v2(rest: str) -> tuple[str, str | None] | None:
    """``NAME`` or ``NAME/versions/VERSION`` -> (name, version); anything else -> None."""
    if "/" not in rest:
        return rest, None
    parts = rest.split("/")
    if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        return parts[0], parts[2]
    return None


class PricecastApp:
    """What uvicorn runs. ``api`` is the FastAPI app; ``plane`` and ``metrics`` are shared with it."""

    def __init__(self, api: FastAPI, plane: DataPlane, metrics: ServingMetrics) -> None:
        self.api = api
        self.plane = plane
        self.metrics = metrics
        self.max_body_bytes = plane.max_body_bytes
        self.in_flight = metrics.in_flight_now

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan (model load) and anything else: FastAPI
            await self.api(scope, receive, send)
            return
        if scope["method"] == "POST":
            path: str = scope["path"]
            if path.endswith(V1_SUFFIX) and path.startswith(V1_PREFIX):
                name = path[len(V1_PREFIX):-len(V1_SUFFIX)]
                if name and "/" not in name:
                    await self._predict(scope, receive, send, V1_ENDPOINT, name, None)
                    return
            elif path.endswith(V2_SUFFIX) and path.startswith(V2_PREFIX):
                target = _split_v2(path[len(V2_PREFIX):-len(V2_SUFFIX)])
                if target is not None and target[0]:
                    await self._predict(scope, receive, send, V2_ENDPOINT, *target)
                    return
        await self._framework(scope, receive, send)

    async def _predict(self, scope: dict[str, Any], receive: Any, send: Any, endpoint: str,
                       name: str, version: str | None) -> None:
        started = perf_counter()
        self.in_flight.inc()
        status = 500
        try:
            content_type = None
            declared = 0
            for key, value in scope["headers"]:
                if key == b"content-type":
                    content_type = value.decode("latin-1")
                elif key == b"content-length":
                    declared = int(value) if value.isdigit() else 0
            try:
                if declared > self.max_body_bytes:
                    raise _BodyTooLarge
                body = await _read_body(receive, self.max_body_bytes)
            except _BodyTooLarge:
                status, payload = to_response(body_too_large(self.max_body_bytes))
            else:
                if endpoint == V1_ENDPOINT:
                    status, payload = await self.plane.v1_predict(name, content_type, body)
                else:
                    status, payload = await self.plane.v2_infer(name, content_type, body, version)
            await send({"type": "http.response.start", "status": status,
                        "headers": [JSON_HEADERS, (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
        finally:
            self.in_flight.dec()
            self.metrics.record_request(endpoint, status, perf_counter() - started)

    async def _framework(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = perf_counter()
        self.in_flight.inc()
        status = 500

        async def send_and_watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.api(scope, receive, send_and_watch)
        finally:
            self.in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path_format", None) or getattr(route, "path", UNMATCHED)
            self.metrics.record_request(endpoint, status, perf_counter() - started)
