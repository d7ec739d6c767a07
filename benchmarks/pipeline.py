"""Benchmark: the whole pipeline on generator data at ~50 k, 500 k and 5 M rows.

For each size, in one run:
- the pipeline through ``kfp.local`` (SubprocessRunner) on a fresh store: wall time, and per
  stage the elapsed time and peak RSS each stage process reports (``stage-metrics.jsonl``);
- a floor in a separate process on the same data: read it, compute the features, fit the model,
  write the features — nothing else. The floor's features start from plain log returns of the
  (already sorted, gap-free, outlier-free) generator data: no sort, dedupe, gap or outlier
  handling, no validation, no checkpoints, no drift, no evaluation, no report.

Targets at 5 M rows (issue 2): total <= 3 x floor, peak RSS <= 3 GB, 10x rows <= 11x time.
Prints a table and writes benchmarks/results/pipeline.{json,md}.

    python benchmarks/pipeline.py                 # all three sizes (5 M takes a few minutes)
    python benchmarks/pipeline.py --sizes 20x2520 # one size: TICKERSxDAYS
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = ("20x2520", "200x2520", "2000x2520")

FLOOR = r"""
import json, resource, sys, time
import numpy as np
import pandas as pd
from pricecast.columns import FEATURE_COLUMNS
from components.features.core import build_features
from datetime import date
from components.ingest.core import SourceSpec, generator_start
from components.ingest.generator import generate_prices
from components.train.core import train_model
from pricecast.time_split import time_split
from pricecast.frames import read_frame, write_frame

tickers, days, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
spec = SourceSpec(source="generator", tickers=tickers, days=days)
# The same data the pipeline generates: the start that makes it end on the last business day.
raw = generate_prices(spec.tickers, spec.days, generator_start(spec, date.today()), spec.seed, spec.drift, spec.volatility, spec.ar_coef)
write_frame(raw, f"{workdir}/raw.parquet")
t0 = time.perf_counter()
df = read_frame(f"{workdir}/raw.parquet")
# The log returns the features are computed from, and nothing of clean's rules.
ticker = df["ticker"].to_numpy()
new_ticker = np.r_[True, ticker[1:] != ticker[:-1]]
returns = np.r_[np.nan, np.diff(np.log(df["price"].to_numpy(np.float64)))]
returns[new_ticker] = np.nan
clean = pd.DataFrame({"date": pd.to_datetime(df["date"]), "ticker": df["ticker"], "price": df["price"].astype(float),
                      "log_return": returns, "segment": 0, "clipped": False})
feats = build_features(clean)
model, _ = train_model(feats, time_split(feats))
write_frame(feats, f"{workdir}/features.parquet")
elapsed = time.perf_counter() - t0
print(json.dumps({"floor_s": elapsed, "floor_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": len(raw)}))
"""


def run_floor(tickers: int, days: int, workdir: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", FLOOR, str(tickers), str(days), str(workdir)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_pipeline(tickers: int, days: int, workdir: Path) -> dict:
    env = {**os.environ, "PRICECAST_STORE_URL": f"file://{workdir}/store", "PRICECAST_LOG_DIR": str(workdir / "logs")}
    code = (
        "import json,sys; from pipelines.local_run import run_local;"
        f"o = run_local({{'tickers': {tickers}, 'days': {days}}}, pipeline_root='{workdir}/kfp');"
        "print(json.dumps({'decision': o.decision, 'elapsed_s': o.elapsed_s}))"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"pipeline failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    stages = [json.loads(line) for line in (workdir / "logs" / "stage-metrics.jsonl").read_text().splitlines()]
    return {"wall_s": wall, "pipeline_s": result["elapsed_s"], "decision": result["decision"], "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="TICKERSxDAYS sizes")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        tickers, days = (int(x) for x in size.split("x"))
        with tempfile.TemporaryDirectory(prefix="pricecast-bench-") as tmp:
            work = Path(tmp)
            floor = run_floor(tickers, days, work)
            pipe = run_pipeline(tickers, days, work)
        stage_time = {}
        for s in pipe["stages"]:
            stage_time[s["stage"]] = stage_time.get(s["stage"], 0.0) + s["elapsed_s"]
        peak = max([s["peak_rss_mb"] for s in pipe["stages"]] + [floor["floor_peak_rss_mb"]])
        row = {
            "size": size, "rows": floor["rows"], "pipeline_s": round(pipe["pipeline_s"], 2),
            "floor_s": round(floor["floor_s"], 2), "ratio": round(pipe["pipeline_s"] / floor["floor_s"], 2),
            "peak_rss_mb": round(max(s["peak_rss_mb"] for s in pipe["stages"]), 1),
            "floor_peak_rss_mb": round(floor["floor_peak_rss_mb"], 1), "overall_peak_rss_mb": round(peak, 1),
            "stage_s": {k: round(v, 2) for k, v in stage_time.items()},
            "stage_peak_rss_mb": {s["stage"]: s["peak_rss_mb"] for s in pipe["stages"]},
            "decision": pipe["decision"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    for prev, cur in zip(rows, rows[1:]):
        cur["time_x_vs_previous"] = round(cur["pipeline_s"] / prev["pipeline_s"], 2)
        cur["rows_x_vs_previous"] = round(cur["rows"] / prev["rows"], 2)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "runs": rows}, indent=2))
    stages = sorted({k for r in rows for k in r["stage_s"]}, key=lambda s: list(rows[0]["stage_s"]).index(s) if s in rows[0]["stage_s"] else 99)
    lines = [
        "| rows | pipeline s | floor s | pipeline/floor | peak RSS MB (stages) | 10x rows → time x | "
        + " | ".join(f"{s} s" for s in stages) + " |",
        "|---" * (6 + len(stages)) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rows']:,} | {r['pipeline_s']} | {r['floor_s']} | {r['ratio']} | {r['peak_rss_mb']} | "
            f"{r.get('time_x_vs_previous', '-')} | " + " | ".join(str(r['stage_s'].get(s, '-')) for s in stages) + " |"
        )
    table = "\n".join(lines)
    (RESULTS / "pipeline.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
