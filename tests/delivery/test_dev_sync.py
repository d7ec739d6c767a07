"""`skaffold dev` file sync, minus the cluster: the same init command, PYTHONPATH and sync hook.

skaffold copies changed serving/**/*.py into /dev-src (first on PYTHONPATH, filled by the init
container) and runs its after-sync hook in the container. Here the init command from
values-dev.yaml fills a directory, a real `pricecast serve --workers 2` runs with that PYTHONPATH,
a "synced" file is changed, skaffold.yaml's hook command runs with PID 1 replaced by the
server's pid, and the replacement workers must run the new code while the server stays up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.delivery.chart import ROOT, manifests, scenario_values
from tests.support.server import free_port, publish_model

pytestmark = pytest.mark.slow
SKAFFOLD = yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def _wait(predicate, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_synced_server_code_is_live_after_the_sync_hook(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    publish_model(store, "v1", seed=1)
    pod = next(d for d in manifests(scenario_values("skaffold-dev")) if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    dev_src = tmp_path / "dev-src"
    # The init container's own command, with /dev-src mapped to a temporary directory.
    command = [arg.replace("/dev-src", str(dev_src)) for arg in init["command"]]
    assert command[0] == "python"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR")}
    subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=clean_env, check=True, timeout=60)
    assert (dev_src / "serving" / "main.py").exists()

    marker = tmp_path / "imported-by"
    port = free_port()
    log = tmp_path / "server.log"
    env = {**clean_env, "PYTHONPATH": str(dev_src), "PRICECAST_LOG_DIR": str(tmp_path / "logs"),
           "SYNC_MARKER": str(marker)}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli.serve", "serve", "--store", store, "--version", "v1",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _ready(url), 90, "the dev server was not ready", log)
        assert not marker.exists()
        # What skaffold's sync does: a changed file lands in /dev-src/serving.
        init_py = dev_src / "serving" / "__init__.py"
        init_py.write_text(init_py.read_text() + "\nimport os as _os\n"
                           "open(_os.environ['SYNC_MARKER'], 'a').write(f'{_os.getpid()}\\n')\n")
        hook = SKAFFOLD["build"]["artifacts"][0]["sync"]["hooks"]["after"][0]["container"]["command"]
        assert hook[:2] == ["python", "-c"] and "/proc/1/task/1/children" in hook[2]
        as_here = hook[2].replace("/proc/1/task/1/", f"/proc/{server.pid}/task/{server.pid}/")
        subprocess.run([sys.executable, "-c", as_here], check=True, timeout=30)
        _wait(lambda: marker.exists() and len(marker.read_text().split()) >= 2, 90,
              "restarted workers did not import the synced code", log)
        _wait(lambda: _ready(url), 60, "the server was not ready again after the reload", log)
        workers = {int(pid) for pid in marker.read_text().split()}
        assert server.pid not in workers  # new workers imported it; the supervisor (PID 1) stayed
        assert server.poll() is None
        width = httpx.get(f"{url}/v2/models/pricecast").json()["inputs"][0]["shape"][1]
        answer = httpx.post(f"{url}/v1/models/pricecast:predict", json={"instances": [[0.0] * width]}, timeout=10)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
