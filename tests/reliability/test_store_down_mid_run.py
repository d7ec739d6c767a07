"""Faults 2, 3 and 7 on a real SeaweedFS: the object store goes down during a run or under a server.

- Store down mid-run: ``run_local`` on an ``s3://`` store; when the train task starts, the
  ``weed`` process is stopped. The train stage fails with the StorageError's own problem and fix
  (exit code 5); nothing half-written is visible once the store is back; a rerun restores
  ingest..features from their checkpoints and completes.
- That rerun runs at the same time as a second run with another seed (fault 7 on S3): S3
  conditional writes (``If-Match``) keep both registry updates.
- A running server keeps serving its loaded model while the store is down.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.local_run import PipelineFailed, run_local
from pricecast import storage
from pricecast.columns import FEATURE_COLUMNS
from tests.reliability.support import (
    SMALL,
    PipelineProcess,
    assert_both_runs_recorded,
    registry,
    restored_by_stage,
    store_problems,
)
from tests.support.seaweed import SeaweedS3
from tests.support.server import publish_model, running_server

pytestmark = [pytest.mark.s3, pytest.mark.slow]
V1 = "/v1/models/pricecast:predict"


def test_store_down_mid_run_fails_clearly_then_a_rerun_resumes_beside_a_second_run(
    s3_store: str, seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRICECAST_STORAGE_RETRIES", "1")  # fail after one 0.5 s backoff, not 3.5 s
    stopped_at: list[str] = []

    def stop_store_when_train_starts(task: str, state: str) -> None:
        if task == "train" and state == "running" and not stopped_at:
            seaweed.stop()
            stopped_at.append(task)

    with pytest.raises(PipelineFailed) as info:
        run_local({**SMALL, "store_url": s3_store}, pipeline_root=tmp_path / "kfp",
                  on_event=stop_store_when_train_starts)

    err = info.value
    assert stopped_at == ["train"]
    assert err.stage == "train" and err.exit_code == 5, err  # StorageError's exit code
    assert "did not answer" in err.problem and seaweed.endpoint_url in err.problem
    assert "PRICECAST_S3_ENDPOINT_URL" in err.fix and "checkpoints" in err.fix

    seaweed.start()
    assert store_problems(s3_store) == []
    assert registry(s3_store).versions == {}, "a failed run registered something"
    train_dir = storage.join(s3_store, "checkpoints", "train")
    assert not any(storage.exists(storage.join(train_dir, key, "_MANIFEST.json"))
                   for key in storage.listdir(train_dir)), "train left a complete checkpoint"

    monkeypatch.setenv("PRICECAST_STORAGE_RETRIES", "3")
    resumed = PipelineProcess.start(tmp_path / "resumed", {**SMALL, "store_url": s3_store})
    other = PipelineProcess.start(tmp_path / "other-seed", {**SMALL, "seed": 5, "store_url": s3_store})
    try:
        outcomes = [resumed.wait(), other.wait()]
    finally:
        resumed.kill()
        other.kill()

    restored = restored_by_stage(resumed.log_dir)
    assert all(restored[s] for s in ("ingest", "validate", "clean", "features")), restored
    assert not restored["train"], restored
    assert not restored_by_stage(other.log_dir)["ingest"]
    assert_both_runs_recorded(s3_store, [resumed, other], outcomes)


def test_a_running_server_keeps_serving_while_the_store_is_down(s3_store: str, seaweed: SeaweedS3) -> None:
    publish_model(s3_store, "v1", seed=3)
    row = [0.001] * len(FEATURE_COLUMNS)
    with running_server(s3_store, env={"PRICECAST_LOAD_RETRY_S": "0.2"}) as srv:
        expected = srv.post(V1, json={"instances": [row]}).json()
        seaweed.stop()
        try:
            answers = [srv.post(V1, json={"instances": [row]}) for _ in range(50)]
            assert [a.status_code for a in answers] == [200] * 50
            assert all(a.json() == expected for a in answers)
            assert srv.get("/readyz").json() == {"status": "ready", "model_version": "v1"}
        finally:
            seaweed.start()
