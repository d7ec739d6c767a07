"""The drift component run through KFP local mode (SubprocessRunner, no Docker) on four feature
shards fanned in with ``dsl.Collected``, alerting a real local webhook receiver from the
component's subprocess.

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from pathlib import Path
from typing import NamedTuple

import pytest
from kfp import dsl, local

from components.drift import core
from components.drift.component import drift
from components.drift.tests.support import model_info_for, regime_features, write_shards
from pricecast.settings import Settings, reload_settings
from tests.monitoring.support import webhook_receiver


@pytest.fixture
def kfp_local(tmp_path: Path, isolated_store: Settings) -> Path:
    root = tmp_path / "pipeline_root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


def test_drift_component_reports_alerts_and_reuses_its_checkpoint(
        kfp_local: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    features = regime_features(change_at=420, seed=3)
    shard_uris = write_shards(features, tmp_path / "features", 4)
    info_path = tmp_path / "model_info.json"
    info = model_info_for(features)
    info_path.write_text(json.dumps(info))
    drift_op = dsl.component(drift, base_image="python:3.11-slim", install_kfp_package=False)

    class Outputs(NamedTuple):
        score: float
        report: dsl.Artifact
        markdown: dsl.Markdown

    @dsl.pipeline
    def drift_only() -> Outputs:
        with dsl.ParallelFor(shard_uris) as uri:  # as the pipeline fans the shards out
            shard = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset)
        model_info = dsl.importer(artifact_uri=str(info_path), artifact_class=dsl.Artifact)
        task = drift_op(features=dsl.Collected(shard.output), model_info=model_info.output)
        return Outputs(score=task.outputs["Output"], report=task.outputs["drift_report"],
                       markdown=task.outputs["drift_markdown"])

    with webhook_receiver() as receiver:
        monkeypatch.setenv("PRICECAST_ALERT_WEBHOOK_URL", receiver.url)  # the subprocess inherits it
        reload_settings()
        first = drift_only()
        second = drift_only()

    report = json.loads(Path(first.outputs["report"].path).read_text())
    assert report["level"] == "alert" and report["worst_feature"] in {"ret_vol_5", "ret_vol_20"}
    assert first.outputs["score"] == pytest.approx(report["score"])
    assert report["context"]["model_version"] == info["version"]
    assert [a["name"] for a in report["alerts"]] == ["PricecastFeatureDrift"]
    assert first.outputs["report"].metadata["level"] == "alert"
    assert "# Input drift report" in Path(first.outputs["markdown"].path).read_text()
    # The four shards' report is the one of all rows in one frame.
    whole = core.drift_for_model(features, info).to_dict()
    assert [(f["feature"], f["psi"], f["ks_statistic"], f["n_current"]) for f in report["features"]] == \
        [(f["feature"], f["psi"], f["ks_statistic"], f["n_current"]) for f in whole["features"]]
    assert report["context"] == whole["context"]

    # Both runs alerted the receiver, the second from the restored checkpoint.
    assert [[a["severity"] for a in body["alerts"]] for body in receiver.bodies] == [["MEDIUM"], ["MEDIUM"]]
    assert all(body["source"] == "drift" for body in receiver.bodies)
    assert json.loads(Path(second.outputs["report"].path).read_text())["score"] == report["score"]
    log = (Path(reload_settings().log_dir) / "drift.log").read_text()
    assert log.count("START drift") == 2 and "restored checkpoint" in log
    assert "ALERT MEDIUM PricecastFeatureDrift" in log
