"""Ingest at scale: wall time and peak RSS of writing K ticker partitions.

Each case runs in a fresh subprocess (peak RSS is per process; the imports alone are ~160 MB),
through the ingest core (``components.ingest.core.ingest_to``) or, with ``--component``, the
KFP component function itself (run_stage: logs and a checkpoint copy into a temporary store).

    .venv/bin/python benchmarks/ingest_shards.py 2000x2520x8 20000x2520x16     # generator
    .venv/bin/python benchmarks/ingest_shards.py --csv 2000x2520x8 2000x2520x1 # a CSV file of
        # the generator's rows (written first, not timed), streamed when shards > 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, resource, sys, time
from pathlib import Path
tickers, days, shards, out, component, source = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                                                 sys.argv[5] == "1", sys.argv[6])
options = {"tickers": tickers, "days": days, "start_date": "2015-01-01", "seed": 42}
if source != "generator":
    options = {"source": source}
started = time.perf_counter()
if component:
    from components.ingest.component import ingest
    class Artifact:
        def __init__(self, path): self.path, self.metadata = path, {}
    raw = Artifact(out)
    ingest(raw, shards=shards, store_url=str(Path(out).parent / "store"), **options)
    rows = raw.metadata["rows"]
else:
    from components.ingest import core
    rows = core.ingest_to(core.load_source_spec(None, **options), out, shards).rows
elapsed = time.perf_counter() - started
files = [p for p in Path(out).rglob("*") if p.is_file()] if Path(out).is_dir() else [Path(out)]
print(json.dumps({"rows": rows, "shards": shards, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "bytes": sum(p.stat().st_size for p in files)}))
"""


def write_csv(tickers: int, days: int, path: Path) -> None:
    """The generator's rows as a CSV file, a block of tickers at a time."""
    from components.ingest import generator

    with open(path, "w", encoding="utf-8") as fh:
        fh.write("date,ticker,price\n")
        for _, block in generator.price_blocks(tickers, days, "2015-01-01", 42, 0.05, 0.25, 0.15):
            block.to_pandas().to_csv(fh, header=False, index=False, date_format="%Y-%m-%d")


def run(tickers: int, days: int, shards: int, component: bool, source: str, tmp: Path) -> dict:
    out = tmp / f"raw-{shards}"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tickers), str(days), str(shards), str(out),
                           "1" if component else "0", source], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="TICKERSxDAYSxSHARDS, e.g. 2000x2520x8")
    parser.add_argument("--component", action="store_true", help="run the KFP component function (with checkpoint)")
    parser.add_argument("--csv", action="store_true", help="ingest a CSV file of the generator's rows")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as name:
        tmp = Path(name)
        for case in args.cases:
            tickers, days, shards = (int(v) for v in case.split("x"))
            source = "generator"
            if args.csv:
                source = str(tmp / f"prices-{tickers}x{days}.csv")
                if not Path(source).exists():
                    write_csv(tickers, days, Path(source))
            result = run(tickers, days, shards, args.component, source, tmp)
            print(json.dumps({"case": case, "source": "csv" if args.csv else "generator",
                              "component": args.component, **result}), flush=True)
            for leftover in tmp.glob("raw-*"):
                subprocess.run(["rm", "-rf", str(leftover)], check=True)


if __name__ == "__main__":
    main()
