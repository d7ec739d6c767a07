"""Fault 5: SIGTERM with many requests in flight, as the kubelet sends it during a rollout.

``tests/serving/test_server_process.py`` proves the single slow request case. Here 48 requests,
each on a connection of its own from a thread of its own, are in flight at once (each held 3 s
by the test-only ``PRICECAST_FAULT_LATENCY_MS``; the server's in-flight gauge confirms all 48
were accepted) while more clients keep arriving. Then SIGTERM: every accepted request is
answered 200 with the same prediction, no late request gets an error status (a late request is
refused at connect or answered), the process exits 0, and a new server on the same store
answers the same prediction.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from pricecast.columns import FEATURE_COLUMNS
from tests.serving.util import metric_value
from tests.support.server import publish_model, running_server

V1 = "/v1/models/pricecast:predict"
ROW = [0.001] * len(FEATURE_COLUMNS)
IN_FLIGHT = 48
pytestmark = pytest.mark.slow


def _predict(client: httpx.Client) -> httpx.Response | Exception:
    try:
        return client.post(V1, json={"instances": [ROW]})
    except httpx.TransportError as exc:
        return exc


def _fresh_connections(url: str) -> httpx.Client:
    """One client shared by the threads, a new connection per request (no keep-alive)."""
    return httpx.Client(base_url=url, timeout=30,
                        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))


def test_sigterm_under_load_answers_every_accepted_request_and_a_restart_serves(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    publish_model(store_url, "v1", seed=4)

    with running_server(store_url, env={"PRICECAST_FAULT_LATENCY_MS": "3000"}) as srv, \
            _fresh_connections(srv.url) as client:
        accepted: list[httpx.Response | Exception] = []
        late: list[httpx.Response | Exception] = []
        stop_late = threading.Event()

        def keep_arriving() -> None:
            while not stop_late.is_set():
                late.append(_predict(client))
                time.sleep(0.02)

        senders = [threading.Thread(target=lambda: accepted.append(_predict(client))) for _ in range(IN_FLIGHT)]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 20
        while metric_value(srv.metrics(), "pricecast_requests_in_flight") < IN_FLIGHT + 1:  # + this scrape
            assert time.monotonic() < deadline, "the requests never were all in flight at once"
            time.sleep(0.02)
        arrivals = [threading.Thread(target=keep_arriving) for _ in range(4)]
        for arrival in arrivals:
            arrival.start()

        srv.proc.send_signal(signal.SIGTERM)
        for sender in senders:
            sender.join(timeout=30)
        exit_code = srv.proc.wait(timeout=30)
        stop_late.set()
        for arrival in arrivals:
            arrival.join(timeout=30)

        assert len(accepted) == IN_FLIGHT
        failed = [r for r in accepted if not isinstance(r, httpx.Response) or r.status_code != 200]
        assert failed == [], failed
        answers = {r.text for r in accepted}
        assert len(answers) == 1, answers
        outcomes = Counter(r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in late)
        assert outcomes, "no request arrived during the shutdown"
        assert not [o for o in outcomes if isinstance(o, int) and o != 200], outcomes
        assert exit_code == 0 and "Finished server process" in srv.output()

    with running_server(store_url) as restarted:
        assert restarted.post(V1, json={"instances": [ROW]}).text == answers.pop()
