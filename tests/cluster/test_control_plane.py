"""The control plane itself: the pinned versions, RBAC on, a node that takes pods."""
from __future__ import annotations

import json

from tests.support.cluster import NODE_NAME, TEST_IMAGE, Cluster, pinned_versions


def test_server_and_clients_are_the_pinned_versions(kube_cluster: Cluster) -> None:
    pins = pinned_versions()
    versions = json.loads(kube_cluster.kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == pins["KUBECTL_VERSION"]
    if kube_cluster.started_here:
        assert versions["serverVersion"]["gitVersion"] == pins["KUBERNETES_VERSION"]
    helm = kube_cluster.helm("version", "--template", "{{.Version}}").stdout.strip()
    assert helm == pins["HELM_VERSION"]


def test_rbac_is_enforced(kube_cluster: Cluster) -> None:
    """A workload's service account may not read secrets: authorization really runs."""
    denied = kube_cluster.kubectl("auth", "can-i", "list", "secrets", "-n", "default",
                                  "--as", "system:serviceaccount:default:default", check=False)
    assert denied.returncode == 1 and denied.stdout.strip() == "no"
    allowed = kube_cluster.kubectl("auth", "can-i", "list", "secrets", "-n", "default")
    assert allowed.stdout.strip() == "yes"


def test_a_deployment_is_scheduled_and_becomes_available(kube_cluster: Cluster) -> None:
    """Scheduler, controller-manager and kwok together: a Deployment's pods land on the kwok
    node and report Ready (kwok writes the status; no container runs)."""
    ns = "control-plane-smoke"
    kube_cluster.kubectl("create", "namespace", ns)
    try:
        kube_cluster.kubectl("create", "deployment", "smoke", "-n", ns, "--image", TEST_IMAGE, "--replicas", "2")
        kube_cluster.kubectl("rollout", "status", "deployment/smoke", "-n", ns, "--timeout", "60s")
        pods = kube_cluster.get("pods", "-n", ns)["items"]
        assert len(pods) == 2
        if kube_cluster.started_here:
            assert {p["spec"]["nodeName"] for p in pods} == {NODE_NAME}
        assert all(p["status"]["phase"] == "Running" for p in pods)
    finally:
        kube_cluster.kubectl("delete", "namespace", ns, "--wait=false")
