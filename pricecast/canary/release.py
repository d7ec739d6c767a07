"""Helm values for the canary workflow: start, promote and roll back, as pure functions.

Each step produces a small values overlay for the chart in ``helm/pricecast`` and is applied with
``helm upgrade --reuse-values -f overlay.yaml``, so everything else in the release stays as it is.
Keeping the overlays here (not in shell scripts) lets the tests render them with the real Helm
engine and check the Deployments that would result.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from pricecast.errors import ConfigError


@dataclass(frozen=True)
class Overlay:
    """A values overlay and what it will do, in a sentence for the user."""

    values: dict[str, Any]
    summary: str


def canary_replicas(weight: int, stable_replicas: int) -> int:
    """Canary pods giving about ``weight`` % of the traffic behind one Service (at least one)."""
    if not 0 < weight < 100:
        raise ConfigError(f"Canary weight {weight} is not between 1 and 99 %.", "Pass --weight 10 for a 10 % canary.")
    if stable_replicas < 1:
        raise ConfigError("The stable track needs at least one pod.", "Pass --stable-replicas 1 or more.")
    return max(1, math.ceil(stable_replicas * weight / (100 - weight) - 1e-9))


def start(version: str, weight: int, stable_replicas: int, scale_stable: bool = False) -> Overlay:
    """Deploy ``version`` as the canary with ``weight`` % of traffic.

    The HTTPRoute (when enabled) splits exactly by ``canary.weight``; the plain Service splits by
    replica ratio, so the canary's replicas are sized for ``stable_replicas`` stable pods too.
    The stable track is only rescaled when ``scale_stable`` says so.
    """
    if not version or version == "active":
        raise ConfigError("A canary needs an explicit model version, not 'active'.",
                          "Pass --version with a version from `pricecast registry list`.")
    replicas = canary_replicas(weight, stable_replicas)
    share = 100 * replicas / (replicas + stable_replicas)
    values: dict[str, Any] = {
        "canary": {"enabled": True, "modelVersion": version, "replicaCount": replicas, "weight": weight},
    }
    if scale_stable:
        values = {"stable": {"replicaCount": stable_replicas}, **values}
    summary = (f"canary {version}: {weight} % through the HTTPRoute, or {replicas} pod(s) next to "
               f"{stable_replicas} stable (~{share:.0f} % by replica ratio) through the Service")
    return Overlay(values, summary)


def promote(version: str) -> Overlay:
    """Make the canary's version the stable one and remove the canary track."""
    if not version or version == "active":
        raise ConfigError("Promotion needs the canary's model version.",
                          "Pass --version, or run `pricecast canary start` first so it is recorded.")
    values = {"stable": {"modelVersion": version}, "canary": {"enabled": False, "modelVersion": ""}}
    return Overlay(values, f"stable now serves {version}; the canary track is removed")


def rollback() -> Overlay:
    """Remove the canary track; stable is untouched."""
    values = {"canary": {"enabled": False, "modelVersion": ""}}
    return Overlay(values, "the canary track is removed; stable is untouched")


def helm_upgrade_command(release: str, chart: str, namespace: str, values_file: str, wait_timeout: str) -> list[str]:
    """The ``helm upgrade`` that applies an overlay and keeps every other value of the release."""
    return ["helm", "upgrade", release, chart, "--namespace", namespace, "--reuse-values",
            "--values", values_file, "--wait", "--timeout", wait_timeout]


def helm_stable_replicas(release: str, namespace: str) -> int | None:
    """The release's ``stable.replicaCount`` as Helm has it, or None without helm or a cluster."""
    helm = shutil.which("helm")
    if helm is None:
        return None
    try:
        done = subprocess.run([helm, "get", "values", release, "--namespace", namespace, "--all", "--output", "json"],
                              capture_output=True, text=True, timeout=30, check=False)
        count = json.loads(done.stdout)["stable"]["replicaCount"] if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None
    return int(count) if isinstance(count, (int, float)) else None


def helm_available(release: str, namespace: str) -> bool:
    """True when a ``helm`` binary is on PATH and it can see the release (so a cluster is reachable)."""
    helm = shutil.which("helm")
    if helm is None:
        return False
    try:
        probe = subprocess.run([helm, "status", release, "--namespace", namespace],
                               capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0
