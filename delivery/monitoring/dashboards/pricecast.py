"""The pricecast Grafana dashboard, built in code with grafana-foundation-sdk.

Panels compare the tracks (stable/canary) and model versions side by side: prediction traffic,
error ratio, p50/p95/p99 latency, in-flight requests, the loaded models, predictions, model load
failures and input drift. ``python -m delivery.monitoring.build`` writes the JSON (committed next to this
file and shipped by the chart); :data:`PANEL_QUERIES` lists each panel's PromQL for the test that
runs them against a real Prometheus.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh, VariableSort

from pricecast.canary.analysis import PREDICT_ENDPOINTS

UID = "pricecast-serving"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every query is scoped by the dashboard variables; `namespace` is empty outside the Prometheus
# Operator, and =~".*" matches a missing label too.
SCOPE = 'job=~"$job",namespace=~"$namespace",track=~"$track"'
PREDICT = f'{SCOPE},endpoint=~"{PREDICT_ENDPOINTS}"'
RATE = "$__rate_interval"


def _q(expr: str, legend: str, ref: str = "A", *, instant: bool = False) -> Dataquery:
    query = Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    return query.instant() if instant else query.range()


def _latency_quantile(q: float) -> str:
    return (f"histogram_quantile({q}, sum by (le, track, model_version) "
            f"(rate(pricecast_request_duration_seconds_bucket{{{PREDICT}}}[{RATE}])))")


def _panels() -> list[tuple[str, list[Any]]]:
    """(row title, panel builders) in display order."""
    requests = f"sum by (track, model_version) (rate(pricecast_requests_total{{{PREDICT}}}[{RATE}]))"
    errors = (f'sum by (track, model_version) (rate(pricecast_requests_total{{{PREDICT},status_class="5xx"}}[{RATE}]))'
              f" / {requests}")
    canary_share = (f'(sum(rate(pricecast_requests_total{{{PREDICT},track="canary"}}[{RATE}])) or vector(0))'
                    f" / sum(rate(pricecast_requests_total{{{PREDICT}}}[{RATE}]))")
    traffic = [
        timeseries.Panel().title("Prediction requests / s").unit("reqps").span(8).height(8)
        .description("Predict and infer requests by track and model version.")
        .with_target(_q(requests, "{{track}} {{model_version}}")),
        timeseries.Panel().title("Error ratio (5xx)").unit("percentunit").min(0).span(8).height(8)
        .description("Share of prediction requests answered 5xx; canary analysis rolls back above 1 %.")
        .with_target(_q(errors, "{{track}} {{model_version}}")),
        stat.Panel().title("Canary share of traffic").unit("percentunit").span(4).height(8)
        .description("What the Service or HTTPRoute actually sends to the canary.")
        .with_target(_q(canary_share, "canary")),
        timeseries.Panel().title("Requests in flight").span(4).height(8)
        .with_target(_q(f"sum by (track) (pricecast_requests_in_flight{{{SCOPE}}})", "{{track}}")),
        timeseries.Panel().title("Responses by status class").unit("reqps").span(24).height(7)
        .with_target(_q(f"sum by (track, status_class) (rate(pricecast_requests_total{{{PREDICT}}}[{RATE}]))",
                        "{{track}} {{status_class}}")),
    ]
    latency = [
        timeseries.Panel().title("Latency p50 / p95 / p99").unit("s").span(24).height(9)
        .description("Server-side time per prediction request, by track and model version.")
        .with_target(_q(_latency_quantile(0.5), "p50 {{track}} {{model_version}}", "A"))
        .with_target(_q(_latency_quantile(0.95), "p95 {{track}} {{model_version}}", "B"))
        .with_target(_q(_latency_quantile(0.99), "p99 {{track}} {{model_version}}", "C")),
    ]
    model = [
        table.Panel().title("Loaded models").span(12).height(7)
        .description("One row per track and version: sha256 and training time of the model each pod serves.")
        .with_target(_q(f"count by (track, model_version, sha256, trained_at) (pricecast_model_info{{{SCOPE}}})",
                        "", instant=True).format("table")),
        stat.Panel().title("Model load failures (time range)").span(4).height(7)
        .description("Failed loads (missing version, sha256 mismatch, unreadable bytes); pods stay unready.")
        .with_target(_q(f"sum(increase(pricecast_model_load_failures_total{{{SCOPE}}}[$__range])) or vector(0)",
                        "failures")),
        timeseries.Panel().title("Predicted log return p5 / p50 / p95").span(8).height(7)
        .description("The distribution of predictions; a shift between versions shows a different model.")
        .with_target(_q(f"histogram_quantile(0.5, sum by (le, track, model_version) "
                        f"(rate(pricecast_prediction_value_bucket{{{SCOPE}}}[{RATE}])))", "p50 {{track}} {{model_version}}", "A"))
        .with_target(_q(f"histogram_quantile(0.05, sum by (le, track, model_version) "
                        f"(rate(pricecast_prediction_value_bucket{{{SCOPE}}}[{RATE}])))", "p5 {{track}} {{model_version}}", "B"))
        .with_target(_q(f"histogram_quantile(0.95, sum by (le, track, model_version) "
                        f"(rate(pricecast_prediction_value_bucket{{{SCOPE}}}[{RATE}])))", "p95 {{track}} {{model_version}}", "C")),
        timeseries.Panel().title("Input drift score").span(24).height(7)
        .description("Live inputs vs the training reference per feature (PSI); the alert fires above 0.25 (0.1 watch, 0.25 act).")
        .with_target(_q(f"max by (feature, track, model_version) (pricecast_drift_score{{{SCOPE}}})",
                        "{{feature}} {{track}} {{model_version}}")),
    ]
    return [("Traffic", traffic), ("Latency", latency), ("Model", model)]


def build() -> Dashboard:
    """The dashboard builder (variables, rows and panels)."""
    dashboard = (
        Dashboard("pricecast / serving").uid(UID).tags(["pricecast", "mlops", "generated"])
        .description("pricecast model server: stable vs canary. Generated by delivery/monitoring/dashboards/pricecast.py.")
        .refresh("30s").time("now-1h", "now").timezone("browser").editable()
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(QueryVariable("job").label("Job").datasource(DATASOURCE)
                       .query("label_values(pricecast_model_info, job)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                       .sort(VariableSort.ALPHABETICAL_ASC).include_all(True).all_value(".*"))
        .with_variable(QueryVariable("namespace").label("Namespace").datasource(DATASOURCE)
                       .query('label_values(pricecast_model_info{job=~"$job"}, namespace)')
                       .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).include_all(True).all_value(".*"))
        .with_variable(QueryVariable("track").label("Track").datasource(DATASOURCE)
                       .query('label_values(pricecast_model_info{job=~"$job",namespace=~"$namespace"}, track)')
                       .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True).all_value(".*"))
    )
    panel_id = 0
    for title, panels in _panels():
        panel_id += 1
        dashboard = dashboard.with_row(Row(title).id(panel_id))
        for panel in panels:
            panel_id += 1  # fixed ids keep panel links (?viewPanel=N) stable across regenerations
            dashboard = dashboard.with_panel(panel.id(panel_id).datasource(DATASOURCE))
    return dashboard


def to_json() -> str:
    """The dashboard as stable, pretty JSON (what Grafana imports and the chart ships)."""
    model = build().build()
    return json.dumps(json.loads(json.dumps(model, cls=JSONEncoder)), indent=2, sort_keys=True) + "\n"


def panel_queries(document: dict[str, Any]) -> dict[str, list[str]]:
    """Panel title -> PromQL expressions, read back from a dashboard JSON document."""
    return {p["title"]: [t["expr"] for t in p.get("targets", [])]
            for p in document["panels"] if p.get("type") != "row"}
