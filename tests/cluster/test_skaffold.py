"""skaffold, built from its Go module, on this repository: diagnose, render for kind, build the
image with the local Docker daemon, and deploy that image into the control plane.

`skaffold dev`'s file sync copies into running containers, which kwok does not run: it stays
documented (docs/delivery.md) and is exercised by the kind workflow, not here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import REPO, Cluster, ensure_binaries
from tests.support.docker import ensure_docker

QUIET = "--update-check=false --interactive=false"


@dataclass(frozen=True)
class Skaffold:
    """skaffold against the cluster, as a user's shell runs it, with its own scratch HOME."""

    cluster: Cluster
    home: Path

    def __call__(self, args: str, **kw):
        # skaffold 2.16 runs `helm version --client`, which Helm 4 refuses ("unknown flag: --client"):
        # it gets Helm 3 first on its PATH, as docs/delivery.md tells skaffold users.
        helm3 = self.cluster.bin_dir / "helm3"
        return self.cluster.sh(f'PATH="{helm3}:$PATH" skaffold {args} {QUIET}', cwd=REPO, HOME=str(self.home), **kw)


@pytest.fixture(scope="module")
def skaffold(kube_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Skaffold:
    """skaffold built, with a scratch HOME for its global config (~/.skaffold) where metrics
    collection and update checks are off: the tests reach nothing off this machine."""
    ensure_binaries(("skaffold", "helm3/helm"))
    home = tmp_path_factory.mktemp("skaffold-home")
    for key in ("collect-metrics", "update-check"):
        kube_cluster.sh(f"skaffold config set --global {key} false", cwd=REPO, HOME=str(home))
    return Skaffold(kube_cluster, home)


def test_diagnose_reads_this_repository(skaffold: Skaffold) -> None:
    done = skaffold("diagnose --yaml-only")
    config = yaml.safe_load(done.stdout)
    assert config["metadata"]["name"] == "pricecast"
    assert config["build"]["artifacts"][0]["image"] == "pricecast"


def rendered_stable_image(skaffold: Skaffold, tmp_path: Path) -> str:
    """`skaffold render -p kind` as kind users run it: the chart with values-dev.yaml and an image
    tag computed by the inputDigest tag policy. (`--digest-source=none` would render
    `image: ":"`: the chart's image comes only from skaffold.)"""
    rendered = tmp_path / "rendered.yaml"
    skaffold(f"render -p kind --digest-source=tag --offline=true --output {rendered}", timeout=900)
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert "pricecast-stable" in deployments
    template = deployments["pricecast-stable"]["spec"]["template"]["spec"]
    # values-dev.yaml: the init container that fills /dev-src for file sync, first on PYTHONPATH.
    env = {e["name"]: e.get("value") for e in template["containers"][0].get("env", [])}
    assert env.get("PYTHONPATH", "").startswith("/dev-src"), env
    assert template.get("initContainers"), "values-dev.yaml's file-sync init container is missing"
    image = template["containers"][0]["image"]
    repository, _, tag = image.partition(":")
    assert repository == "pricecast" and len(tag) == 64, image
    return image


@pytest.mark.docker
def test_render_for_kind_build_with_local_docker_then_deploy_into_the_control_plane(skaffold: Skaffold, tmp_path: Path) -> None:
    problem = ensure_docker()
    assert problem is None, f"skaffold build needs the Docker engine: {problem}"
    rendered_stable_image(skaffold, tmp_path)
    artifacts = tmp_path / "build.json"
    skaffold(f"build -p kind --push=false --file-output {artifacts}", timeout=900)
    (build,) = json.loads(artifacts.read_text())["builds"]
    assert build["imageName"] == "pricecast"
    tag = build["tag"]
    skaffold.cluster.run("docker", "image", "inspect", tag)

    cluster = skaffold.cluster
    cluster.kubectl("delete", "namespace", "pricecast", "--ignore-not-found", "--wait=true", "--timeout", "120s",
                    timeout=150)
    try:
        # The kind profile names the context kind-pricecast; --kube-context points it at this
        # control plane instead (which also means no `kind load`: kwok pulls nothing).
        skaffold(f"deploy -p kind --kube-context pricecast-test --build-artifacts {artifacts} "
                 "--load-images=false --status-check=true", timeout=600)
        image = cluster.kubectl("get", "deployment", "pricecast-stable", "-n", "pricecast", "-o",
                                "jsonpath={.spec.template.spec.containers[0].image}").stdout
        assert image == tag
        status = json.loads(cluster.helm("status", "pricecast", "-n", "pricecast", "-o", "json").stdout)
        assert status["info"]["status"] == "deployed"
    finally:
        skaffold("delete -p kind --kube-context pricecast-test", check=False)
