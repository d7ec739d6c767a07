"""pricecast.process_exit: a KFP task skips the interpreter's last garbage collection, and loses nothing.

In fresh interpreters: the effect is on how a process exits. The witness is an object that only
a reference cycle keeps alive and whose ``__del__`` writes a file: the last collection runs it,
a frozen heap does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CYCLE = """
class Witness:
    def __del__(self):
        open({marker!r}, "w").write("collected")
witness = Witness()
witness.me = witness
del witness
"""

STAGE = """
from pathlib import Path
from pricecast.stage import run_stage
out = Path({out!r})
run_stage("clean", params={{}}, inputs={{}}, outputs={{"o": str(out)}},
          compute=lambda ctx: (out.write_text("rows"), ctx.record(rows_in=3, rows_out=3)))
"""


def _python(code: str, tmp_path: Path, **env: str) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
    environment.update(PRICECAST_STORE_URL=f"file://{tmp_path / 'store'}", PRICECAST_LOG_DIR=str(tmp_path / "logs"),
                       **env)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, check=True, timeout=60)


def test_skip_final_collection_keeps_the_last_collection_from_running(tmp_path) -> None:
    normal, skipped = tmp_path / "normal", tmp_path / "skipped"
    _python(CYCLE.format(marker=str(normal)), tmp_path)
    _python("from pricecast.process_exit import skip_final_collection\nskip_final_collection()\n"
            + CYCLE.format(marker=str(skipped)), tmp_path)
    assert normal.read_text() == "collected" and not skipped.exists()


def test_a_stage_in_a_kfp_task_skips_it_and_its_outputs_logs_and_metrics_are_whole(tmp_path) -> None:
    for name, env in (("task", {"_KFP_RUNTIME": "true"}), ("test", {})):
        out, marker = tmp_path / f"{name}.txt", tmp_path / f"{name}.collected"
        _python(STAGE.format(out=str(out)) + CYCLE.format(marker=str(marker)), tmp_path / name, **env)
        assert marker.exists() == (name == "test")  # only a KFP task process skips the collection
        assert out.read_text() == "rows"
        log = (tmp_path / name / "logs" / "clean.log").read_text()
        assert "START clean" in log and log.rstrip().splitlines()[-1].split("INFO", 1)[1].strip().startswith(
            "[clean] pricecast.clean: END clean"), log
        (metrics,) = (json.loads(line) for line in (tmp_path / name / "logs" / "stage-metrics.jsonl").open())
        assert metrics["stage"] == "clean" and metrics["rows_out"] == 3
