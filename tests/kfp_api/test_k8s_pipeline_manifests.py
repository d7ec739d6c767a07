"""k8s/pipeline/: what a cluster would check, offline -- kustomize, schemas, and the wiring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from pipelines.pricecast_pipeline import CONFIG_MAP, CONFIG_MAP_KEYS, S3_SECRET, S3_SECRET_KEYS, compile_pipeline
from pricecast.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).with_name("kubectl")


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    out = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / "k8s" / "pipeline")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _by_kind(docs: list[dict], kind: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0"])
def test_every_object_validates_strictly(rendered: list[dict], version: str) -> None:
    assert {d["kind"] for d in rendered} == {"ConfigMap", "Secret", "ServiceAccount", "RoleBinding"}
    for doc in rendered:
        kubernetes_validate.validate(doc, version, strict=True)


def test_objects_live_in_kfps_namespace_without_claiming_it(rendered: list[dict]) -> None:
    assert {d["metadata"]["namespace"] for d in rendered} == {"kubeflow"}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "pricecast" for d in rendered)


def test_secret_and_config_map_carry_what_the_compiled_pipeline_reads(rendered: list[dict], tmp_path: Path) -> None:
    secret, config = _by_kind(rendered, "Secret"), _by_kind(rendered, "ConfigMap")
    assert secret["metadata"]["name"] == S3_SECRET and set(secret["stringData"]) == set(S3_SECRET_KEYS)
    assert config["metadata"]["name"] == CONFIG_MAP and set(config["data"]) == set(CONFIG_MAP_KEYS)
    assert config["data"]["store-url"].startswith("s3://")

    _, platform = yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml", image="pricecast:0.1.0").read_text())
    provided = {("Secret", d["metadata"]["name"]): set(d.get("stringData", {})) for d in rendered if d["kind"] == "Secret"}
    provided |= {("ConfigMap", d["metadata"]["name"]): set(d["data"]) for d in rendered if d["kind"] == "ConfigMap"}
    for name, executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].items():
        refs = [("Secret", r["secretName"], r["optional"], {kv["secretKey"] for kv in r["keyToEnv"]})
                for r in executor.get("secretAsEnv", [])]
        refs += [("ConfigMap", r["configMapName"], r["optional"], {kv["configMapKey"] for kv in r["keyToEnv"]})
                 for r in executor.get("configMapAsEnv", [])]
        assert ("Secret", S3_SECRET, False, set(S3_SECRET_KEYS)) in refs, name
        for kind, ref_name, optional, keys in refs:
            if optional and (kind, ref_name) not in provided:
                continue  # e.g. the alert webhook: a user adds it when they want alerts
            assert keys <= provided[(kind, ref_name)], f"{name} needs {kind} {ref_name} keys {keys}"
    # ...and every variable they become is a setting pricecast actually reads.
    for env in [*S3_SECRET_KEYS.values(), *CONFIG_MAP_KEYS.values()]:
        assert env.removeprefix("PRICECAST_").lower() in Settings.model_fields, env


def test_the_service_account_gets_kfps_pipeline_runner_role(rendered: list[dict]) -> None:
    account, binding = _by_kind(rendered, "ServiceAccount"), _by_kind(rendered, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pipeline-runner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "kubeflow"}]


# Field names of KFP's launcher config (backend/src/v2/config/s3.go: S3ProviderDefault).
_S3_PROVIDER_FIELDS = {"endpoint", "credentials", "region", "disableSSL", "forcePathStyle", "maxRetries"}


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0"])
def test_optional_s3_pipeline_root_is_a_valid_kfp_launcher_config(version: str) -> None:
    out = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / "k8s" / "pipeline-root")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (config,) = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    kubernetes_validate.validate(config, version, strict=True)
    # The launcher reads exactly this object: the name and namespace are KFP's, not ours.
    assert (config["kind"], config["metadata"]["name"], config["metadata"]["namespace"]) == \
        ("ConfigMap", "kfp-launcher", "kubeflow")
    assert config["data"]["defaultPipelineRoot"].startswith("s3://mlpipeline/")
    default = yaml.safe_load(config["data"]["providers"])["s3"]["default"]
    assert set(default) <= _S3_PROVIDER_FIELDS, set(default) - _S3_PROVIDER_FIELDS
    assert "://" not in default["endpoint"], "the launcher wants host:port; disableSSL picks http"
    assert default["credentials"]["fromEnv"] is False
    assert default["credentials"]["secretRef"] == {
        "secretName": "mlpipeline-minio-artifact", "accessKeyKey": "accesskey", "secretKeyKey": "secretkey"}
