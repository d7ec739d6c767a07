"""KFP wrapper of the evaluate stage: every test window in one task, reading the shards one at a time.

One task, not one per window: the features arrive as ``dsl.Collected`` shards, which KFP cannot
hand to a task inside another ``ParallelFor``.

KFP copies only this function's source into the container, so every import lives in its body.
"""

from typing import List  # noqa: UP035 - KFP reads typing.List from the signature

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def evaluate(
    features: Input[List[Dataset]],  # noqa: UP006 - KFP recognises typing.List
    model: Input[Model],
    model_info: Input[Artifact],
    window_results: Output[Artifact],
    report_tickers: str = "",
    store_url: str = "",
    force_from: str = "",
):
    """Score the candidate, the naive last-value forecast and the active model on every test window.

    Each shard is read on its own, only its rows dated from the first test date on; each
    window's metrics are pooled over the shards from their sums, so K shards give the numbers
    one table of the same rows gives.

    Args:
        features: The features stage's Parquet shards (``dsl.Collected``), in shard order; a
            single table is one shard.
        model: The candidate's skops bytes from the train stage.
        model_info: The train stage's JSON (its split gives the windows' dates).
        window_results: JSON list, one entry per test window in window order: MAE, RMSE, MAPE
            and directional accuracy of each forecaster, the row count, and samples for the
            report's plots. Its metadata summarises each window.
        report_tickers: Comma-separated tickers the report plots; empty: the first three.
        store_url: Model store with the registry and the checkpoints (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).
    """
    import json
    from pathlib import Path

    from pricecast import frames, logs
    from pricecast.columns import FEATURE_COLUMNS
    from pricecast.registry import RegistryStore
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    stage = "evaluate"
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

    paths = [path for shard in features for path in frames.shard_paths(shard.path)]

    # The heavy imports (numpy, pyarrow) are inside compute: a restored task never needs them.
    def compute(ctx):
        from components.evaluate import core
        from pricecast import time_split

        the_split = time_split.Split.from_dict(info["split"])
        candidate = core.load_model(Path(model.path).read_bytes())
        active = core.load_model(store.fetch_verified(active_mv)) if active_mv else None
        trained_until = active_mv.training_window.get("end") if active_mv else None
        results = core.evaluate_shards(paths, the_split, candidate, active,
                                       active_mv.version if active_mv else None, trained_until,
                                       feature_names=candidate_features,
                                       plot_tickers=core.parse_plot_tickers(report_tickers))
        for result in results:
            if result.active_excluded_rows:
                log.warning("Active model %s was trained through %s, inside test window %d: its %d rows up to "
                            "that date are not scored, and it is compared with the candidate on the other %d.",
                            active_mv.version, trained_until, result.window_index, result.active_excluded_rows,
                            result.n - result.active_excluded_rows)
        Path(window_results.path).write_text(json.dumps([r.to_dict() for r in results], indent=2))
        rows = sum(r.n for r in results)
        ctx.record(rows_in=rows, rows_out=rows, shards=len(paths), windows=len(results),
                   candidate_mape=[r.candidate.mape for r in results],
                   naive_mape=[r.naive.mape for r in results],
                   active_mape=[r.active.mape if r.active else None for r in results],
                   active_excluded_rows=sum(r.active_excluded_rows for r in results))

    run_stage(
        stage,
        params={
            "report_tickers": report_tickers,
            "active_version": active_mv.version if active_mv else None,
            "active_sha256": active_mv.sha256 if active_mv else None,
        },
        inputs={**{f"features_{i}": str(path) for i, path in enumerate(paths)},
                "model": model.path, "model_info": model_info.path},
        outputs={"window_results": window_results.path},
        compute=compute,
        code=code_fingerprint("components.evaluate.component"),
        mode=mode_for("evaluate", force_from),
        store_url=store_url or None,
    )
    results = json.loads(Path(window_results.path).read_text())
    window_results.metadata.update({
        "windows": [{"window": r["window_index"], "start": r["start"], "end": r["end"], "rows": r["n"],
                     "candidate_mape": r["candidate"]["mape"], "naive_mape": r["naive"]["mape"]}
                    for r in results],
        "rows": sum(r["n"] for r in results),
        "shards": len(paths),
        "active_version": (results[0]["active_version"] if results else None) or "",
    })
