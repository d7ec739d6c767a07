"""JSON schemas for the CRD-backed objects the chart renders (kubernetes-validate has none).

Each is the subset of the real CRD's openAPIV3Schema that the chart uses, with the same required
fields, enums, ranges and patterns (prometheus-operator v0.7x monitoring.coreos.com/v1 and Gateway
API v1.x gateway.networking.k8s.io/v1), plus ``additionalProperties: false`` so a misspelt field
fails here instead of being pruned silently by the API server.
"""

from __future__ import annotations

from typing import Any

# prometheus-operator's Duration type.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABEL_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": LABEL_MAP,
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "required": ["key", "operator"], "additionalProperties": False,
            "properties": {"key": {"type": "string"},
                           "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                           "values": {"type": "array", "items": {"type": "string"}}}}},
    },
}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
                   "namespace": {"type": "string"}, "labels": LABEL_MAP, "annotations": LABEL_MAP},
}


def _object(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind},
                       "metadata": METADATA, "spec": spec},
    }


SERVICE_MONITOR = _object("monitoring.coreos.com/v1", "ServiceMonitor", {
    "type": "object",
    "required": ["selector", "endpoints"],
    "additionalProperties": False,
    "properties": {
        "jobLabel": {"type": "string"},
        "namespaceSelector": {"type": "object", "additionalProperties": False,
                              "properties": {"any": {"type": "boolean"},
                                             "matchNames": {"type": "array", "items": {"type": "string"}}}},
        "selector": LABEL_SELECTOR,
        "endpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "port": {"type": "string"}, "path": {"type": "string", "pattern": "^/"},
                "interval": {"type": "string", "pattern": DURATION},
                "scrapeTimeout": {"type": "string", "pattern": DURATION},
                "relabelings": {"type": "array", "items": {"type": "object"}},
                "metricRelabelings": {"type": "array", "items": {"type": "object"}},
            }}},
    },
})

PROMETHEUS_RULE = _object("monitoring.coreos.com/v1", "PrometheusRule", {
    "type": "object",
    "additionalProperties": False,
    "properties": {"groups": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "interval": {"type": "string", "pattern": DURATION},
            "rules": {"type": "array", "items": {
                "type": "object", "required": ["expr"], "additionalProperties": False,
                "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                "properties": {
                    "alert": {"type": "string"}, "record": {"type": "string"},
                    "expr": {"type": ["string", "integer"]},
                    "for": {"type": "string", "pattern": DURATION},
                    "labels": LABEL_MAP, "annotations": LABEL_MAP,
                }}},
        }}}},
})

HTTP_ROUTE = _object("gateway.networking.k8s.io/v1", "HTTPRoute", {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "parentRefs": {"type": "array", "minItems": 1, "maxItems": 32, "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"group": {"type": "string"}, "kind": {"type": "string"},
                           "name": {"type": "string", "minLength": 1, "maxLength": 253},
                           "namespace": {"type": "string", "maxLength": 63},
                           "sectionName": {"type": "string", "maxLength": 253},
                           "port": {"type": "integer", "minimum": 1, "maximum": 65535}}}},
        "hostnames": {"type": "array", "maxItems": 16, "items": {
            "type": "string",
            "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}},
        "rules": {"type": "array", "maxItems": 16, "items": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "matches": {"type": "array", "maxItems": 64, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"path": {
                        "type": "object", "additionalProperties": False,
                        "properties": {"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                       "value": {"type": "string", "maxLength": 1024, "pattern": "^/"}}}}}},
                # Kind Service (the default) needs a port (the CRD's CEL rule).
                "backendRefs": {"type": "array", "maxItems": 16, "items": {
                    "type": "object", "required": ["name", "port"], "additionalProperties": False,
                    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 253},
                                   "namespace": {"type": "string"},
                                   "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                   "weight": {"type": "integer", "minimum": 0, "maximum": 1000000}}}},
            }}},
    },
})

CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE,
}
