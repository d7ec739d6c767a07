"""An HTTP proxy on 127.0.0.1 in front of a real S3 server that fails the first N requests.

Real object stores answer ``503 Service Unavailable`` while they restart or shed load (a
SeaweedFS pod rolling, a load balancer with no ready backend). SeaweedFS cannot be asked to do
that on cue, so this proxy does it: the first ``fail_first`` requests get a 503 with an S3 error
body, every later request is forwarded byte for byte (the Host header included, so SigV4
signatures stay valid) to the real server.

``drop_reply`` adds the other fault of a network between client and store: a request that
reaches the store and is applied, but whose reply never comes back (the connection resets
first). For each matching request the proxy forwards it, reads the store's answer and then
closes the client's connection without sending it.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import socket
import struct
import threading
from collections.abc import Callable, Iterator

_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
         b"<Message>The store is restarting.</Message></Error>")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class FlakyProxy(http.server.ThreadingHTTPServer):
    """Counts requests; fails the first ``fail_first`` with 503, forwards the rest."""

    daemon_threads = True

    def __init__(self, upstream_port: int, fail_first: int,
                 drop_reply: Callable[[str, str, dict[str, str]], bool] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_port = upstream_port
        self.fail_first = fail_first
        # (method, path, headers) -> drop this request's reply after forwarding it?
        self.drop_reply = drop_reply
        self.requests = 0
        self.failed = 0
        self.dropped: list[tuple[str, str, int]] = []  # (method, path, status the client never saw)
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def should_fail(self) -> bool:
        with self._lock:
            self.requests += 1
            if self.failed < self.fail_first:
                self.failed += 1
                return True
            return False

    def should_drop(self, method: str, path: str, headers: dict[str, str]) -> bool:
        with self._lock:
            return self.drop_reply is not None and self.drop_reply(method, path, headers)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FlakyProxy

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.server.should_fail():
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(_BODY)))
            self.end_headers()
            self.wfile.write(_BODY)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            resp = upstream.getresponse()
            data = resp.read()
        finally:
            upstream.close()
        if self.server.should_drop(self.command, self.path, headers):
            self.server.dropped.append((self.command, self.path, resp.status))
            # Applied upstream, answered to no one: reset the client's connection (RST, no FIN).
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _proxy


@contextlib.contextmanager
def flaky_proxy(upstream_port: int, fail_first: int = 0,
                drop_reply: Callable[[str, str, dict[str, str]], bool] | None = None) -> Iterator[FlakyProxy]:
    """Run a :class:`FlakyProxy` in a thread for the duration of the block."""
    proxy = FlakyProxy(upstream_port, fail_first, drop_reply)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
