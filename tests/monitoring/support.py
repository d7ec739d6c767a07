"""Test support for monitoring: a real webhook receiver and frames with known return dynamics."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd


@dataclass
class WebhookReceiver:
    """What a local alert receiver got: every POST body (parsed JSON) and its path."""

    url: str
    statuses: list[int]  # answers for the next requests, in order; 200 once exhausted
    bodies: list[dict] = field(default_factory=list)
    attempts: int = 0


@contextlib.contextmanager
def webhook_receiver(statuses: Sequence[int] = ()) -> Iterator[WebhookReceiver]:
    """An HTTP server on 127.0.0.1 (a free port) in a thread; stopped on exit, even on failure."""
    receiver = WebhookReceiver(url="", statuses=list(statuses))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                receiver.attempts += 1
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status < 300:
                    receiver.bodies.append(json.loads(body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/pricecast-token-123"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def features_frame(
    n_days: int,
    *,
    n_tickers: int = 3,
    vol: float = 0.01,
    level: float = 100.0,
    start: str = "2020-01-01",
    seed: int = 0,
) -> pd.DataFrame:
    """Feature rows (the features stage's code) of random-walk prices with daily return vol ``vol``,
    starting at price ``level``."""
    from components.features.core import build_features

    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n_days)
    frames = []
    for i in range(n_tickers):
        returns = rng.normal(0.0, vol, n_days)
        returns[0] = 0.0
        price = level * np.exp(np.cumsum(returns))
        log_return = np.r_[np.nan, np.diff(np.log(price))]
        frames.append(pd.DataFrame({"date": dates, "ticker": f"T{i:02d}", "price": price,
                                    "log_return": log_return, "segment": np.int64(0), "clipped": False}))
    return build_features(pd.concat(frames, ignore_index=True))
