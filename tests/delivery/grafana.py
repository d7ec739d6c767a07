"""Run a Grafana dashboard's panel queries against Prometheus, as Grafana would."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from tests.delivery.chart import ROOT

DASHBOARD = ROOT / "monitoring" / "dashboards" / "pricecast.json"


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


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
