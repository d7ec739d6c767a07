"""Render the chart with the real Helm engine (helm-python-sdk) and read the manifests back."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pricecast"
# Every ci/ scenario, plus the values `skaffold dev` uses.
SCENARIOS = {p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*-values.yaml"))}
SCENARIOS["skaffold-dev"] = CHART / "values-dev.yaml"
KUBE_VERSIONS = ("1.30.0", "1.33.0")
RELEASE, NAMESPACE = "pricecast", "pricecast"
# The chart has no default model version (it must be pinned at deploy time); the smallest values
# that render are this pin, the one k8s/serving carries for its overlays to replace.
PINNED: dict[str, Any] = {"stable": {"modelVersion": "pin-a-registry-version"}}


def scenario_values(name: str) -> dict[str, Any]:
    """The values of one ``ci/<name>-values.yaml`` scenario."""
    return helm_python.values_from_yaml(SCENARIOS[name].read_text(encoding="utf-8"))


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """What ``helm upgrade --reuse-values -f overlay`` does to the previous values."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def render(values: dict[str, Any] | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template`` would print it."""
    return helm_python.Chart.load(CHART).render(values or {}, name=release, namespace=namespace)


def manifests(values: dict[str, Any] | None = None, **kwargs: str) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders (helm test hooks included), parsed."""
    docs = []
    for path, text in sorted(render(values, **kwargs).items()):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def by_kind_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Index objects by (kind, metadata.name)."""
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    """The server container's env as name -> value (or valueFrom)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def write_rendered(values: dict[str, Any], directory: Path) -> Path:
    """Write every rendered manifest to ``directory`` (for checkov and kubectl); return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in render(values).items():
        if path.endswith((".yaml", ".yml")) and text.strip():
            (directory / path.replace("/", "__")).write_text(text, encoding="utf-8")
    return directory
