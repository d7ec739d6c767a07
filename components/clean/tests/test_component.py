"""ingest -> validate -> plan -> clean through KFP's own local runner, and an idempotent rerun.

No ``from __future__ import annotations``: KFP reads the pipeline's real annotation objects.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kfp import dsl, local

from components.clean.component import clean
from components.ingest.component import ingest
from components.plan.component import plan
from components.validate.component import validate
from pricecast.storage import sha256_file


def _op(func):
    return dsl.component(func, base_image="python:3.11-slim", install_kfp_package=False)


@dsl.pipeline(name="data-stages")
def data_stages(tickers: int = 3, days: int = 120, max_gap_days: int = 5):
    raw = _op(ingest)(tickers=tickers, days=days, seed=11)
    with dsl.ParallelFor(items=[0]) as shard:  # one shard: the pipeline's shape for small data
        checked = _op(validate)(raw=raw.outputs["raw"], shard=shard, min_rows=100)
    planned = _op(plan)(profiles=dsl.Collected(checked.outputs["profile"]),
                        validated=dsl.Collected(checked.outputs["validated"]))
    with dsl.ParallelFor(items=planned.outputs["Output"]) as item:
        _op(clean)(validated=planned.outputs["validated_shards"], split=planned.outputs["split"], shard=item.shard,
                   max_gap_days=max_gap_days, frequency=item.frequency)


@pytest.fixture
def kfp_root(isolated_store, tmp_path) -> Path:
    root = tmp_path / "kfp"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


def test_the_data_stages_chain_and_a_rerun_recomputes_nothing(kfp_root, isolated_store):
    data_stages()
    data_stages()

    first, second = sorted(kfp_root.glob("data-stages-*/for-loop-*/clean/cleaned"))
    cleaned = pd.read_parquet(first)
    assert len(cleaned) == 360
    assert list(cleaned.columns) == ["date", "ticker", "price", "log_return", "segment", "clipped"]
    assert cleaned.groupby("ticker")["log_return"].apply(lambda r: np.isnan(r.iloc[0])).all()
    assert sha256_file(first) == sha256_file(second)

    logs = Path(isolated_store.log_dir)
    for stage in ("ingest", "validate", "plan", "clean"):
        log = (logs / f"{stage}.log").read_text()
        assert log.count("restored checkpoint") == 1, stage  # the second run restored each stage
    assert "clean: 360 rows in, 360 out (3 tickers)" in (logs / "clean.log").read_text()


def test_a_changed_parameter_recomputes_only_clean(kfp_root, isolated_store):
    data_stages()
    data_stages(max_gap_days=2)

    logs = Path(isolated_store.log_dir)
    assert (logs / "validate.log").read_text().count("restored checkpoint") == 1
    assert (logs / "plan.log").read_text().count("restored checkpoint") == 1
    assert (logs / "clean.log").read_text().count("restored checkpoint") == 0
