"""Ingest at scale: wall time and peak RSS of writing the generator's rows as K shards.

Each case runs in a fresh subprocess (peak RSS is per process), through the ingest core
(``components.ingest.core.ingest_to``) or, with ``--component``, the KFP component function
itself (run_stage: logs and a checkpoint copy into a temporary store).

    .venv/bin/python benchmarks/ingest_shards.py 2000x2520x8 20000x2520x16
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
tickers, days, shards, out, component = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
started = time.perf_counter()
if component:
    from components.ingest.component import ingest
    class Artifact:
        def __init__(self, path): self.path, self.metadata = path, {}
    raw = Artifact(out)
    returned = ingest(raw, tickers=tickers, days=days, start_date="2015-01-01", seed=42, shards=shards,
                      store_url=str(Path(out).parent / "store"))
    rows = raw.metadata["rows"]
else:
    from components.ingest import core
    written = core.ingest_to(core.load_source_spec(None, tickers=tickers, days=days, start_date="2015-01-01", seed=42), out, shards)
    rows = written.rows
elapsed = time.perf_counter() - started
size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file()) if Path(out).is_dir() else Path(out).stat().st_size
print(json.dumps({"rows": rows, "shards": shards, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "bytes": size}))
"""


def run(tickers: int, days: int, shards: int, component: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        out = str(Path(tmp) / "raw")
        proc = subprocess.run([sys.executable, "-c", CHILD, str(tickers), str(days), str(shards), out,
                               "1" if component else "0"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1])
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="TICKERSxDAYSxSHARDS, e.g. 2000x2520x8")
    parser.add_argument("--component", action="store_true", help="run the KFP component function (with checkpoint)")
    args = parser.parse_args()
    for case in args.cases:
        tickers, days, shards = (int(v) for v in case.split("x"))
        print(json.dumps({"case": case, "component": args.component, **run(tickers, days, shards, args.component)}),
              flush=True)


if __name__ == "__main__":
    main()
