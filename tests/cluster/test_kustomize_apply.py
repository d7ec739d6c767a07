"""k8s/serving, k8s/pipeline and k8s/pipeline-root applied server-side with the very lines the
README (kind quick-start, step 4) and docs/delivery.md ("Plain manifests") give, into the
namespaces they name; ``kubectl delete -k k8s/serving`` removes only what it created."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cluster.readme import bash_block
from tests.support.cluster import REPO, Cluster

K8S = REPO / "k8s"
DELIVERY_DOC = REPO / "docs" / "delivery.md"


def built(cluster: Cluster, directory: Path) -> list[dict]:
    """What ``kubectl kustomize`` makes of a directory."""
    return [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(directory)).stdout) if d]


def applied_by(cluster: Cluster, objects: list[dict], manager: str) -> None:
    for obj in objects:
        live = cluster.get(obj["kind"], obj["metadata"]["name"], "-n", obj["metadata"]["namespace"], "--show-managed-fields")
        managers = {(m["manager"], m["operation"]) for m in live["metadata"].get("managedFields", [])}
        assert (manager, "Apply") in managers, (obj["kind"], obj["metadata"]["name"], managers)


@pytest.fixture
def clean_pricecast_namespace(kube_cluster: Cluster) -> Cluster:
    kube_cluster.kubectl("delete", "namespace", "pricecast", "--ignore-not-found", "--wait=true", "--timeout", "120s",
                         timeout=150)
    return kube_cluster


@pytest.mark.parametrize(("block", "base"), [(0, "pipeline"), (1, "pipeline-root")])
def test_readme_step_4_applies_server_side_into_kubeflow(kube_cluster: Cluster, block: int, base: str) -> None:
    objects = built(kube_cluster, K8S / base)
    # The bases carry no Namespace on purpose (`kubectl delete -k` must never delete KFP's):
    # KFP's install creates `kubeflow` before step 4.
    assert objects and all(o["kind"] != "Namespace" for o in objects)
    assert {o["metadata"].get("namespace") for o in objects} == {"kubeflow"}
    if not kube_cluster.exists("namespace", "kubeflow"):
        kube_cluster.kubectl("create", "namespace", "kubeflow")
    (line,) = bash_block("4. Apply what the pipeline needs", index=block)
    assert line.startswith(f"kubectl apply --server-side -k k8s/{base}"), line
    done = kube_cluster.sh(line, cwd=REPO)
    assert "serverside-applied" in done.stdout
    applied_by(kube_cluster, objects, "kubectl")


def test_plain_manifests_apply_and_delete_removes_only_their_own(clean_pricecast_namespace: Cluster) -> None:
    cluster = clean_pricecast_namespace
    lines = bash_block("Plain manifests", readme=DELIVERY_DOC)
    assert lines[-1] == "kubectl apply --server-side -k k8s/serving", lines
    for line in lines:
        cluster.sh(line, cwd=REPO)
    objects = built(cluster, K8S / "serving")
    assert {o["metadata"]["namespace"] for o in objects} == {"pricecast"}
    applied_by(cluster, objects, "kubectl")
    cluster.kubectl("rollout", "status", "deployment/pricecast-stable", "-n", "pricecast", "--timeout", "90s")

    # The user's own object in the same namespace, and the Secret the docs had them create.
    neighbour = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "users-own", "namespace": "pricecast"},
                 "data": {"keep": "me"}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(neighbour))
    cluster.kubectl("delete", "-k", "k8s/serving", "--wait=true", "--timeout", "120s", cwd=REPO, timeout=150)
    for obj in objects:
        assert not cluster.exists(obj["kind"], obj["metadata"]["name"], "-n", "pricecast"), obj["metadata"]["name"]
    assert cluster.exists("configmap", "users-own", "-n", "pricecast")
    assert cluster.exists("secret", "pricecast-s3", "-n", "pricecast")
    assert cluster.exists("namespace", "pricecast")
