"""Fixtures of the ingest tests: a real scripted HTTP server (the isolated store is the root conftest's)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/csv"
    delay_s: float = 0.0


@dataclass
class ScriptedServer:
    """Answers request i with replies[i] (the last reply repeats) and records when each came."""

    url: str
    replies: list[Reply]
    hits: list[float] = field(default_factory=list)


@pytest.fixture
def http_server() -> Iterator[Callable[..., ScriptedServer]]:
    """Start a real HTTP server on 127.0.0.1 (port 0) with a scripted list of replies."""
    servers: list[ThreadingHTTPServer] = []

    def start(*replies: Reply, path: str = "/prices") -> ScriptedServer:
        script = ScriptedServer("", list(replies))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                script.hits.append(time.monotonic())
                reply = script.replies[min(len(script.hits), len(script.replies)) - 1]
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left, as intended by the timeout test

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        script.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        return script

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
