"""The README's delivery commands, literally, against the control plane: the canary flow with
helm applying, both ways back ("Two ways back"), and the recovery from a failed upgrade.

Each test runs the lines of a README block through ``bash`` as a user would type them (helm,
kubectl and the venv's ``pricecast`` on PATH), from a scratch directory that holds the chart
at ``helm/pricecast``, and checks the Deployments' pod templates after each step.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pricecast.registry import ModelVersion, RegistryStore, register, rollback
from tests.cluster.readme import bash_block, fill
from tests.delivery.chart import CHART
from tests.support.cluster import NEVER_READY_IMAGE, TEST_VALUES_ARGS, Cluster

RELEASE = NAMESPACE = "pricecast"
VERSIONS = ("20261201-000000-aaaaaaa1", "20261202-000000-bbbbbbb2", "20261203-000000-ccccccc3")


def seed_registry(store_url: str, versions: tuple[str, ...] = VERSIONS) -> None:
    """A registry with ``versions`` promoted in order (the last one active), as runs would leave it."""
    store = RegistryStore(store_url)
    for i, version in enumerate(versions):
        candidate = ModelVersion(version=version, created_at=f"2026-12-0{i + 1}T00:00:00+00:00",
                                 sha256=f"{i:064x}", data_hash=f"{i:064x}",
                                 artifact=f"models/{version}/model.skops", decision="promoted",
                                 reason="test seed")
        store.update(lambda reg, c=candidate: register(reg, c))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A user's working directory: the chart at helm/pricecast (as in a clone), nothing else."""
    (tmp_path / "helm").mkdir()
    (tmp_path / "helm" / "pricecast").symlink_to(CHART)
    return tmp_path


@pytest.fixture
def release_ns(crds_installed: Cluster, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An empty ``pricecast`` namespace before the test (the README's names), removed after;
    returns the environment a user's shell would have (the model store with the registry)."""
    store = f"file://{tmp_path / 'store'}"
    seed_registry(store)
    _remove_release(crds_installed)
    yield {"PRICECAST_STORE_URL": store}
    _remove_release(crds_installed)


def _remove_release(cluster: Cluster) -> None:
    cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "2m", check=False)
    cluster.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout", "120s",
                    check=False, timeout=150)


def template_version(cluster: Cluster, track: str) -> str:
    return cluster.kubectl("get", "deployment", f"{RELEASE}-{track}", "-n", NAMESPACE, "-o",
                           "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"PRICECAST_MODEL_VERSION\")].value}"
                           ).stdout.strip()


def canary_exists(cluster: Cluster) -> bool:
    return cluster.exists("deployment", f"{RELEASE}-canary", "-n", NAMESPACE)


def rolled_out(cluster: Cluster, track: str) -> None:
    cluster.kubectl("rollout", "status", f"deployment/{RELEASE}-{track}", "-n", NAMESPACE, "--timeout", "90s")


def ship_it_lines() -> list[str]:
    lines = bash_block("Ship it: Helm, canary, rollback")
    assert any(line.startswith("helm install") for line in lines), lines
    return lines


