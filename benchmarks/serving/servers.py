"""The servers the benchmark compares: how to install, start and call each one.

KServe and MLServer pin many dependencies, so each lives in its own venv under
``benchmarks/.venvs/`` (created with pip from PyPI when missing). Every server gets the same
sklearn pipeline (skops for pricecast and KServe, joblib for MLServer's sklearn runtime, which
reads joblib files) and the same feature row.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import sklearn

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENVS = REPO / "benchmarks" / ".venvs"
MODEL = "pricecast"


@dataclass
class Server:
    """One contender: a command to start it and the request that predicts one row."""

    name: str
    protocol: str  # "v1" or "v2": the body it takes
    command: list[str]
    port: int
    path: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    unavailable: str = ""  # why it cannot run here (then it is reported, not measured)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


def ensure_venv(name: str, packages: list[str], log: Path) -> tuple[Path | None, str]:
    """``benchmarks/.venvs/<name>`` with ``packages``; (python, "") or (None, why it failed)."""
    python = VENVS / name / "bin" / "python"
    marker = VENVS / name / ".installed"
    if python.exists() and marker.exists():
        return python, ""
    print(f"creating {VENVS / name} (pip install {' '.join(packages)}) ...", flush=True)
    shutil.rmtree(VENVS / name, ignore_errors=True)
    with log.open("a") as out:
        steps = [[sys.executable, "-m", "venv", str(VENVS / name)],
                 [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                 [str(python), "-m", "pip", "install", "--quiet", *packages]]
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=1800).returncode != 0:
                return None, f"`{' '.join(step[2:])}` failed here (output in {log})"
    marker.write_text(" ".join(packages))
    return python, ""


def contenders(store_url: str, work: Path, ports: dict[str, int], log: Path) -> list[Server]:
    """The four servers of issue 4 (plus pricecast on v2, the protocol MLServer speaks)."""
    py = sys.executable
    uvicorn_flags = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    servers = [
        Server("bare ASGI ceiling", "v1", [py, "-m", "uvicorn", "--app-dir", str(HERE), "ceiling:app",
                                           "--host", "127.0.0.1", "--port", str(ports["ceiling"]), *uvicorn_flags],
               ports["ceiling"], f"/v1/models/{MODEL}:predict"),
    ]
    pinned_sklearn = f"scikit-learn=={sklearn.__version__}"  # same pickles and skops files as ours

    kserve_py, why = ensure_venv("kserve", ["kserve", pinned_sklearn, "skops"], log)
    servers.append(Server("KServe ModelServer", "v1",
                          [str(kserve_py), str(HERE / "kserve_server.py"), "--model_path", str(work / "model.skops"),
                           "--model_name", MODEL, "--http_port", str(ports["kserve"])] if kserve_py else [],
                          ports["kserve"], f"/v1/models/{MODEL}:predict", unavailable=why))

    mlserver_py, why = ensure_venv("mlserver", ["mlserver", "mlserver-sklearn", pinned_sklearn], log)
    repo = work / "mlserver"
    (repo / MODEL).mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "model.joblib", repo / MODEL / "model.joblib")
    (repo / "settings.json").write_text(json.dumps({
        "http_port": ports["mlserver"], "grpc_port": ports["mlserver_grpc"], "metrics_port": ports["mlserver_metrics"],
        "host": "127.0.0.1", "parallel_workers": 0, "debug": False}))
    (repo / MODEL / "model-settings.json").write_text(json.dumps({
        "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}}))
    servers.append(Server("MLServer (sklearn runtime)", "v2",
                          [str(mlserver_py.parent / "mlserver"), "start", str(repo)] if mlserver_py else [],
                          ports["mlserver"], f"/v2/models/{MODEL}/infer", unavailable=why))

    serve = [py, "-m", "cli.serve", "serve", "--store", store_url, "--host", "127.0.0.1", "--workers", "1"]
    env = {"PRICECAST_LOG_DIR": str(work / "logs")}
    servers.append(Server("pricecast", "v1", [*serve, "--port", str(ports["pricecast"])], ports["pricecast"],
                          f"/v1/models/{MODEL}:predict", env=env))
    servers.append(Server("pricecast (v2 infer)", "v2", [*serve, "--port", str(ports["pricecast_v2"])],
                          ports["pricecast_v2"], f"/v2/models/{MODEL}/infer", env=env))
    return servers


def body(protocol: str, rows: list[list[float]]) -> bytes:
    """The request body for ``rows`` in the server's protocol."""
    if protocol == "v1":
        return json.dumps({"instances": rows}).encode()
    flat = [v for row in rows for v in row]
    return json.dumps({"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])],
                                   "datatype": "FP64", "data": flat}]}).encode()


def predictions(protocol: str, response: dict) -> list[float]:
    return response["predictions"] if protocol == "v1" else response["outputs"][0]["data"]
