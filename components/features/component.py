"""KFP wrapper of the features stage: artifact paths and parameters onto ``core.build_features``.

KFP copies only this function's source into the container, so every import lives in its body.
"""

from kfp.dsl import Dataset, Input, Output


def features(
    clean: Input[Dataset],
    features: Output[Dataset],
    frequency: str = "auto",
    store_url: str = "",
    force_from: str = "",
):
    """Build the model features (lagged returns, rolling mean and volatility, calendar) from clean prices.

    Args:
        clean: Parquet of clean prices sorted by (ticker, date) with log returns and gap segments.
        features: Parquet of the clean columns plus ``target`` (next-period log return) and the
            feature columns; rows with incomplete windows are dropped, each ticker's last row kept.
        frequency: The data's frequency (validate's output; it picks the calendar features), or
            "auto" to detect it here.
        store_url: Model store holding the stage checkpoints (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).
    """
    import pyarrow.parquet as pq

    from components.features import core
    from pricecast import frames
    from pricecast import frequency as freq
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    def compute(ctx):
        clean_df = frames.read_frame(clean.path)
        spacing = freq.resolve(frequency, clean_df["ticker"], clean_df["date"])
        out = core.build_features(clean_df, spacing)
        frames.write_frame(out, features.path)
        ctx.record(rows_in=len(clean_df), rows_out=len(out),
                   dropped_incomplete_windows=len(clean_df) - len(out),
                   tickers=int(out["ticker"].nunique()), frequency=spacing.value)

    result = run_stage(
        "features",
        params={"feature_columns": core.FEATURE_COLUMNS, "min_history": core.MIN_HISTORY, "frequency": frequency},
        inputs={"clean": clean.path},
        outputs={"features": features.path},
        compute=compute,
        code=code_fingerprint("components.features.component"),
        mode=mode_for("features", force_from),
        store_url=store_url or None,
    )
    # Set after run_stage so a restored checkpoint carries the same metadata as a fresh run.
    features.metadata["rows"] = pq.ParquetFile(features.path).metadata.num_rows
    spacing = result.extra.get("frequency", frequency)  # the resolved one, also from a checkpoint
    features.metadata["frequency"] = spacing
    features.metadata["feature_columns"] = core.feature_columns(spacing)
    features.metadata["min_history"] = core.MIN_HISTORY
