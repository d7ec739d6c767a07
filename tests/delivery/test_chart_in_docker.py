"""The chart's pods, minus Kubernetes: the real image run with the rendered pod spec's settings.

Docker stands in for the kubelet (no cluster can run here): the server container gets the
Deployment's command, its ConfigMap and env, its security context (uid 1000, read-only root
filesystem with only /tmp writable, all capabilities dropped, no privilege escalation) and the
kind scenario's read-only model store; then the `helm test` pod's container runs with its own
spec against it. This proves the image and the chart's lock-down work together.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.delivery.chart import by_kind_name, deep_merge, manifests, scenario_values
from tests.support.docker import build_image, ensure_docker
from tests.support.server import free_port, publish_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = os.environ.get("PRICECAST_TEST_IMAGE", "pricecast:test")


@pytest.fixture(scope="module")
def image() -> str:
    reason = ensure_docker()
    if reason:
        pytest.skip(f"Docker cannot start here: {reason}")
    build_image(IMAGE)  # reused when an image of this exact source exists (tests/containers builds it too)
    return IMAGE


def _docker_flags(pod: dict[str, Any], container: dict[str, Any], volumes: dict[str, str]) -> list[str]:
    """docker run flags equivalent to the pod's security context and volumes."""
    sc = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    flags = ["--user", f"{sc['runAsUser']}:{sc['runAsGroup']}"]
    if sc.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if "ALL" in sc.get("capabilities", {}).get("drop", []):
        flags += ["--cap-drop", "ALL"]
    if sc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    declared = {v["name"]: v for v in pod["volumes"]}
    for mount in container.get("volumeMounts", []):
        volume = declared[mount["name"]]
        if "emptyDir" in volume:
            flags += ["--tmpfs", f"{mount['mountPath']}:mode=1777"]
        else:  # hostPath: the directory the test provides for it
            flags += ["-v", f"{volumes[mount['name']]}:{mount['mountPath']}:{'ro' if mount.get('readOnly') else 'rw'}"]
    return flags


def _env_flags(env: dict[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]


@pytest.fixture(scope="module")
def server(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    store = tmp_path_factory.mktemp("store") / "store"
    publish_model(f"file://{store}", "v1", seed=1)
    subprocess.run(["chmod", "-R", "a+rX", str(store)], check=True)  # readable by the pod's uid 1000
    # As the kind job installs it: its values, the version it trained pinned with --set.
    docs = by_kind_name(manifests(deep_merge(scenario_values("kind"), {"stable": {"modelVersion": "v1"}})))
    deployment = docs[("Deployment", "pricecast-stable")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = dict(docs[("ConfigMap", "pricecast")]["data"])
    env.update({e["name"]: e["value"] for e in container["env"]})
    name = f"pricecast-chart-{uuid.uuid4().hex[:8]}"
    port = free_port()
    command = ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
               *_docker_flags(pod, container, {"store": str(store)}), *_env_flags(env),
               "--entrypoint", container["command"][0], image, *container["command"][1:]]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            done = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            logs = done.stdout + done.stderr
            state = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name],
                                   capture_output=True, text=True).stdout.strip()
            if state != "running" or time.monotonic() > deadline:
                raise AssertionError(f"server container {state}, not ready:\n{logs[-3000:]}")
            time.sleep(0.5)
        yield url, {"name": name, "deployment": deployment, "docs": docs}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def test_server_runs_locked_down_as_the_chart_configures_it(server: tuple[str, dict[str, Any]]) -> None:
    url, info = server
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    user = subprocess.run(["docker", "exec", info["name"], "id", "-u"], capture_output=True, text=True, timeout=30)
    assert user.stdout.strip() == "1000"
    # The root filesystem is read-only; /tmp (the emptyDir) is the one writable place.
    denied = subprocess.run(["docker", "exec", info["name"], "touch", "/home/pricecast/x"], capture_output=True, timeout=30)
    assert denied.returncode != 0
    assert subprocess.run(["docker", "exec", info["name"], "touch", "/tmp/x"], timeout=30).returncode == 0
    # The preStop hook's command exists in the image.
    pre_stop = info["deployment"]["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert subprocess.run(["docker", "exec", info["name"], pre_stop[0], "0"], timeout=30).returncode == 0


def test_helm_test_pod_passes_in_the_image(image: str, server: tuple[str, dict[str, Any]]) -> None:
    url, info = server
    pod = next(d for d in manifests(scenario_values("kind")) if d["kind"] == "Pod")
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    env["BASE_URL"] = url  # the Service name only resolves in a cluster; the same server here
    run = subprocess.run(["docker", "run", "--rm", "--network", "host", *_docker_flags(pod["spec"], container, {}),
                          *_env_flags(env), "--entrypoint", container["command"][0], image,
                          *container["command"][1:], *container["args"]],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: ['v1'] predicts" in run.stdout


def test_sigterm_drains_and_exits_within_the_grace_period(server: tuple[str, dict[str, Any]]) -> None:
    """Last in this file on purpose: it stops the module's container."""
    url, info = server
    grace = info["deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    started = time.monotonic()
    subprocess.run(["docker", "stop", "--time", str(grace), info["name"]], check=True, capture_output=True, timeout=grace + 30)
    assert time.monotonic() - started < grace  # it exited on SIGTERM, not on the SIGKILL after the grace
    code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", info["name"]],
                          capture_output=True, text=True, timeout=30).stdout.strip()
    assert code == "0"
