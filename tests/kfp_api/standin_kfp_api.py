"""A stand-in for the KFP v2beta1 REST API, on 127.0.0.1: no KFP API server can run here.

It implements only what ``kfp.Client`` calls for ``pricecast submit``, ``schedule`` and
``check run-time --host`` --
healthz, list/upload pipelines and versions, list/create experiments, create/list/get runs,
list/create/delete recurring runs -- with the response shapes of KFP 2.x (snake_case fields as the API
server emits them), keeps the objects in memory, and records every request so tests can assert
what was sent: the uploaded YAML, the run's parameters, the schedule's cron.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.parser
import email.policy
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    json: Any = None
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)


class StandinKfpApi(http.server.ThreadingHTTPServer):
    """State: pipelines, versions, experiments, runs and recurring runs, all in memory."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Recorded] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def calls(self, method: str, path_suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _id() -> str:
    return str(uuid.uuid4())


def _matches(obj: dict, filter_json: str | None) -> bool:
    """KFP's filter protobuf, as JSON: only EQUALS predicates on string fields are needed."""
    if not filter_json:
        return True
    for predicate in json.loads(filter_json).get("predicates", []):
        if predicate.get("operation") not in ("EQUALS", 1):  # protobuf JSON: enum name or number
            raise ValueError(f"stand-in supports EQUALS filters only, got {predicate}")
        if obj.get(predicate["key"]) != predicate.get("stringValue", predicate.get("string_value")):
            return False
    return True


class _Handler(http.server.BaseHTTPRequestHandler):
    server: StandinKfpApi

    def log_message(self, *args: object) -> None:
        pass

    # ------------------------------------------------------------------ plumbing
    def _record(self) -> Recorded:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Recorded(self.command, url.path, query)
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            for part in message.iter_parts():
                rec.files[part.get_param("name", header="content-disposition")] = part.get_payload(decode=True)
        elif body:
            rec.json = json.loads(body)
        with self.server.lock:
            self.server.requests.append(rec)
        return rec

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self) -> None:
        try:
            self._route()
        except Exception as exc:  # noqa: BLE001 - a stand-in bug must show up as a response
            self._send(500, {"error": f"stand-in failed: {exc!r}", "code": 13})

    def _route(self) -> None:
        rec = self._record()
        path = rec.path.removeprefix(API)
        route = (rec.method, path)
        s = self.server
        with s.lock:
            if route == ("GET", "/healthz"):
                return self._send(200, {"multi_user": False, "pipeline_store": "database"})
            if route == ("GET", "/pipelines"):
                found = [p for p in s.pipelines.values() if _matches(p, rec.query.get("filter"))]
                return self._send(200, {"pipelines": found, "total_size": len(found)} if found else {})
            if route == ("POST", "/pipelines/upload"):
                name = rec.query["name"]
                if any(p["display_name"] == name for p in s.pipelines.values()):
                    return self._send(409, {"error": f"pipeline {name} already exists", "code": 6})
                pid = _id()
                s.pipelines[pid] = {"pipeline_id": pid, "display_name": name, "name": name,
                                    "description": rec.query.get("description", ""), "created_at": _now()}
                s.versions[pid] = [self._version(pid, name, rec)]
                return self._send(200, s.pipelines[pid])
            if route == ("POST", "/pipelines/upload_version"):
                pid = rec.query["pipelineid"]
                if pid not in s.pipelines:
                    return self._send(404, {"error": f"pipeline {pid} not found", "code": 5})
                version = self._version(pid, rec.query["name"], rec)
                s.versions[pid].append(version)
                return self._send(200, version)
            if rec.method == "GET" and path.startswith("/pipelines/") and path.endswith("/versions"):
                pid = path.split("/")[2]
                found = [v for v in s.versions.get(pid, []) if _matches(v, rec.query.get("filter"))]
                if rec.query.get("sort_by") == "created_at desc":
                    found = found[::-1]
                found = found[: int(rec.query.get("page_size") or len(found) or 1)]
                return self._send(200, {"pipeline_versions": found, "total_size": len(found)} if found else {})
            if route == ("GET", "/experiments"):
                found = [e for e in s.experiments.values() if _matches(e, rec.query.get("filter"))]
                return self._send(200, {"experiments": found, "total_size": len(found)} if found else {})
            if route == ("POST", "/experiments"):
                eid = _id()
                s.experiments[eid] = {**rec.json, "experiment_id": eid, "created_at": _now(), "storage_state": "AVAILABLE"}
                return self._send(200, s.experiments[eid])
            if route == ("POST", "/runs"):
                rid = _id()
                s.runs[rid] = {**rec.json, "run_id": rid, "state": "PENDING", "created_at": _now()}
                return self._send(200, s.runs[rid])
            if route == ("GET", "/runs"):
                found = [r for r in s.runs.values()
                         if r.get("experiment_id") == rec.query.get("experiment_id", r.get("experiment_id"))]
                if rec.query.get("sort_by") == "created_at desc":
                    found = sorted(found, key=lambda r: r["created_at"], reverse=True)
                found = found[: int(rec.query.get("page_size") or len(found) or 1)]
                return self._send(200, {"runs": found, "total_size": len(found)} if found else {})
            if rec.method == "GET" and path.startswith("/runs/"):
                run = s.runs.get(path.rsplit("/", 1)[1])
                return self._send(200, run) if run else self._send(404, {"error": "run not found", "code": 5})
            if route == ("GET", "/recurringruns"):
                found = [r for r in s.recurring_runs.values()
                         if r.get("experiment_id") == rec.query.get("experiment_id", r.get("experiment_id"))
                         and _matches(r, rec.query.get("filter"))]
                return self._send(200, {"recurringRuns": found, "total_size": len(found)} if found else {})
            if route == ("POST", "/recurringruns"):
                rid = _id()
                s.recurring_runs[rid] = {**rec.json, "recurring_run_id": rid, "status": "ENABLED", "created_at": _now()}
                return self._send(200, s.recurring_runs[rid])
            if rec.method == "DELETE" and path.startswith("/recurringruns/"):
                s.recurring_runs.pop(path.rsplit("/", 1)[1], None)
                return self._send(200, {})
        return self._send(404, {"error": f"stand-in does not implement {rec.method} {rec.path}", "code": 12})

    def _version(self, pid: str, name: str, rec: Recorded) -> dict:
        return {"pipeline_id": pid, "pipeline_version_id": _id(), "display_name": name, "name": name,
                "created_at": _now(), "package_url": {"pipeline_url": ""},
                "description": rec.query.get("description", "")}

    do_GET = do_POST = do_DELETE = _dispatch


@contextlib.contextmanager
def standin_kfp_api() -> Iterator[StandinKfpApi]:
    """Serve the stand-in in a thread for the duration of the block."""
    server = StandinKfpApi()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
