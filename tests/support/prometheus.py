"""A real Prometheus server for tests: 127.0.0.1 only, 1 s scrapes, a throw-away TSDB.

    with prometheus_server(["127.0.0.1:8001", "127.0.0.1:8002"]) as prom:
        prom.wait_for_targets()
        prom.wait_for('sum(pricecast_requests_total) > 100')
        samples = prom.query('up')

Uses Debian's ``/usr/bin/prometheus`` (``apt-get install prometheus``). Every wait is bounded and
the process group is always stopped, even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Prometheus:
    """A running server: its URL and small helpers around the HTTP API."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """Instant query; ``(labels, value)`` per sample (raises on a query error)."""
        resp = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {body}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def wait_for(self, promql: str, timeout_s: float = 30.0) -> list[tuple[dict[str, str], float]]:
        """Poll until ``promql`` returns at least one sample; fail with the log tail if it never does."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql!r} returned nothing within {timeout_s:.0f} s.\n{self.log_tail()}")
            time.sleep(0.5)

    def wait_for_targets(self, timeout_s: float = 30.0) -> None:
        """Wait until every configured target has been scraped successfully at least once."""
        deadline = time.monotonic() + timeout_s
        while True:
            active = requests.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            if active and all(t["health"] == "up" for t in active):
                return
            if time.monotonic() > deadline:
                states = {t["scrapeUrl"]: (t["health"], t.get("lastError")) for t in active}
                raise AssertionError(f"targets not up within {timeout_s:.0f} s: {states}")
            time.sleep(0.3)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


Target = str | tuple[str, Mapping[str, str]]


def write_config(path: Path, targets: Sequence[Target], job: str, scrape_interval: str,
                 rule_files: Sequence[Path] = (), target_labels: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """A Prometheus config scraping ``targets`` as one job.

    A target is ``"host:port"`` or ``("host:port", {extra labels})``; the same address may appear
    several times with different labels (Prometheus keeps them as separate targets).
    """
    target_labels = target_labels or {}
    static_configs = []
    for target in targets:
        address, labels = target if isinstance(target, tuple) else (target, target_labels.get(target, {}))
        static_configs.append({"targets": [address], "labels": dict(labels)} if labels else {"targets": [address]})
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "scrape_configs": [{"job_name": job, "static_configs": static_configs}],
    }
    if rule_files:
        config["rule_files"] = [str(p) for p in rule_files]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


@contextlib.contextmanager
def prometheus_server(
    targets: Sequence[Target],
    *,
    job: str = "pricecast",
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] = (),
    target_labels: Mapping[str, Mapping[str, str]] | None = None,
    start_timeout_s: float = 30.0,
) -> Iterator[Prometheus]:
    """Start Prometheus scraping ``targets``; yield it once ready; always stop it.

    Extra labels on a target's series (e.g. a scenario name, as a ServiceMonitor's relabelings
    would add) come from ``("host:port", labels)`` targets or ``target_labels``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="pricecast-prom-"))
    config = workdir / "prometheus.yml"
    write_config(config, targets, job, scrape_interval, rule_files, target_labels)
    port = free_port()
    log_path = workdir / "prometheus.log"
    command = [
        PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
        "--web.enable-lifecycle", "--log.level=warn",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if requests.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready within {start_timeout_s:.0f} s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it does not exit in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)
