"""Fault 7: two pipeline runs at once on one ``file://`` store lose no registry update.

Two ``run_local`` processes with different seeds share only the store (each has its own logs
and KFP outputs, like two machines). Both register their model under the registry's file lock
(compare-and-swap): afterwards both versions are recorded, the revision counts exactly two
changes, the active model is the last one promoted, each run reports its own version, and every
checkpoint is whole. The same fault on S3 (conditional writes) is in ``test_store_down_mid_run.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.support import SMALL, PipelineProcess, assert_both_runs_recorded

pytestmark = pytest.mark.slow


def test_two_runs_at_once_on_a_file_store_lose_no_update(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    runs = [PipelineProcess.start(tmp_path / f"run-seed{seed}", {**SMALL, "seed": seed, "store_url": store_url})
            for seed in (1, 2)]
    try:
        outcomes = [run.wait() for run in runs]
    finally:
        for run in runs:
            run.kill()

    assert_both_runs_recorded(store_url, runs, outcomes)
