"""The report component at the end of a small fan-out run through KFP local mode.

train -> ParallelFor(evaluate over train's windows 0, 1, 2) -> Collected -> report; then report alone
on the same window results must restore its checkpoint and still return the same verdict and metrics.
No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from pathlib import Path
from typing import NamedTuple

import pytest
from kfp import dsl

from components.evaluate.component import evaluate
from components.features.core import build_features
from components.features.tests.support import (
    clean_frame,
    local_component,
    write_parquet,
)
from components.report.component import report
from components.train.component import train
from pricecast import storage
from pricecast.settings import Settings, get_settings

Outputs = NamedTuple("Outputs", [("verdict", str), ("reason", str), ("metrics", dsl.Metrics),  # noqa: UP014
                                 ("summary", dsl.Artifact), ("report_html", dsl.HTML)])


@pytest.mark.slow
def test_fan_out_over_windows_gates_reports_and_restores(kfp_local: Path, tmp_path: Path, isolated_store: Settings) -> None:
    features_uri = write_parquet(build_features(clean_frame(n_tickers=3, n_days=160, seed=12, ar=0.4)),
                                 tmp_path / "features.parquet")
    train_op, evaluate_op, report_op = map(local_component, (train, evaluate, report))

    @dsl.pipeline
    def fan_out() -> Outputs:
        features = dsl.importer(artifact_uri=features_uri, artifact_class=dsl.Dataset).output
        trained = train_op(features=features, n_windows=3)
        with dsl.ParallelFor(items=trained.outputs["Output"]) as window:  # as the pipeline fans out
            scored = evaluate_op(features=features, model=trained.outputs["model"],
                                 model_info=trained.outputs["model_info"], window=window)
        gated = report_op(window_results=dsl.Collected(scored.outputs["window_result"]),
                          model_info=trained.outputs["model_info"], main_metric="mape", max_degradation=0.1)
        o = gated.outputs
        return Outputs(o["verdict"], o["reason"], o["metrics"], o["summary"], o["report_html"])

    first = fan_out().outputs
    summary = json.loads(Path(first["summary"].path).read_text())
    version = summary["version"]
    assert first["verdict"] == summary["verdict"] == "promote"  # AR(0.4) data: beats the naive forecast
    assert first["reason"] == summary["gate"]["reason"] and "naive" in first["reason"]
    assert sorted(w["window_index"] for w in summary["summary"]["windows"]) == [0, 1, 2]
    # What promote records in the registry: the pooled candidate metrics and the gate's reason.
    assert summary["candidate"] == summary["summary"]["candidate"] and summary["gate"]["metric"] == "mape"
    logged = first["metrics"].metadata
    assert logged["windows"] == 3 and logged["gate_passed"] == 1
    assert logged["candidate_mape"] == summary["summary"]["candidate"]["mape"] < logged["naive_mape"]
    assert "active_mape" not in logged
    assert "Verdict: PROMOTE" in Path(first["report_html"].path).read_text()

    reports = storage.join(isolated_store.store_url, "reports")
    for folder in (version, "latest"):
        assert set(storage.listdir(storage.join(reports, folder))) == {
            "report.md", "report.html", "forecast_vs_actual.png", "residuals.png", "summary.json"}
    assert storage.read_bytes(storage.join(reports, "latest", "report.html")) == \
        Path(first["report_html"].path).read_bytes()

    # The same inputs again, through importers: report restores its checkpoint instead of computing,
    # and its return value and metrics must come back from the summary JSON unchanged.
    window_uris = sorted((str(p) for p in kfp_local.rglob("evaluate/window_result")),
                         key=lambda p: json.loads(Path(p).read_text())["window_index"])
    info_uri = str(next(kfp_local.rglob("train/model_info")))
    assert len(window_uris) == 3

    @dsl.pipeline
    def report_again() -> Outputs:
        with dsl.ParallelFor(window_uris) as uri:
            result = dsl.importer(artifact_uri=uri, artifact_class=dsl.Artifact)
        info = dsl.importer(artifact_uri=info_uri, artifact_class=dsl.Artifact)
        gated = report_op(window_results=dsl.Collected(result.output), model_info=info.output,
                          main_metric="mape", max_degradation=0.1)
        o = gated.outputs
        return Outputs(o["verdict"], o["reason"], o["metrics"], o["summary"], o["report_html"])

    second = report_again().outputs
    assert "restored checkpoint" in (get_settings().log_dir / "report.log").read_text()
    assert (second["verdict"], second["reason"]) == (first["verdict"], first["reason"])
    assert second["metrics"].metadata == logged
    assert Path(second["summary"].path).read_text() == Path(first["summary"].path).read_text()
