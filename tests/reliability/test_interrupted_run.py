"""Fault 8: ``pricecast run`` interrupted mid-stage (SIGINT, then SIGKILL) resumes from checkpoints.

Three ``pricecast run`` processes on one store and one log directory, as a user at a terminal:
the first gets Ctrl-C (SIGINT to its process group) as soon as the features stage logs START;
the second is SIGKILLed (the OOM killer, a deleted pod) as soon as train logs START; the third
completes. Every stage that finished before an interruption is restored from its checkpoint
afterwards (``restored: true`` in ``stage-metrics.jsonl``), nothing is recomputed twice, and no
half-written checkpoint or registry is visible.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pricecast.stage import STAGES, latest_checkpoint
from tests.reliability.support import SMALL, registry, stage_metrics, store_problems, wait_for_text

pytestmark = pytest.mark.slow


def _start(workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cli", "run", "--tickers", str(SMALL["tickers"]),
           "--days", str(SMALL["days"]), "--n-windows", str(SMALL["n_windows"])]
    return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own group: signals reach its task processes too


def _interrupt(proc: subprocess.Popen, log: Path, text: str, sig: signal.Signals) -> tuple[int, str]:
    """Send ``sig`` to the run's process group once ``log`` says ``text``; exit code and output."""
    output = b""
    try:
        wait_for_text(log, text, proc, timeout=120)
        os.killpg(proc.pid, sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert _group_gone(proc.pid, within_s=10), "a task process of the interrupted run kept running"
    return proc.returncode, output.decode(errors="replace")


def _group_gone(pgid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    return False


def test_sigint_then_sigkill_mid_stage_and_the_next_run_resumes_from_checkpoints(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    logs = tmp_path / "logs"
    env = {**os.environ, "PRICECAST_STORE_URL": store_url, "PRICECAST_LOG_DIR": str(logs), "COLUMNS": "120"}

    code, output = _interrupt(_start(tmp_path, env), logs / "features.log", "START features", signal.SIGINT)
    assert code == 130, "Ctrl-C exits 128 + SIGINT"
    assert "run the same command again to resume" in output and "Traceback" not in output, output
    after_sigint = stage_metrics(logs)
    done_before_sigint = {m["stage"] for m in after_sigint}
    assert {"ingest", "validate", "plan", "clean"} <= done_before_sigint <= {
        "ingest", "validate", "plan", "clean", "features"}

    code, _ = _interrupt(_start(tmp_path, env), logs / "train.log", "START train", signal.SIGKILL)
    assert code == -signal.SIGKILL
    second = stage_metrics(logs)[len(after_sigint):]
    assert all(m["restored"] for m in second if m["stage"] in done_before_sigint), second
    done_before_sigkill = done_before_sigint | {m["stage"] for m in second}
    # What the store holds now: a stage killed after its manifest (but before its metrics line)
    # is complete too, and must be restored as well.
    checkpointed = {stage for stage in STAGES if latest_checkpoint(stage, store_url)}
    assert done_before_sigkill <= checkpointed

    final = _start(tmp_path, env)
    output, _ = final.communicate(timeout=300)
    assert final.returncode == 0, output.decode(errors="replace")[-3000:]
    assert b"verdict:" in output and b"promoted" in output
    third = {m["stage"]: m["restored"] for m in stage_metrics(logs)[len(after_sigint) + len(second):]}
    assert {s for s, restored in third.items() if restored} == checkpointed, third
    assert len(third) == 10, third  # ingest … promote, one shard: one record per stage

    reg = registry(store_url)
    assert reg.revision == 1 and reg.active in reg.versions
    assert store_problems(store_url) == []