def test_readme_canary_flow_with_helm_applying(crds_installed: Cluster, workspace: Path,
                                               release_ns: dict[str, str]) -> None:
    """install → helm test → canary start V2 10 % → promote → start V3 → rollback, as the README
    shows them; `canary analyze` needs live traffic and runs in tests/delivery and the kind job."""
    v1, v2, v3 = VERSIONS
    # The README pins the registry's active version at install time (`pricecast registry resolve
    # active`): make it v1, as after an operator's rollback, so the install must resolve, not float.
    RegistryStore(release_ns["PRICECAST_STORE_URL"]).update(lambda reg: rollback(reg, to=v1))
    subs = {"V2": v2}
    steps = [fill(line, subs) for line in ship_it_lines() if "canary analyze" not in line]
    assert any("pricecast registry resolve active" in line for line in steps if line.startswith("helm install"))
    cluster = crds_installed
    for line in steps:
        cluster.sh(line, cwd=workspace, **release_ns)
        if line.startswith("helm install"):
            rolled_out(cluster, "stable")
            assert template_version(cluster, "stable") == v1
            assert not canary_exists(cluster)
        elif "canary start" in line:
            rolled_out(cluster, "canary")
            assert template_version(cluster, "canary") == v2
            assert template_version(cluster, "stable") == v1
        elif "canary promote" in line:
            rolled_out(cluster, "stable")
            assert template_version(cluster, "stable") == v2
            assert not canary_exists(cluster)
    assert template_version(cluster, "stable") == v2, "the README flow must end with V2 promoted"

    # Another canary, this time rolled back: stable keeps V2, the canary Deployment goes away.
    cluster.sh(f"pricecast canary start --version {v3} --weight 10", cwd=workspace, **release_ns)
    rolled_out(cluster, "canary")
    assert template_version(cluster, "canary") == v3
    cluster.sh("pricecast canary rollback", cwd=workspace, **release_ns)
    assert not canary_exists(cluster)
    assert template_version(cluster, "stable") == v2
    history = cluster.helm("history", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
    assert history.count('"revision"') == 5  # install, start, promote, start, rollback


def test_helm_rollback_restores_the_whole_previous_release(crds_installed: Cluster, workspace: Path,
                                                           release_ns: dict[str, str]) -> None:
    """`helm rollback <release>`: every object and value of the previous revision comes back
    (here: the stable model, the canary track and its Deployment, the ConfigMap's settings)."""
    v1, v2, v3 = VERSIONS
    cluster = crds_installed
    cluster.helm("install", RELEASE, "helm/pricecast", "-n", NAMESPACE, "--create-namespace", *TEST_VALUES_ARGS,
                 "--set", f"stable.modelVersion={v1}", "--set", "canary.enabled=true",
                 "--set", f"canary.modelVersion={v2}", "--wait", "--timeout", "2m", cwd=workspace)
    before = cluster.get("configmap", "-n", NAMESPACE, "-l", "app.kubernetes.io/instance=pricecast")["items"]
    cluster.helm("upgrade", RELEASE, "helm/pricecast", "-n", NAMESPACE, "--reuse-values",
                 "--set", f"stable.modelVersion={v3}", "--set", "canary.enabled=false",
                 "--set", "server.logLevel=DEBUG", "--wait", "--timeout", "2m", cwd=workspace)
    assert template_version(cluster, "stable") == v3 and not canary_exists(cluster)

    cluster.sh(f"helm rollback {RELEASE} -n {NAMESPACE} --wait", cwd=workspace, **release_ns)
    assert template_version(cluster, "stable") == v1
    assert canary_exists(cluster) and template_version(cluster, "canary") == v2
    after = cluster.get("configmap", "-n", NAMESPACE, "-l", "app.kubernetes.io/instance=pricecast")["items"]
    assert {c["metadata"]["name"]: c.get("data") for c in after} == {c["metadata"]["name"]: c.get("data") for c in before}


def test_rollout_undo_then_the_readme_reconcile_keeps_the_bad_version_out(
        crds_installed: Cluster, workspace: Path, release_ns: dict[str, str]) -> None:
    """"Two ways back", the kubectl way: `rollout undo` brings the previous model back at once;
    the README's reconcile lines (run as written) make Helm and the registry agree, so the next
    `canary start` (helm upgrade --reuse-values) does not put the bad version back."""
    good, bad, next_canary = VERSIONS
    cluster = crds_installed
    cluster.helm("install", RELEASE, "helm/pricecast", "-n", NAMESPACE, "--create-namespace", *TEST_VALUES_ARGS,
                 "--set", f"stable.modelVersion={good}", "--wait", "--timeout", "2m", cwd=workspace)
    cluster.helm("upgrade", RELEASE, "helm/pricecast", "-n", NAMESPACE, "--reuse-values",
                 "--set", f"stable.modelVersion={bad}", "--wait", "--timeout", "2m", cwd=workspace)
    assert template_version(cluster, "stable") == bad

    lines = bash_block("Two ways back")
    assert lines[0].startswith("kubectl -n pricecast rollout undo"), lines
    that_version = None
    for line in lines:
        if "<that version>" in line:
            assert that_version is not None, "a reconcile line needs the version read before it"
            line = fill(line, {"<that version>": that_version})
        done = cluster.sh(line, cwd=workspace, **release_ns)
        if "rollout undo" in line:
            rolled_out(cluster, "stable")
        if "jsonpath" in line:
            that_version = done.stdout.strip()
            assert that_version == good, "rollout undo must bring the previous model back"
    values = cluster.helm("get", "values", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
    assert f'"modelVersion":"{good}"' in values.replace(" ", "")
    assert RegistryStore(release_ns["PRICECAST_STORE_URL"]).load().active == good

    cluster.sh(f"pricecast canary start --version {next_canary} --weight 10", cwd=workspace, **release_ns)
    rolled_out(cluster, "canary")
    assert template_version(cluster, "stable") == good, "the next helm upgrade brought the bad version back"
    assert template_version(cluster, "canary") == next_canary


def test_a_failed_upgrade_and_the_readme_recovery(crds_installed: Cluster, workspace: Path,
                                                  release_ns: dict[str, str]) -> None:
    """An upgrade whose pods never become ready (kwok reports ErrImagePull for that image) fails
    `helm upgrade --wait`; the README's recovery returns the release to the last good revision."""
    v1, v2, _ = VERSIONS
    cluster = crds_installed
    cluster.helm("install", RELEASE, "helm/pricecast", "-n", NAMESPACE, "--create-namespace", *TEST_VALUES_ARGS,
                 "--set", f"stable.modelVersion={v1}", "--wait", "--timeout", "2m", cwd=workspace)
    repository, tag = NEVER_READY_IMAGE
    failed = cluster.helm("upgrade", RELEASE, "helm/pricecast", "-n", NAMESPACE, "--reuse-values",
                          "--set", f"stable.modelVersion={v2}", "--set", f"image.repository={repository}",
                          "--set", f"image.tag={tag}", "--wait", "--timeout", "20s", cwd=workspace, check=False)
    assert failed.returncode != 0
    assert "context deadline exceeded" in failed.stderr or "timed out" in failed.stderr.lower() \
        or "not ready" in failed.stderr.lower(), failed.stderr
    status = cluster.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
    assert '"status":"failed"' in status.replace(" ", "")

    for line in bash_block("When an upgrade fails"):
        cluster.sh(line, cwd=workspace, **release_ns)
    rolled_out(cluster, "stable")
    assert template_version(cluster, "stable") == v1
    image = cluster.kubectl("get", "deployment", f"{RELEASE}-stable", "-n", NAMESPACE, "-o",
                            "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert not image.endswith(f":{tag}")
    status = cluster.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
    assert '"status":"deployed"' in status.replace(" ", "")
