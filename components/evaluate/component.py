"""KFP wrapper of the evaluate stage: one test window per task (the pipeline fans out over windows).

KFP copies only this function's source into the container, so every import lives in its body.
"""

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def evaluate(
    features: Input[Dataset],
    model: Input[Model],
    model_info: Input[Artifact],
    window: int,
    window_result: Output[Artifact],
    report_tickers: str = "",
    store_url: str = "",
    force_from: str = "",
):
    """Score the candidate, the naive last-value forecast and the active model on one test window.

    Args:
        features: Parquet from the features stage.
        model: The candidate's skops bytes from the train stage.
        model_info: The train stage's JSON (its split gives the window's dates).
        window: Index of the test window, from 0.
        window_result: JSON: MAE, RMSE, MAPE and directional accuracy of each forecaster, the row
            count, and samples for the report's plots.
        report_tickers: Comma-separated tickers the report plots; empty: the first three.
        store_url: Model store with the registry and the checkpoints (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).
    """
    import json
    from pathlib import Path

    import pandas as pd

    from components.evaluate import core
    from pricecast import logs, modelio, time_split
    from pricecast.columns import FEATURE_COLUMNS
    from pricecast.registry import RegistryStore
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    # Each window keeps its own checkpoints (and LATEST pointer): a resumed run must restore
    # window 2's result for window 2, not whichever window finished last.
    window = int(window)  # KFP can hand loop items over as floats
    stage = f"evaluate-w{window}"
    log = logs.configure(stage)
    store = RegistryStore(store_url or None)
    candidate_version = json.loads(Path(model_info.path).read_text())["version"]
    try:
        # The active model, unless it is this very candidate (a rerun): then what its gate compared it with.
        active_mv = store.load().reference_for(candidate_version)
    except Exception:
        log.exception("FAILED %s: cannot read the registry at %s", stage, store.url)
        raise
    info = json.loads(Path(model_info.path).read_text())
    candidate_features = list(info.get("features") or FEATURE_COLUMNS)
    if active_mv is not None and active_mv.features != candidate_features:
        log.warning("Active model %s uses other features (%s); comparing with the naive forecast only.",
                    active_mv.version, ", ".join(active_mv.features))
        active_mv = None
    candidate_frequency = info.get("frequency", "business")
    if active_mv is not None:
        # Business and calendar-day models share their features but not their data: a gate
        # against a model of another frequency would compare forecasts of different horizons.
        active_frequency = (store.read_metadata(active_mv.version) or {}).get("frequency", "business")
        if active_frequency != candidate_frequency:
            log.warning("Active model %s forecasts %s data, the candidate %s; comparing with the naive "
                        "forecast only.", active_mv.version, active_frequency, candidate_frequency)
            active_mv = None
    if active_mv is None:
        log.info("No comparable active model in %s: first run, the naive forecast is the reference.",
                 store.store_url)

    def compute(ctx):
        the_split = time_split.Split.from_dict(info["split"])
        dates = the_split.window(window)
        # Only the window's rows: the target is already a column, so nothing else is needed.
        features_df = pd.read_parquet(features.path, filters=[("date", ">=", dates.start),
                                                              ("date", "<=", dates.end)])
        candidate = modelio.loads(Path(model.path).read_bytes())
        active = modelio.loads(store.fetch_verified(active_mv)) if active_mv else None
        trained_until = active_mv.training_window.get("end") if active_mv else None
        result = core.evaluate_window(features_df, the_split, window, candidate, active,
                                      active_mv.version if active_mv else None, trained_until,
                                      feature_names=candidate_features,
                                      plot_tickers=core.parse_plot_tickers(report_tickers))
        if result.active_excluded_rows:
            log.warning("Active model %s was trained through %s, inside test window %d: its %d rows up to that "
                        "date are not scored, and it is compared with the candidate on the other %d.",
                        active_mv.version, trained_until, window, result.active_excluded_rows,
                        result.n - result.active_excluded_rows)
        Path(window_result.path).write_text(json.dumps(result.to_dict(), indent=2))
        ctx.record(rows_in=len(features_df), rows_out=result.n, window=window,
                   candidate_mape=result.candidate.mape, naive_mape=result.naive.mape,
                   active_mape=result.active.mape if result.active else None,
                   active_excluded_rows=result.active_excluded_rows)

    run_stage(
        stage,
        params={
            "window": window,
            "report_tickers": report_tickers,
            "active_version": active_mv.version if active_mv else None,
            "active_sha256": active_mv.sha256 if active_mv else None,
        },
        inputs={"features": features.path, "model": model.path, "model_info": model_info.path},
        outputs={"window_result": window_result.path},
        compute=compute,
        code=code_fingerprint("components.evaluate.component"),
        mode=mode_for("evaluate", force_from),
        store_url=store_url or None,
    )
    result = json.loads(Path(window_result.path).read_text())
    window_result.metadata.update({
        "window": window, "start": result["start"], "end": result["end"], "rows": result["n"],
        "candidate_mape": result["candidate"]["mape"], "naive_mape": result["naive"]["mape"],
        "active_version": result["active_version"] or "",
    })
