"""The report component at the end of a small sharded run through KFP local mode.

ParallelFor(feature shards) -> Collected -> evaluate (windows 0, 1, 2 in one task) -> report; then
report alone on the same window results must restore its checkpoint and still return the same
verdict and metrics. The candidate is trained in-process: these tests pin evaluate and report.
The accuracy alerts are checked on the component function called in-process (as KFP's executor
calls it), against a real webhook receiver on 127.0.0.1.
No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from kfp import dsl

from components.evaluate.component import evaluate
from components.evaluate.core import evaluate_window
from components.features.core import build_features
from components.features.tests.support import (
    clean_frame,
    local_component,
    write_parquet,
)
from components.report.component import report
from components.train.core import time_split, train_model
from pricecast import frames, storage
from pricecast.monitoring import checks
from pricecast.monitoring.thresholds import Thresholds
from pricecast.settings import Settings, get_settings, reload_settings
from tests.monitoring.support import WebhookReceiver, webhook_receiver

Outputs = NamedTuple("Outputs", [("verdict", str), ("reason", str), ("metrics", dsl.Metrics),  # noqa: UP014
                                 ("summary", dsl.Artifact), ("report_html", dsl.HTML)])


DRIFT = {"score": 0.0123, "level": "ok", "worst_feature": "ret_vol_20",
         "thresholds": {"psi_warn": 0.1, "psi_alert": 0.25, "ks_p_value": 0.01},
         "features": [{"feature": "ret_vol_20", "psi": 0.0123, "level": "ok", "ks_statistic": 0.05,
                       "ks_p_value": 0.2, "ks_breach": False}], "alerts": []}


def write_drift_report(path: Path) -> str:
    """A drift stage's JSON report, as the report stage reads it."""
    path.write_text(json.dumps(DRIFT), encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_fan_out_over_windows_gates_reports_and_restores(kfp_local: Path, tmp_path: Path, isolated_store: Settings) -> None:
    features = build_features(clean_frame(n_tickers=3, n_days=160, seed=12, ar=0.4))
    _, trained = train_model(features, time_split(features, n_windows=3))
    (tmp_path / "model.skops").write_bytes(trained.model_bytes)
    (tmp_path / "model_info.json").write_text(json.dumps(trained.to_dict()))
    shard = frames.shard_of(features["ticker"], 2)
    shard_uris = [write_parquet(features[shard == k], tmp_path / f"features-{k}.parquet") for k in range(2)]
    model_uri, info_uri = str(tmp_path / "model.skops"), str(tmp_path / "model_info.json")
    drift_uri = write_drift_report(tmp_path / "drift_report.json")
    evaluate_op, report_op = map(local_component, (evaluate, report))

    @dsl.pipeline
    def fan_out() -> Outputs:
        with dsl.ParallelFor(shard_uris) as uri:  # as the pipeline collects the feature shards
            features = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset)
        model = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model).output
        info = dsl.importer(artifact_uri=info_uri, artifact_class=dsl.Artifact).output
        drift = dsl.importer(artifact_uri=drift_uri, artifact_class=dsl.Artifact).output
        scored = evaluate_op(features=dsl.Collected(features.output), model=model, model_info=info)
        gated = report_op(window_results=scored.outputs["window_results"], model_info=info, drift_report=drift,
                          main_metric="mape", max_degradation=0.1, run_id="run-1")
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
    files = {"report.md", "report.html", "forecast_vs_actual.png", "residuals.png", "summary.json"}
    for folder in (f"{version}/run-1", "latest"):
        assert set(storage.listdir(storage.join(reports, folder))) == files
    assert storage.read_bytes(storage.join(reports, "latest", "report.html")) == \
        Path(first["report_html"].path).read_bytes()
    assert first["report_html"].metadata["store_url"] == storage.join(reports, version, "run-1", "report.html")
    first_report = storage.read_bytes(storage.join(reports, version, "run-1", "report.html"))

    # The same inputs again, through importers: report restores its checkpoint instead of computing,
    # and its return value and metrics must come back from the summary JSON unchanged.
    [results_uri] = [str(p) for p in kfp_local.rglob("evaluate/window_results")]
    assert len(json.loads(Path(results_uri).read_text())) == 3

    @dsl.pipeline
    def report_again() -> Outputs:
        results = dsl.importer(artifact_uri=results_uri, artifact_class=dsl.Artifact)
        info = dsl.importer(artifact_uri=info_uri, artifact_class=dsl.Artifact)
        drift = dsl.importer(artifact_uri=drift_uri, artifact_class=dsl.Artifact)
        gated = report_op(window_results=results.output, model_info=info.output,
                          drift_report=drift.output, main_metric="mape", max_degradation=0.1, run_id="run-2")
        o = gated.outputs
        return Outputs(o["verdict"], o["reason"], o["metrics"], o["summary"], o["report_html"])

    second = report_again().outputs
    assert "restored checkpoint" in (get_settings().log_dir / "report.log").read_text()
    assert (second["verdict"], second["reason"]) == (first["verdict"], first["reason"])
    assert second["metrics"].metadata == logged
    assert Path(second["summary"].path).read_text() == Path(first["summary"].path).read_text()
    # The rerun of the same version has its own folder; the first run's report is still there.
    assert storage.listdir(storage.join(reports, version)) == ["run-1", "run-2"]
    # The restored run stores the same report and plots (the PNGs come from the checkpoint, not drawn again).
    for name in ("report.md", "report.html", "forecast_vs_actual.png", "residuals.png"):
        assert (storage.read_bytes(storage.join(reports, version, "run-2", name))
                == storage.read_bytes(storage.join(reports, version, "run-1", name))), name
    assert storage.read_bytes(storage.join(reports, version, "run-1", "report.html")) == first_report
    assert set(storage.listdir(storage.join(reports, version, "run-2"))) == files


