"""Run a Grafana dashboard's panel queries against Prometheus, as Grafana would."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import requests

from tests.delivery.chart import ROOT

DASHBOARD = ROOT / "delivery" / "monitoring" / "dashboards" / "pricecast.json"
# `X or vector(0)`: Grafana then shows 0 instead of "No data" before the first event (right for a
# stat panel), but the query returns data whether or not X finds its series.
FALLBACK = re.compile(r"\s+or\s+vector\(0\)")


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def without_fallbacks(dashboard: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """A copy of the dashboard with every ``or vector(0)`` removed, and the titles of the panels
    that had one: what their queries return on their own."""
    bare = copy.deepcopy(dashboard)
    titles = set()
    for panel in bare["panels"]:
        for target in panel.get("targets", []):
            expr = FALLBACK.sub("", target["expr"])
            if expr != target["expr"]:
                target["expr"] = expr
                titles.add(panel["title"])
    return bare, titles


def resolve(expr: str, rate_interval: str = "10s", range_: str = "1m") -> str:
    """Grafana's variables with their "All" values; $__rate_interval sized for 1 s scrapes."""
    for name in ("job", "namespace", "track"):
        expr = expr.replace(f"${name}", ".*")
    return expr.replace("$__rate_interval", rate_interval).replace("$__range", range_)


def panel_results(prometheus_url: str, dashboard: dict[str, Any], lookback_s: int = 20) -> dict[str, list[int]]:
    """Panel title -> number of series with at least one real value, per target.

    Range targets go through /api/v1/query_range over the last ``lookback_s`` seconds (what a
    time-series panel draws), instant targets through /api/v1/query.
    """
    now = time.time()
    results: dict[str, list[int]] = {}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        counts = []
        for target in panel["targets"]:
            expr = resolve(target["expr"])
            if target.get("instant"):
                resp = requests.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10).json()
                series = [r["value"][1] for r in resp["data"]["result"]]
                counts.append(sum(v != "NaN" for v in series))
            else:
                resp = requests.get(f"{prometheus_url}/api/v1/query_range", params={
                    "query": expr, "start": now - lookback_s, "end": now, "step": "1s"}, timeout=10).json()
                assert resp["status"] == "success", (panel["title"], expr, resp)
                counts.append(sum(any(v != "NaN" for _, v in r["values"]) for r in resp["data"]["result"]))
        results[panel["title"]] = counts
    return results
