"""The chart's CRD-backed objects (ServiceMonitor, PrometheusRule, HTTPRoute) in every scenario,
validated by the API server itself against the real upstream CRDs (their OpenAPI schemas and CEL
rules): ``kubectl apply --dry-run=server``. The same server refuses broken ones."""
from __future__ import annotations

import copy
import json

import pytest

from tests.delivery.chart import PINNED, SCENARIOS, manifests, scenario_values
from tests.support.cluster import Cluster

CRD_GROUPS = ("monitoring.coreos.com/", "gateway.networking.k8s.io/")


def crd_objects() -> list[tuple[str, dict]]:
    objects = [(name, doc) for name in SCENARIOS for doc in manifests(scenario_values(name))]
    objects += [("defaults", doc) for doc in manifests(PINNED)]
    return [(name, doc) for name, doc in objects if doc["apiVersion"].startswith(CRD_GROUPS)]


OBJECTS = crd_objects()


def dry_run(cluster: Cluster, doc: dict):
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = "default"
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)


def test_every_crd_kind_is_rendered_by_some_scenario() -> None:
    assert {doc["kind"] for _, doc in OBJECTS} == {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}


@pytest.mark.parametrize("item", OBJECTS, ids=lambda item: f"{item[0]}:{item[1]['kind']}")
def test_the_api_server_accepts_the_object(crds_installed: Cluster, item: tuple[str, dict]) -> None:
    done = dry_run(crds_installed, item[1])
    assert done.returncode == 0, done.stderr
    assert "(server dry run)" in done.stdout


def _first(kind: str) -> dict:
    return copy.deepcopy(next(doc for _, doc in OBJECTS if doc["kind"] == kind))


def test_the_api_server_refuses_what_the_crd_schemas_forbid(crds_installed: Cluster) -> None:
    """A negative weight (OpenAPI minimum) and an unparsable `for` (OpenAPI pattern) are refused,
    each with the CRD's own message: the acceptance above is real validation."""
    route = _first("HTTPRoute")
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1
    done = dry_run(crds_installed, route)
    assert done.returncode != 0 and "weight" in done.stderr, done.stderr

    rule = _first("PrometheusRule")
    alerting = next(r for g in rule["spec"]["groups"] for r in g["rules"] if "for" in r)
    alerting["for"] = "two minutes"
    done = dry_run(crds_installed, rule)
    assert done.returncode != 0 and "for" in done.stderr, done.stderr


def test_the_api_server_enforces_the_crds_cel_rules(crds_installed: Cluster) -> None:
    """An HTTPRoute path that breaks a CEL rule of the Gateway API CRD (x-kubernetes-validations)."""
    route = _first("HTTPRoute")
    route["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "no-leading-slash"}}]
    done = dry_run(crds_installed, route)
    assert done.returncode != 0
    assert "must be an absolute path" in done.stderr, done.stderr