@pytest.fixture
def scored(tmp_path: Path) -> tuple[dsl.Artifact, dsl.Artifact]:
    """The window results of three evaluated windows of a trained model, and its model_info, on disk."""
    features = build_features(clean_frame(n_tickers=3, n_days=160, seed=12, ar=0.4))
    split = time_split(features, n_windows=3)
    model, info = train_model(features, split)
    windows = tmp_path / "window_results"
    windows.write_text(json.dumps([evaluate_window(features, split, i, model).to_dict() for i in range(3)]))
    info_path = tmp_path / "model_info"
    info_path.write_text(json.dumps(info.to_dict()))
    return dsl.Artifact(uri=str(windows)), dsl.Artifact(uri=str(info_path))


@pytest.fixture
def webhook(isolated_store: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A real receiver on 127.0.0.1, set as PRICECAST_ALERT_WEBHOOK_URL for this test."""
    with webhook_receiver() as receiver:
        monkeypatch.setenv("PRICECAST_ALERT_WEBHOOK_URL", receiver.url)
        reload_settings()
        yield receiver


def _report_in_process(scored, out: Path, **limits: float) -> tuple[str, dict, dsl.Metrics]:
    """report() called in this process, as KFP's executor calls it; (verdict, summary, metrics)."""
    windows, info = scored
    out.mkdir(parents=True, exist_ok=True)
    metrics = dsl.Metrics(uri=str(out / "metrics"))
    summary = dsl.Artifact(uri=str(out / "summary"))
    drift = dsl.Artifact(uri=write_drift_report(out / "drift_report"))
    verdict, _ = report(window_results=windows, model_info=info, drift_report=drift,
                        report_md=dsl.Markdown(uri=str(out / "report_md")),
                        report_html=dsl.HTML(uri=str(out / "report_html")), metrics=metrics, summary=summary,
                        **limits)
    return verdict, json.loads(Path(summary.path).read_text()), metrics


def test_an_accuracy_breach_alerts_the_webhook_and_the_report_but_never_fails_the_run(
        scored, webhook: WebhookReceiver, tmp_path: Path, isolated_store: Settings) -> None:
    verdict, summary, metrics = _report_in_process(scored, tmp_path / "first", min_directional_accuracy=0.99)
    again, _, _ = _report_in_process(scored, tmp_path / "second", min_directional_accuracy=0.99)

    # The gate still decides: an accuracy alert is not a rejection and not a failed stage.
    assert verdict == again == summary["verdict"] == "promote"
    [stored] = summary["alerts"]
    assert (stored["severity"], stored["name"]) == ("HIGH", checks.ACCURACY_LOW)
    assert summary["accuracy_limits"] == {"min_directional_accuracy": 0.99, "max_mape": 5.0}
    assert metrics.metadata["accuracy_alerts"] == 1

    # Both calls posted, the second from the restored checkpoint.
    assert len(webhook.bodies) == 2 and all(body["source"] == "report" for body in webhook.bodies)
    [sent] = webhook.bodies[0]["alerts"]
    assert (sent["severity"], sent["name"], sent["threshold"]) == ("HIGH", checks.ACCURACY_LOW, 0.99)
    assert sent["suggested_action"] == stored["suggested_action"] and "pricecast registry rollback" in sent["suggested_action"]
    assert sent["labels"] == {"model_version": summary["version"], "verdict": "promote"}
    assert summary["version"] in sent["message"] and "PricecastDirectionalAccuracyLow" in webhook.bodies[0]["text"]

    log = (get_settings().log_dir / "report.log").read_text()
    assert "restored checkpoint" in log and log.count("ALERT HIGH PricecastDirectionalAccuracyLow") == 2
    for name in ("report.md", "report.html"):
        page = storage.read_text(storage.join(isolated_store.store_url, "reports", "latest", name))
        assert "Alerts" in page and "PricecastDirectionalAccuracyLow" in page, name


def test_a_candidate_within_the_default_limits_sends_nothing(
        scored, webhook: WebhookReceiver, tmp_path: Path, isolated_store: Settings) -> None:
    verdict, summary, metrics = _report_in_process(scored, tmp_path / "out")
    assert verdict == "promote" and summary["alerts"] == [] and webhook.attempts == 0
    assert summary["candidate"]["directional_accuracy"] > Thresholds().min_directional_accuracy
    assert metrics.metadata["accuracy_alerts"] == 0
    report_md = storage.read_text(storage.join(isolated_store.store_url, "reports", "latest", "report.md"))
    assert "the candidate is within them, no alert" in report_md
