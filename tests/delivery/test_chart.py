"""The Helm chart through the real Helm engine: strict lint, every ci/ scenario, and what it renders."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest

from tests.delivery.chart import (
    CHART, KUBE_VERSIONS, PINNED, ROOT, SCENARIOS, by_kind_name, container_env, deep_merge, manifests, render,
    scenario_values,
)

STABLE, CANARY = ("Deployment", "pricecast-stable"), ("Deployment", "pricecast-canary")


def _pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for d in docs:
        if d["kind"] == "Deployment":
            specs.append((d["metadata"]["name"], d["spec"]["template"]["spec"]))
        elif d["kind"] == "Pod":
            specs.append((d["metadata"]["name"], d["spec"]))
    return specs


def test_the_required_scenarios_exist() -> None:
    assert {"stable-only", "canary-10", "gateway", "kind", "skaffold-dev"} <= set(SCENARIOS)


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", [None, *SCENARIOS])
def test_lint_strict_is_clean(scenario: str | None, kube: str) -> None:
    values = scenario_values(scenario) if scenario else PINNED  # the defaults need only a version
    report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{kube}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 1 = info ("icon is recommended")
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_namespaced_and_labelled(scenario: str) -> None:
    for doc in manifests(scenario_values(scenario)):
        meta = doc["metadata"]
        assert meta["namespace"] == "pricecast", (doc["kind"], meta["name"])
        assert meta["labels"]["app.kubernetes.io/instance"] == "pricecast"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert meta["labels"]["helm.sh/chart"] == "pricecast-0.1.0"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_are_locked_down(scenario: str) -> None:
    specs = _pod_specs(manifests(scenario_values(scenario)))
    assert len(specs) >= 2  # at least the stable Deployment and the helm test pod
    for name, spec in specs:
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"] and sc["runAsUser"] == 1000, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and \
                   {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), name


def test_server_pods_probe_health_and_readiness() -> None:
    docs = by_kind_name(manifests(scenario_values("canary-10")))
    for key in (STABLE, CANARY):
        deployment = docs[key]
        assert deployment["spec"]["revisionHistoryLimit"] == 10
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["pricecast", "serve"]
        assert container["image"] == "pricecast:0.1.0"
        assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]


def test_stable_only_has_one_track_pinned() -> None:
    docs = by_kind_name(manifests(scenario_values("stable-only")))
    assert CANARY not in docs
    env = container_env(docs[STABLE])
    assert env["PRICECAST_MODEL_VERSION"] == "20250101-000000-1a2b3c4d"
    assert env["PRICECAST_TRACK"] == "stable"
    assert env["PRICECAST_S3_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "pricecast-s3", "key": "access-key-id"}}
    assert "PRICECAST_FAULT_ERROR_RATE" not in env and "PRICECAST_FAULT_LATENCY_MS" not in env
    assert [k for k in docs if k[0] == "PodDisruptionBudget"] == [("PodDisruptionBudget", "pricecast-stable")]
    config = docs[("ConfigMap", "pricecast")]["data"]
    assert config["PRICECAST_STORE_URL"] == "s3://pricecast/store" and config["PRICECAST_PORT"] == "8080"
    assert config["PRICECAST_GRACEFUL_TIMEOUT_S"] == "28"  # 35 s grace - 5 s preStop - 2 s margin


def test_canary_10_runs_both_tracks_by_replica_ratio() -> None:
    docs = by_kind_name(manifests(scenario_values("canary-10")))
    stable, canary = docs[STABLE], docs[CANARY]
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (9, 1)
    assert container_env(canary)["PRICECAST_MODEL_VERSION"] == "20250108-000000-5e6f7a8b"
    assert container_env(canary)["PRICECAST_TRACK"] == "canary"
    # One Service selects both tracks; each Deployment selects only its own.
    selector = docs[("Service", "pricecast")]["spec"]["selector"]
    for deployment in (stable, canary):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
    assert stable["spec"]["selector"]["matchLabels"]["track"] == "stable"
    assert canary["spec"]["selector"]["matchLabels"]["track"] == "canary"
    assert ("PodDisruptionBudget", "pricecast-canary") in docs
    assert ("HTTPRoute", "pricecast") not in docs


def test_canary_10_ships_monitoring_for_kube_prometheus_stack() -> None:
    docs = by_kind_name(manifests(scenario_values("canary-10")))
    monitor = docs[("ServiceMonitor", "pricecast")]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    rule = docs[("PrometheusRule", "pricecast")]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert {"PricecastHighErrorRatio", "PricecastHighLatencyP99", "PricecastTargetDown",
            "PricecastNoPredictions", "PricecastModelLoadFailures", "PricecastDriftHigh"} <= alerts
    dashboard = docs[("ConfigMap", "pricecast-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"]["grafana_folder"] == "MLOps"
    shipped = json.loads(dashboard["data"]["pricecast.json"])
    assert shipped == json.loads((ROOT / "delivery/monitoring/dashboards/pricecast.json").read_text())
    # The dashboard and rules are not server pods: the Service must not select them.
    assert dashboard["metadata"]["labels"]["app.kubernetes.io/component"] == "monitoring"


def test_gateway_splits_exactly_by_weight() -> None:
    docs = by_kind_name(manifests(scenario_values("gateway")))
    route = docs[("HTTPRoute", "pricecast")]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"][0]["name"] == "eg"
    refs = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
    assert refs == {"pricecast-stable": 90, "pricecast-canary": 10}
    for name in refs:
        service = docs[("Service", name)]
        assert service["spec"]["selector"]["track"] == name.removeprefix("pricecast-")
    # The stable track is autoscaled: the Deployment leaves replicas to the HPA.
    assert "replicas" not in docs[STABLE]["spec"]
    hpa = docs[("HorizontalPodAutoscaler", "pricecast-stable")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "pricecast-stable"
    assert docs[CANARY]["spec"]["replicas"] == 1
    policy = docs[("NetworkPolicy", "pricecast")]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    peers = policy["spec"]["ingress"][0]["from"]
    assert len(peers) == 3  # the gateway, Prometheus, and the chart's own helm test pod
    assert peers[2]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"


def test_gateway_without_canary_sends_everything_to_stable() -> None:
    values = deep_merge(scenario_values("gateway"), {"canary": {"enabled": False}})
    docs = by_kind_name(manifests(values))
    refs = docs[("HTTPRoute", "pricecast")]["spec"]["rules"][0]["backendRefs"]
    assert refs == [{"name": "pricecast-stable", "port": 8080, "weight": 100}]
    assert ("Service", "pricecast-canary") not in docs


def test_config_change_rolls_pods_but_a_canary_does_not_touch_stable() -> None:
    base = scenario_values("stable-only")
    stable_template = by_kind_name(manifests(base))[STABLE]["spec"]["template"]
    with_canary = deep_merge(base, {"canary": {"enabled": True, "modelVersion": "v2"}})
    assert by_kind_name(manifests(with_canary))[STABLE]["spec"]["template"] == stable_template
    more_workers = deep_merge(base, {"server": {"workers": 4}})
    rolled = by_kind_name(manifests(more_workers))[STABLE]["spec"]["template"]
    assert rolled["metadata"]["annotations"]["checksum/config"] != \
        stable_template["metadata"]["annotations"]["checksum/config"]


def test_fault_injection_reaches_only_the_track_it_is_set_on() -> None:
    values = deep_merge(scenario_values("canary-10"), {"canary": {"faultInjection": {"errorRate": 0.2, "latencyMs": 50}}})
    docs = by_kind_name(manifests(values))
    assert container_env(docs[CANARY])["PRICECAST_FAULT_ERROR_RATE"] == "0.2"
    assert container_env(docs[CANARY])["PRICECAST_FAULT_LATENCY_MS"] == "50"
    assert "PRICECAST_FAULT_ERROR_RATE" not in container_env(docs[STABLE])
    assert "fault injection is on" in render(values)["pricecast/templates/NOTES.txt"]


def test_image_digest_wins_over_tag() -> None:
    digest = "sha256:" + "a" * 64
    docs = by_kind_name(manifests(deep_merge(PINNED, {"image": {"repository": "ghcr.io/acme/pricecast", "digest": digest}})))
    assert docs[STABLE]["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/acme/pricecast@{digest}"


def test_fullname_does_not_repeat_the_chart_name() -> None:
    names = {d["metadata"]["name"] for d in manifests(PINNED, release="prod")}
    assert "prod-pricecast-stable" in names
    assert "pricecast-stable" in {d["metadata"]["name"] for d in manifests(PINNED, release="pricecast")}


@pytest.mark.parametrize("values, message", [
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ({"canary": {"enabled": True}}, "/canary/modelVersion"),
    ({"canary": {"weight": 150}}, "/canary/weight"),
    ({"stable": {"faultInjection": {"errorRate": 2}}}, "/stable/faultInjection/errorRate"),
    ({"model": {"storeUrl": "/data/store"}}, "/model/storeUrl"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
])
def test_schema_refuses_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=message):
        render(deep_merge(PINNED, values))


@pytest.mark.parametrize("values, message", [
    ({}, "/stable/modelVersion"),  # no default: a version must be chosen at deploy time
    ({"stable": {"modelVersion": "active"}}, "/stable/modelVersion"),
    ({"stable": {"modelVersion": "v1"}, "canary": {"enabled": True, "modelVersion": "active"}}, "/canary/modelVersion"),
    ({"stable": {"modelVersion": "active"}, "model": {"allowFloatingVersion": False}}, "/stable/modelVersion"),
])
def test_a_floating_or_missing_model_version_is_refused(values: dict[str, Any], message: str) -> None:
    """`active` resolved by each pod at its own start gives a mixed fleet and never sees a rollback."""
    with pytest.raises(helm_python.HelmValuesError, match=message):
        render(values)


def test_every_pod_of_a_track_serves_the_version_in_its_template() -> None:
    docs = by_kind_name(manifests(scenario_values("canary-10")))
    assert container_env(docs[STABLE])["PRICECAST_MODEL_VERSION"] == "20250101-000000-1a2b3c4d"
    assert container_env(docs[CANARY])["PRICECAST_MODEL_VERSION"] == "20250108-000000-5e6f7a8b"


def test_only_an_explicit_development_switch_lets_a_track_float() -> None:
    dev = scenario_values("skaffold-dev")
    assert dev["model"]["allowFloatingVersion"] is True
    assert container_env(by_kind_name(manifests(dev))[STABLE])["PRICECAST_MODEL_VERSION"] == "active"
    floating_without_switch = deep_merge(dev, {"model": {"allowFloatingVersion": False}})
    with pytest.raises(helm_python.HelmValuesError, match="/stable/modelVersion"):
        render(floating_without_switch)
    production = [name for name in SCENARIOS if name != "skaffold-dev"]
    assert all(not scenario_values(name).get("model", {}).get("allowFloatingVersion") for name in production)


def test_httproute_needs_a_gateway() -> None:
    with pytest.raises(helm_python.HelmRenderError, match="parentRefs needs at least one Gateway"):
        render(deep_merge(PINNED, {"httpRoute": {"enabled": True}}))


def test_every_values_key_is_commented() -> None:
    """helm-docs style: a key is documented by a comment right above it or above one of its parents."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    ancestors: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    undocumented = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- ") or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        documented = i > 0 and lines[i - 1].strip().startswith("#")
        if not documented and not any(d for _, d in ancestors) and not stripped.endswith(":"):
            undocumented.append(line)
        if stripped.endswith(":"):
            ancestors.append((indent, documented))
    assert undocumented == []


def test_schema_forbids_unknown_keys_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    free_form = {"podSecurityContext", "securityContext", "affinity", "livenessProbe", "readinessProbe", "startupProbe"}
    for key, prop in schema["properties"].items():
        if prop.get("type") == "object" and "properties" in prop:
            assert prop.get("additionalProperties") is False, key
    # Every default key is in the schema, and the schema has nothing values.yaml does not document.
    assert set(schema["properties"]) == set(helm_python.Chart.load(CHART).values)
    assert free_form <= set(schema["properties"])
