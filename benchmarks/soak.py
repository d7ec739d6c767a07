"""Soak: the real server at a fixed request rate for a long while — errors, latency, memory.

Starts ``pricecast serve`` (``tests/support/server.py``: a subprocess on 127.0.0.1, one worker,
metrics on) over a small published model, warms it up, then sends single-row v1 predicts at a
fixed rate, paced like wrk2: request *i* is due at ``start + i / rate`` whatever happened
before, so a slow answer delays the requests behind it and that delay counts in the latency
(no coordinated omission). Client threads each keep one keep-alive connection. The server's
resident memory (``/proc/<pid>/status`` VmRSS) is sampled every 0.25 s. At the end the
server's own ``pricecast_requests_total`` must agree with what the client saw.

    .venv/bin/python benchmarks/soak.py                        # 500 req/s x 60 s = 30,000 requests
    .venv/bin/python benchmarks/soak.py --rate 500 --requests 2000 --no-write

Writes benchmarks/results/soak.json and soak.md (unless --no-write) and prints the table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.serving.util import metric_value
from tests.support.server import publish_model, running_server

RESULTS = REPO / "benchmarks" / "results"
PATH = "/v1/models/pricecast:predict"
PREDICT_LABELS = {"endpoint": "/v1/models/{name}:predict"}


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class _Load:
    """Shared state of the client threads."""

    port: int
    body: bytes
    rate: float
    total: int
    start: float = 0.0
    next_index: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    latency_s: list[float] = field(default_factory=list)  # from the due time: includes queueing
    service_s: list[float] = field(default_factory=list)  # from the send: the server's answer time
    outcomes: Counter = field(default_factory=Counter)

    def take(self) -> int | None:
        with self.lock:
            if self.next_index >= self.total:
                return None
            self.next_index += 1
            return self.next_index - 1

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        while (index := self.take()) is not None:
            due = self.start + index / self.rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            try:
                conn.request("POST", PATH, body=self.body, headers=headers)
                response = conn.getresponse()
                response.read()
                outcome: int | str = response.status
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            done = time.perf_counter()
            with self.lock:
                self.outcomes[outcome] += 1
                self.latency_s.append(done - due)
                self.service_s.append(done - sent)
        conn.close()


def _percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray(values) * 1000
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)} | {
        "max_ms": round(float(ms.max()), 2)}


def _sample_rss(pid: int, stop: threading.Event, samples: list[tuple[float, float]], every_s: float) -> None:
    started = time.perf_counter()
    while not stop.is_set():
        samples.append((round(time.perf_counter() - started, 2), rss_mb(pid)))
        stop.wait(every_s)


def soak(rate: float = 500.0, requests: int = 30_000, threads: int = 16, warmup: int = 1_000) -> dict[str, Any]:
    """Run the soak against a fresh server and return the measurements.

    Args:
        rate: Requests per second to send (fixed schedule).
        requests: Requests in the measured phase.
        threads: Client threads (each one keep-alive connection).
        warmup: Requests sent first, as fast as the server answers, not measured.

    Returns:
        Counts, latency percentiles (scheduled and service), RSS before/after/peak and the
        server's own request counts.
    """
    from pricecast.columns import FEATURE_COLUMNS

    store_url = f"file://{tempfile.mkdtemp(prefix='pricecast-soak-')}/store"
    publish_model(store_url, "v1", seed=21)
    body = json.dumps({"instances": [[0.001 * (i + 1) for i in range(len(FEATURE_COLUMNS))]]}).encode()
    with running_server(store_url, env={"PRICECAST_LOG_LEVEL": "WARNING"}) as srv:
        rss_start = rss_mb(srv.pid)
        warm = _Load(srv.port, body, rate=1e9, total=warmup)
        _run_clients(warm, threads)
        rss_before = rss_mb(srv.pid)

        load = _Load(srv.port, body, rate=rate, total=requests)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(srv.pid, stop, samples, 0.25), daemon=True)
        sampler.start()
        elapsed = _run_clients(load, threads)
        stop.set()
        sampler.join()
        rss_after = rss_mb(srv.pid)
        text = srv.metrics()
        server_2xx = metric_value(text, "pricecast_requests_total", status_class="2xx", **PREDICT_LABELS)
        server_5xx = metric_value(text, "pricecast_requests_total", status_class="5xx", **PREDICT_LABELS)
        server_4xx = metric_value(text, "pricecast_requests_total", status_class="4xx", **PREDICT_LABELS)
        warm_errors = sum(n for o, n in warm.outcomes.items() if o != 200)

    errors = sum(n for outcome, n in load.outcomes.items() if outcome != 200)
    return {
        "requests": requests, "rate_target": rate, "threads": threads, "warmup_requests": warmup,
        "duration_s": round(elapsed, 2), "rate_achieved": round(requests / elapsed, 1),
        "errors": errors, "warmup_errors": warm_errors,
        "outcomes": {str(k): v for k, v in sorted(load.outcomes.items(), key=str)},
        "latency_from_schedule": _percentiles(load.latency_s),
        "latency_service": _percentiles(load.service_s),
        "rss_mb": {"at_start": round(rss_start, 1), "before": round(rss_before, 1), "after": round(rss_after, 1),
                   "peak": round(max(mb for _, mb in samples), 1),
                   "growth": round(rss_after - rss_before, 1)},
        "rss_timeline_mb": [(t, round(mb, 1)) for t, mb in samples[:: max(1, len(samples) // 24)]],
        "server_counted": {"2xx": server_2xx, "4xx": server_4xx, "5xx": server_5xx,
                           "expected_2xx": warmup + requests},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
    }


def _run_clients(load: _Load, threads: int) -> float:
    clients = [threading.Thread(target=load.client, daemon=True) for _ in range(threads)]
    load.start = time.perf_counter()
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    return time.perf_counter() - load.start


def markdown(result: dict[str, Any]) -> str:
    lat, svc, rss, srv = result["latency_from_schedule"], result["latency_service"], result["rss_mb"], result["server_counted"]
    header = ("| requests | target req/s | achieved req/s | duration s | errors | p50 ms | p99 ms | max ms "
              "| service p50 ms | service p99 ms | RSS before MiB | RSS after MiB | RSS peak MiB | RSS growth MiB |")
    row = (f"| {result['requests']:,} | {result['rate_target']:.0f} | {result['rate_achieved']:.1f} "
           f"| {result['duration_s']} | {result['errors']} | {lat['p50_ms']} | {lat['p99_ms']} | {lat['max_ms']} "
           f"| {svc['p50_ms']} | {svc['p99_ms']} | {rss['before']} | {rss['after']} | {rss['peak']} | {rss['growth']} |")
    machine = result["machine"]
    notes = [
        (f"- Outcomes: {result['outcomes']}; the server counted {srv['2xx']:.0f} 2xx, {srv['4xx']:.0f} 4xx, "
         f"{srv['5xx']:.0f} 5xx predicts (expected {srv['expected_2xx']} 2xx: warm-up + soak)."),
        (f"- RSS at start {rss['at_start']} MiB; after {result['warmup_requests']:,} warm-up requests "
         f"{rss['before']} MiB; sampled every 0.25 s during the soak (timeline in soak.json)."),
        ("- Latency is measured from each request's scheduled time (wrk2-style, includes any queueing); "
         "service latency from the moment it was sent."),
        (f"- {result['threads']} client threads with keep-alive connections on the same machine as the "
         f"server ({machine['cpus']} CPUs, Python {machine['python']}); load average at the end "
         f"{machine['load_avg_at_end']}. Other processes shared the machine."),
    ]
    lines = ["# Soak: fixed-rate single-row predicts against `pricecast serve`", "", header,
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", row, "", *notes, "",
             "Reproduce: `.venv/bin/python benchmarks/soak.py`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500)")
    parser.add_argument("--requests", type=int, default=30_000, help="measured requests (default 30,000)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results files")
    args = parser.parse_args()
    result = soak(rate=args.rate, requests=args.requests, threads=args.threads)
    text = markdown(result)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "soak.md").write_text(text)
        print(f"wrote {RESULTS / 'soak.json'} and {RESULTS / 'soak.md'}")


if __name__ == "__main__":
    main()
