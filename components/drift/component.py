"""KFP wrapper of the drift stage (see core.py).

KFP copies only this function's source into the container, so every import lives in its body.
"""

from typing import List  # noqa: UP035 - KFP reads typing.List from the signature

from kfp.dsl import Artifact, Dataset, Input, Markdown, Output


def drift(
    features: Input[List[Dataset]],  # noqa: UP006
    model_info: Input[Artifact],
    drift_report: Output[Artifact],
    drift_markdown: Output[Markdown],
    psi_warn: float = 0.1,
    psi_alert: float = 0.25,
    ks_p_value: float = 0.01,
    current_days: int = 0,
    store_url: str = "",
    force_from: str = "",
) -> float:
    """Compare the latest window's returns-based features with the training window (PSI and KS).

    Writes the report and sends an alert (log, and the webhook when PRICECAST_ALERT_WEBHOOK_URL
    is set) when a feature drifts: MEDIUM at ``psi_alert``, LOW at ``psi_warn`` or a KS-only shift.
    It never fails the run on drift: the gate is the evaluation, drift explains it.

    The fan-in of the shards: each shard's rows are read in turn and sketched, and the merged
    sketches give the report one process would compute from all rows (memory: one shard).

    Args:
        features: Parquet of every shard from the features stage (all dates of the run).
        model_info: Train's JSON record; its ``training_window`` is the reference.
        drift_report: JSON report: score (max PSI), level, per-feature PSI/KS/means, the alerts.
        drift_markdown: The same report as a Markdown table.
        psi_warn: PSI worth a look (LOW alert).
        psi_alert: PSI that calls for action (MEDIUM alert).
        ks_p_value: KS p-value below which a feature's shift is flagged.
        current_days: 0 compares the dates after the training window; N > 0 the last N dates.
        store_url: Model store holding the stage checkpoints (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).

    Returns:
        The drift score: the largest PSI over the features.
    """
    import json
    from pathlib import Path

    from pricecast.columns import DRIFT_FEATURES
    from pricecast.monitoring.alerts import emit, raised_again
    from pricecast.stage import STAGES, code_fingerprint, mode_for, run_stage

    # The heavy imports (numpy, pyarrow) are inside compute: a restored task never needs them.
    def compute(ctx) -> None:
        from components.drift import core
        from pricecast.monitoring.checks import drift_alerts
        from pricecast.monitoring.drift import DriftThresholds

        info = json.loads(Path(model_info.path).read_text(encoding="utf-8"))
        thresholds = DriftThresholds(psi_warn=psi_warn, psi_alert=psi_alert, ks_p_value=ks_p_value)
        report, rows_read = core.drift_for_shards([a.path for a in features], info, thresholds, current_days)
        document = {**report.to_dict(), "alerts": [a.model_dump() for a in drift_alerts(report)]}
        Path(drift_report.path).write_text(json.dumps(document, indent=2), encoding="utf-8")
        Path(drift_markdown.path).write_text(report.to_markdown(), encoding="utf-8")
        worst = report.worst
        ctx.record(rows_in=rows_read, rows_out=len(report.features), score=round(report.score, 6),
                   level=report.level, worst_feature=worst.feature if worst else None, shards=len(features))

    run_stage(
        "drift",
        params={"psi_warn": psi_warn, "psi_alert": psi_alert, "ks_p_value": ks_p_value,
                "current_days": current_days, "columns": DRIFT_FEATURES},
        inputs={"model_info": model_info.path, **{f"features-{i}": a.path for i, a in enumerate(features)}},
        outputs={"drift_report": drift_report.path, "drift_markdown": drift_markdown.path},
        compute=compute,
        code=code_fingerprint("components.drift.component"),
        # Until "drift" is in STAGES, checkpoints keyed on the inputs are always right ("auto").
        mode=mode_for("drift", force_from) if "drift" in STAGES else "auto",
        store_url=store_url or None,
    )
    # Outside run_stage so a restored checkpoint raises the same alerts as a fresh run.
    document = json.loads(Path(drift_report.path).read_text(encoding="utf-8"))
    emit(raised_again(document["alerts"]), source="drift")
    drift_report.metadata.update(score=document["score"], level=document["level"],
                                 worst_feature=document["worst_feature"])
    return float(document["score"])
