"""Run the real model server in tests: a subprocess on 127.0.0.1, a free port, stopped for sure.

    with running_server(store_url, track="canary", env={"PRICECAST_FAULT_ERROR_RATE": "0.2"}) as srv:
        srv.post("/v1/models/pricecast:predict", json={"instances": [row]})
        srv.metrics()                       # the /metrics text

The server is started the way the container starts it (the ``pricecast serve`` command, run as
``python -m cli.serve serve``), in its own process group so workers die with it.
``publish_model`` puts a small trained model in a store's registry for the server to load.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    """A started server process and an HTTP client for it."""

    proc: subprocess.Popen
    port: int
    log_path: Path
    client: httpx.Client = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM the server (as Kubernetes does) and wait for it to exit; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def _wait_until(srv: RunningServer, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"server exited with {srv.proc.returncode} before {path} answered:\n{srv.output()}")
        try:
            if srv.client.get(path, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not answer 200 within {timeout}s:\n{srv.output()}")


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL the whole process group (uvicorn workers included)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group id is the server's pid
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_server(
    store_url: str,
    *,
    version: str = "active",
    track: str = "stable",
    workers: int = 1,
    env: dict[str, str] | None = None,
    wait_for: Literal["ready", "live", "none"] = "ready",
    timeout: float = 60.0,
    user: int | None = None,
    python: str = sys.executable,
) -> Iterator[RunningServer]:
    """Start ``pricecast serve`` on 127.0.0.1 and a free port; stop it (and its workers) on exit.

    Args:
        store_url: Model store the server loads from (``file://`` or ``s3://``).
        version: ``active`` or a pinned version.
        track: ``stable`` or ``canary`` (a label on every metric).
        workers: uvicorn worker processes (more than one turns on multiprocess metrics).
        env: Extra environment, e.g. ``PRICECAST_FAULT_LATENCY_MS`` or S3 credentials.
        wait_for: ``ready`` (``/readyz`` 200), ``live`` (``/healthz`` 200, for not-ready tests) or
            ``none``.
        timeout: Seconds to wait for the server to answer.
        user: Run the server as this uid (the test process must be root), as a pod under
            ``runAsUser`` reads a store someone else wrote.
        python: The interpreter (one that ``user`` may execute).
    """
    log_dir = Path(tempfile.mkdtemp(prefix="pricecast-server-"))
    if user is not None:
        os.chown(log_dir, user, -1)  # the server writes its logs here
    full_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    full_env.update({"PYTHONUNBUFFERED": "1", "PRICECAST_LOG_DIR": str(log_dir / "logs")})
    if user is not None:
        full_env["HOME"] = str(log_dir)  # root's home is not the other user's to read
    full_env.update(env or {})
    for attempt in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        log_path = log_dir / f"server-{port}.log"
        cmd = [python, "-m", "cli.serve", "serve", "--store", store_url, "--version", version,
               "--track", track, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True, user=user)
        srv = RunningServer(proc, port, log_path, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0))
        try:
            if wait_for != "none":
                _wait_until(srv, "/readyz" if wait_for == "ready" else "/healthz", timeout)
        except RuntimeError:
            _stop(proc, 1.0)
            srv.client.close()
            if "address already in use" in srv.output().lower() and attempt < 2:
                continue
            shutil.rmtree(log_dir, ignore_errors=True)
            raise
        except BaseException:
            _stop(proc, 1.0)
            srv.client.close()
            shutil.rmtree(log_dir, ignore_errors=True)
            raise
        break
    try:
        yield srv
    finally:
        srv.client.close()
        _stop(srv.proc, 10.0)
        shutil.rmtree(log_dir, ignore_errors=True)  # read srv.output() inside the block


# --------------------------------------------------------------------------- models for the server
def publish_model(
    store_url: str,
    version: str = "v1",
    *,
    features: Sequence[str] | None = None,
    seed: int = 0,
    decision: str = "promoted",
    n_rows: int = 400,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Train a small ``Pipeline(StandardScaler, Ridge)`` on synthetic data and register it.

    Different seeds give different models (a "worse" canary is simply another seed). Returns the
    registered :class:`~pricecast.registry.ModelVersion`; ``decision="promoted"`` makes it active.
    ``metadata`` adds keys to the version's metadata.json (as train's model_info would).
    """
    import numpy as np
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from pricecast import modelio, registry, storage

    if features is None:
        from pricecast.columns import FEATURE_COLUMNS

        features = FEATURE_COLUMNS
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.01, size=(n_rows, len(features))) * rng.uniform(0.5, 2.0, size=len(features))
    y = x @ rng.normal(0.0, 0.2, size=len(features)) + rng.normal(0.0, 0.002, size=n_rows)
    model = Pipeline([("scaler", StandardScaler()), ("ridge", Ridge(alpha=1.0))]).fit(x, y)
    data = modelio.dumps(model)
    store = registry.RegistryStore(store_url)
    import pandas as pd

    from pricecast.monitoring.drift import reference_profile

    # Like the train stage: a decile profile of the training inputs, for live drift.
    profile = reference_profile(pd.DataFrame(x, columns=list(features)), list(features))
    stored = store.put_model(version, data, {"features": list(features), "seed": seed,
                                             "reference_profile": profile, **(metadata or {})})
    mv = registry.ModelVersion(
        version=version, created_at=registry.now_iso(), sha256=storage.sha256_bytes(data),
        metadata_sha256=stored.metadata_sha256, data_hash="0" * 64, artifact=stored.artifact,
        features=list(features), decision=decision,  # type: ignore[arg-type]
        reason="published by tests/support/server.py",
    )
    store.update(lambda reg: registry.register(reg, mv))
    return mv


def model_file(store_url: str, version: str) -> Path:
    """The local path of a ``file://`` store's model bytes (to corrupt them in fault tests)."""
    from pricecast import storage
    from pricecast.registry import RegistryStore

    return storage.local_path(RegistryStore(store_url).model_url(version))
