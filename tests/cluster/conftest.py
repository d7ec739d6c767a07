"""The cluster for tests/cluster: a real control plane started once per session (see
tests/support/cluster.py), or the cluster PRICECAST_TEST_KUBECONFIG names (kind in CI)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import CRDS, Cluster, existing_cluster, start_control_plane


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("kube")
    cluster = existing_cluster(workdir)
    if cluster is not None:
        yield cluster
        return
    cluster = start_control_plane(workdir)
    print(f"\ncontrol plane ready in {cluster.start_seconds:.1f} s at {cluster.server}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def crds_installed(kube_cluster: Cluster) -> Cluster:
    """The real upstream CRDs from ../shared/crds (ServiceMonitor, PrometheusRule, HTTPRoute), established."""
    for crd in CRDS:
        kube_cluster.kubectl("apply", "--server-side", "-f", str(crd))
    kube_cluster.kubectl("wait", "--for", "condition=Established", "--timeout", "60s",
                         "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com",
                         "crd/httproutes.gateway.networking.k8s.io")
    return kube_cluster
