"""Grafana dashboards built with grafana-foundation-sdk."""
