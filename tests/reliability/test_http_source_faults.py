"""Fault 1: an HTTP source that breaks mid-body or never answers, against a real server.

``components/ingest/tests/test_http.py`` already proves 5xx (retried, then an incident), a
refused connection (4 tries, incident), one timeout (retried) and the 0.5 s / 1 s / 2 s backoff.
What it cannot script is a body cut short: here a raw socket server declares a Content-Length
larger than what it sends and closes the connection, as a proxy that dies mid-transfer does.
Also here: a source that times out on every try, and the exit code a user sees from the CLI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from components.ingest.core import ingest_frame, load_source_spec
from pricecast.errors import SourceUnavailableError
from pricecast.settings import Settings, reload_settings
from tests.reliability.support import REPO

CSV = b"date,ticker,price\n" + b"".join(b"2021-01-%02d,AAA,%d.5\n" % (d, 10 + d) for d in range(4, 30))
Reply = Literal["ok", "truncated", "silent"]


@dataclass
class BreakingServer:
    """Answers request i as ``script[i]`` (the last entry repeats); records when each came."""

    script: list[Reply]
    url: str = ""
    hits: list[float] = field(default_factory=list)


def _answer(conn: socket.socket, reply: Reply, hold_s: float) -> None:
    conn.recv(65536)
    if reply == "silent":
        time.sleep(hold_s)  # accept, read the request, say nothing: the client's timeout fires
        return
    declared = len(CSV) + (1000 if reply == "truncated" else 0)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n" % declared + CSV)


@pytest.fixture
def breaking_server() -> Iterator:
    """Start a raw socket HTTP server on 127.0.0.1 with a scripted list of replies."""
    stop = threading.Event()
    listeners: list[socket.socket] = []

    def start(*script: Reply, hold_s: float = 2.0) -> BreakingServer:
        server = BreakingServer(list(script))
        sock = socket.create_server(("127.0.0.1", 0))
        sock.settimeout(0.1)
        listeners.append(sock)
        server.url = f"http://127.0.0.1:{sock.getsockname()[1]}/prices.csv"

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except (TimeoutError, OSError):
                    continue
                server.hits.append(time.monotonic())
                reply = server.script[min(len(server.hits), len(server.script)) - 1]
                threading.Thread(target=answer, args=(conn, reply), daemon=True).start()

        def answer(conn: socket.socket, reply: Reply) -> None:
            with conn:
                try:
                    _answer(conn, reply, hold_s)
                except OSError:
                    pass  # the client gave up first

        threading.Thread(target=serve, daemon=True).start()
        return server

    try:
        yield start
    finally:
        stop.set()
        for sock in listeners:
            sock.close()


@pytest.fixture
def fast_retries(isolated_store: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default 4 tries, with 0.05 s, 0.1 s, 0.2 s backoff and a 0.5 s timeout."""
    monkeypatch.setenv("PRICECAST_HTTP_BACKOFF_INITIAL_S", "0.05")
    monkeypatch.setenv("PRICECAST_HTTP_TIMEOUT_S", "0.5")
    return reload_settings()


def _incidents(settings: Settings) -> list[dict]:
    root = Path(settings.store_url.removeprefix("file://")) / "incidents"
    return [json.loads(p.read_text()) for p in sorted(root.glob("*-ingest.json"))]


def test_a_body_cut_short_once_is_retried_and_the_next_whole_body_is_used(fast_retries, breaking_server):
    server = breaking_server("truncated", "ok")

    result = ingest_frame(load_source_spec(None, source=server.url))

    assert len(server.hits) == 2
    assert len(result.frame) == 26 and float(result.frame["price"].iloc[-1]) == 39.5
    assert _incidents(fast_retries) == []


def test_a_body_always_cut_short_fails_after_four_tries_with_an_incident(fast_retries, breaking_server):
    server = breaking_server("truncated")

    with pytest.raises(SourceUnavailableError) as info:
        ingest_frame(load_source_spec(None, source=server.url))

    assert len(server.hits) == 4
    assert "did not answer after 4 tries" in info.value.problem and "IncompleteRead" in info.value.problem
    assert info.value.exit_code == 3
    [incident] = _incidents(fast_retries)
    assert incident["attempts"] == 4
    assert all("ChunkedEncodingError" in e["error"] and "1000 more expected" in e["error"]
               for e in incident["errors"])
    starts = [e["monotonic_s"] for e in incident["errors"]]
    assert [round(b - a, 2) >= wait for a, b, wait in zip(starts, starts[1:], (0.05, 0.1, 0.2))] == [True] * 3
    assert incident["policy"] == {"retries": 3, "backoff_s": [0.05, 0.1, 0.2], "timeout_s": 0.5}


def test_a_source_that_never_answers_times_out_four_times_then_fails_with_an_incident(fast_retries, breaking_server):
    server = breaking_server("silent", hold_s=1.0)

    with pytest.raises(SourceUnavailableError, match="4 tries"):
        ingest_frame(load_source_spec(None, source=server.url))

    assert len(server.hits) == 4
    [incident] = _incidents(fast_retries)
    assert all("ReadTimeout" in e["error"] for e in incident["errors"])


def test_the_cli_exits_3_with_the_problem_and_the_fix_on_a_truncated_source(fast_retries, breaking_server, tmp_path):
    server = breaking_server("truncated")
    env = {**os.environ, "COLUMNS": "200"}

    proc = subprocess.run([sys.executable, "-m", "cli", "validate", "--input", server.url],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "did not answer after 4 tries" in proc.stderr and "incident is recorded" in proc.stderr
    assert len(server.hits) == 4 and len(_incidents(fast_retries)) == 1
