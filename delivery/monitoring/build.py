"""Regenerate monitoring artifacts and the copies the Helm chart ships.

    python -m delivery.monitoring.build          # write them
    python -m delivery.monitoring.build --check  # exit 1 when any is stale (CI)

Helm can only read files inside the chart, so the chart holds copies of the dashboard JSON and
the alert rules; this keeps them identical to the sources here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from delivery.monitoring.dashboards import pricecast as dashboard

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "delivery" / "monitoring" / "alerts" / "pricecast.rules.yaml"
DASHBOARD = ROOT / "delivery" / "monitoring" / "dashboards" / "pricecast.json"
CHART_FILES = ROOT / "helm" / "pricecast" / "files"


def artifacts() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    dashboard_json = dashboard.to_json()
    rules = RULES.read_text(encoding="utf-8")
    return {
        DASHBOARD: dashboard_json,
        CHART_FILES / "dashboards" / "pricecast.json": dashboard_json,
        CHART_FILES / "pricecast.rules.yaml": rules,
    }


def stale() -> list[Path]:
    """Generated files whose content differs from what :func:`artifacts` would write."""
    return [p for p, text in artifacts().items() if not p.exists() or p.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files; exit 1 if any")
    args = parser.parse_args(argv)
    outdated = stale()
    if args.check:
        for path in outdated:
            print(f"stale: {path.relative_to(ROOT)} (run python -m delivery.monitoring.build)")
        return 1 if outdated else 0
    for path, text in artifacts().items():
        if path in outdated:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
