"""KFP wrapper of the report stage: the evaluate stage's window results in, gate verdict, metrics and report out.

KFP copies only this function's source into the container, so every import lives in its body.
"""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Output


def report(
    window_results: Input[Artifact],
    model_info: Input[Artifact],
    drift_report: Input[Artifact],
    report_md: Output[Markdown],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    summary: Output[Artifact],
    main_metric: str = "mape",
    max_degradation: float = 0.1,
    min_directional_accuracy: float = 0.45,
    max_mape: float = 5.0,
    run_id: str = "",
    store_url: str = "",
    force_from: str = "",
) -> NamedTuple("Outputs", [("verdict", str), ("reason", str)]):
    """Pool the test windows, apply the promotion gate and write the report (Markdown, HTML, plots).

    The gate passes when the candidate's main metric is at most ``max_degradation`` worse than
    the active model's, or than the naive last-value forecast's when no model is active yet.
    The candidate is also held to absolute limits: under ``min_directional_accuracy`` or over
    ``max_mape`` raises a HIGH alert (log, and the webhook when PRICECAST_ALERT_WEBHOOK_URL is
    set), listed in the report and the summary. An alert never fails the run: the gate decides
    promotion, the alert tells a person.

    Args:
        window_results: The evaluate stage's JSON list of results, one per test window.
        model_info: The train stage's JSON describing the candidate.
        drift_report: The drift stage's JSON report, shown in the report's Drift section.
        report_md: The report in Markdown (plots linked by file name; see the store copy).
        report_html: The report as one HTML file with the plots embedded.
        metrics: Pooled metrics of the candidate, the naive forecast and the active model.
        summary: JSON: pooled and per-window metrics, the gate's decision, the model version,
            ``compared_against`` (the active version the gate compared with; null: the naive
            forecast) and the accuracy alerts.
        main_metric: Metric the gate compares: mae, rmse, mape or directional_accuracy.
        max_degradation: Tolerated relative degradation against the reference (0.1 = 10 %).
        min_directional_accuracy: Alert below this share of next-day moves called right (0 = off).
        max_mape: Alert above this MAPE of next-day prices, in percent (0 = off).
        run_id: This run's name: the store copy goes to ``reports/<version>/<run_id>/`` (and
            ``reports/latest/``), so a rerun of a version keeps the earlier run's report. Empty:
            a UTC timestamp.
        store_url: Model store for checkpoints and ``reports/`` (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).

    Returns:
        verdict: ``promote`` or ``reject``.
        reason: The sentence explaining the verdict, with both numbers and the threshold.
    """
    import json
    import shutil
    import tempfile
    from collections import namedtuple
    from pathlib import Path

    from components.report import core
    from components.report.summary import GateResult, Summary
    from pricecast import forecast_metrics, storage
    from pricecast.monitoring.alerts import emit, raised_again
    from pricecast.settings import get_settings
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    drift = json.loads(Path(drift_report.path).read_text(encoding="utf-8"))
    # The PNGs are part of the checkpoint (not a KFP output: they are in the HTML and the store's
    # report folder), so a restored report does not draw them again (matplotlib, ~1 s).
    plots_dir = Path(tempfile.mkdtemp(prefix="pricecast-report-plots-"))

    def compute(ctx):
        from components.report import render

        results = [forecast_metrics.WindowResult.from_dict(result)
                   for result in json.loads(Path(window_results.path).read_text())]
        info = json.loads(Path(model_info.path).read_text())
        pooled = core.aggregate(results)
        decision = core.decide(pooled, max_degradation, main_metric)
        limits = core.accuracy_limits(min_directional_accuracy, max_mape)
        alerts = core.accuracy_alerts(pooled.candidate, limits, info["version"], decision.verdict)
        md, page, plots = render.render_report(pooled, decision, info, alerts, limits, drift)
        for name, data in plots.items():
            (plots_dir / name).write_bytes(data)
        Path(report_md.path).write_text(md)
        Path(report_html.path).write_text(page)
        Path(summary.path).write_text(json.dumps({
            "version": info["version"], "verdict": decision.verdict, "main_metric": main_metric,
            "gate": decision.to_dict(),
            # Pooled over all windows; promote records "candidate" in the registry.
            "candidate": pooled.candidate.to_dict(), "naive": pooled.naive.to_dict(),
            "active": pooled.active.to_dict() if pooled.active else None,
            "active_version": pooled.active_version,
            # The model the verdict holds against: promote moves `active` only while it still is.
            "compared_against": pooled.active_version,
            "summary": pooled.to_dict(), "model_info": info,
            "accuracy_limits": limits.model_dump(include={"min_directional_accuracy", "max_mape"}),
            "alerts": [a.model_dump() for a in alerts],
        }, indent=2))
        ctx.record(rows_in=pooled.rows, rows_out=len(results), verdict=decision.verdict,
                   reason=decision.reason, alerts=[a.name for a in alerts])

    run_stage(
        "report",
        params={"main_metric": main_metric, "max_degradation": max_degradation,
                "min_directional_accuracy": min_directional_accuracy, "max_mape": max_mape},
        inputs={"window_results": window_results.path, "model_info": model_info.path,
                "drift_report": drift_report.path},
        outputs={"report_md": report_md.path, "report_html": report_html.path, "summary": summary.path,
                 "plots": str(plots_dir)},
        compute=compute,
        code=code_fingerprint("components.report.component"),
        mode=mode_for("report", force_from),
        store_url=store_url or None,
    )

    # Everything below reads the summary JSON, so a restored checkpoint behaves like a fresh run.
    doc = json.loads(Path(summary.path).read_text())
    pooled = Summary.from_dict(doc["summary"])
    decision = GateResult.from_dict(doc["gate"])
    alerts = raised_again(doc.get("alerts", []))
    emit(alerts, source="report")
    for name, forecaster in (("candidate", pooled.candidate), ("naive", pooled.naive), ("active", pooled.active)):
        if forecaster is None:
            continue
        for metric in forecast_metrics.METRICS:
            value = forecaster.get(metric)
            if value is not None:
                metrics.log_metric(f"{name}_{metric}", float(value))
    metrics.log_metric("windows", len(pooled.windows))
    metrics.log_metric("rows", pooled.rows)
    metrics.log_metric("gate_passed", 1.0 if decision.passed else 0.0)
    metrics.log_metric("accuracy_alerts", len(alerts))

    plots = {p.name: p.read_bytes() for p in sorted(plots_dir.iterdir())}
    shutil.rmtree(plots_dir, ignore_errors=True)
    files = {"report.md": Path(report_md.path).read_text().encode(),
             "report.html": Path(report_html.path).read_text().encode(),
             **plots, "summary.json": Path(summary.path).read_bytes()}
    reports = storage.join(store_url or get_settings().store_url, "reports")
    run_folder = core.run_folder(doc["version"], run_id)
    for folder in (run_folder, "latest"):
        for name, data in files.items():
            storage.write_bytes(storage.join(reports, folder, name), data)

    report_html.metadata["store_url"] = storage.join(reports, run_folder, "report.html")
    summary.metadata.update({"version": doc["version"], "verdict": decision.verdict})
    outputs = namedtuple("Outputs", ["verdict", "reason"])
    return outputs(decision.verdict, decision.reason)
