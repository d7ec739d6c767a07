"""Every ci/*-values.yaml scenario installed for real: ``helm install --wait`` into the control
plane, the API server's own validation (the upstream CRDs' OpenAPI schemas and CEL rules
included) accepting every object, ``helm test``, and the commands NOTES.txt prints."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.delivery.chart import CHART, SCENARIOS
from tests.support.cluster import TEST_IMAGE, TEST_VALUES_ARGS, Cluster

CI_SCENARIOS = sorted(name for name in SCENARIOS if SCENARIOS[name].parent.name == "ci")


def image_args() -> list[str]:
    repository, tag = TEST_IMAGE.rsplit(":", 1)
    return ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}"]


def manifest_objects(cluster: Cluster, release: str, namespace: str) -> list[dict]:
    manifest = cluster.helm("get", "manifest", release, "-n", namespace).stdout
    return [d for d in yaml.safe_load_all(manifest) if d]


@pytest.fixture(scope="module")
def installed(crds_installed: Cluster) -> dict[str, str]:
    """scenario -> namespace, each installed once with --wait (kwok makes the pods Ready)."""
    namespaces = {}
    for scenario in CI_SCENARIOS:
        namespace = f"ci-{scenario}"
        crds_installed.helm("install", "pricecast", str(CHART), "-n", namespace, "--create-namespace",
                            "-f", str(SCENARIOS[scenario]), *TEST_VALUES_ARGS, *image_args(), "--wait", "--timeout", "3m",
                            timeout=240)
        namespaces[scenario] = namespace
    yield namespaces
    for namespace in namespaces.values():
        crds_installed.helm("uninstall", "pricecast", "-n", namespace, "--wait", "--timeout", "2m", check=False)
        crds_installed.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.mark.parametrize("scenario", CI_SCENARIOS)
def test_every_object_of_the_scenario_is_in_the_cluster(installed: dict[str, str], crds_installed: Cluster,
                                                        scenario: str) -> None:
    namespace = installed[scenario]
    objects = manifest_objects(crds_installed, "pricecast", namespace)
    assert objects, "helm get manifest returned nothing"
    for obj in objects:
        live = crds_installed.get(obj["kind"], obj["metadata"]["name"], "-n", namespace)
        assert live["metadata"]["labels"].get("app.kubernetes.io/instance") == "pricecast", obj["kind"]
    status = json.loads(crds_installed.helm("status", "pricecast", "-n", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        live = crds_installed.get("deployment", deployment["metadata"]["name"], "-n", namespace)
        want = live["spec"]["replicas"]
        assert live["status"].get("availableReplicas") == want, (deployment["metadata"]["name"], live["status"])


def test_the_crd_backed_objects_are_the_real_ones(installed: dict[str, str], crds_installed: Cluster) -> None:
    """ServiceMonitor, PrometheusRule and HTTPRoute were stored by the upstream CRDs' API, not skipped."""
    kinds = {(o["kind"], o["apiVersion"]) for ns in installed.values()
             for o in manifest_objects(crds_installed, "pricecast", ns)}
    assert ("ServiceMonitor", "monitoring.coreos.com/v1") in kinds
    assert ("PrometheusRule", "monitoring.coreos.com/v1") in kinds
    assert ("HTTPRoute", "gateway.networking.k8s.io/v1") in kinds
    route = crds_installed.get("httproute", "pricecast", "-n", installed["gateway"])
    weights = sorted(ref["weight"] for rule in route["spec"]["rules"] for ref in rule["backendRefs"])
    assert weights == [10, 90]


@pytest.mark.parametrize("scenario", CI_SCENARIOS)
def test_helm_test_passes_with_kwok_playing_the_test_pod(installed: dict[str, str], crds_installed: Cluster,
                                                        scenario: str) -> None:
    """``helm test`` creates the chart's test pod and waits for it; kwok ends it Succeeded (its
    script, which calls the Service, does not run here: the kind workflow runs it for real)."""
    namespace = installed[scenario]
    done = crds_installed.helm("test", "pricecast", "-n", namespace, "--timeout", "2m")
    assert re.search(r"TEST SUITE:\s+pricecast-test", done.stdout), done.stdout
    assert re.search(r"Phase:\s+Succeeded", done.stdout), done.stdout


def notes_commands(notes: str) -> list[str]:
    """The kubectl/helm command lines NOTES.txt prints (indented lines starting with the tool)."""
    return [line.strip() for line in notes.splitlines() if re.match(r"\s+(kubectl|helm) ", line)]


@pytest.mark.parametrize("scenario", ["stable-only", "canary-10"])
def test_the_commands_notes_prints_work(installed: dict[str, str], crds_installed: Cluster, scenario: str) -> None:
    """Each kubectl/helm command NOTES.txt prints runs as printed, except port-forward (pods have
    no network here) and the rollback (a test of its own, tests/cluster/test_rollbacks.py)."""
    namespace = installed[scenario]
    notes = crds_installed.helm("get", "notes", "pricecast", "-n", namespace).stdout
    commands = notes_commands(notes)
    assert any(c.startswith("kubectl") and "rollout status" in c for c in commands), notes
    assert any(c.startswith("helm test") for c in commands), notes
    ran = 0
    for command in commands:
        if "port-forward" in command or "rollout undo" in command:
            continue
        argv = command.split()
        tool = crds_installed.kubectl if argv[0] == "kubectl" else crds_installed.helm
        tool(*argv[1:], timeout=180)
        ran += 1
    assert ran >= 2
