"""KFP wrapper of the features stage: artifact paths and parameters onto ``core.build_features``.

KFP copies only this function's source into the container, so every import lives in its body.
"""

from kfp.dsl import Artifact, Dataset, Input, Output


def features(
    clean: Input[Dataset],
    split: Input[Artifact],
    features: Output[Dataset],
    train_stats: Output[Artifact],
    shard: int = 0,
    shards: int = 1,
    frequency: str = "auto",
    store_url: str = "",
    force_from: str = "",
):
    """Build the model features (lagged returns, rolling mean and volatility, calendar) from clean prices.

    Runs once per shard; besides the features it summarises the shard's training rows for the
    trainer (``train_stats``), so train never needs every row at once.

    Args:
        clean: Parquet of one shard's clean prices sorted by (ticker, date) with log returns
            and gap segments.
        split: The run's time-ordered split (JSON from plan): which rows are training rows.
        features: Parquet of the clean columns plus ``target`` (next-period log return) and the
            feature columns; rows with incomplete windows are dropped, each ticker's last row kept.
        train_stats: JSON: count, means and centered scatter of the training rows' features and
            target, sketches of their returns-based features, their hash and dates
            (``pricecast.training_stats.ShardStats``).
        shard: This shard's index (0 when the run has one shard).
        shards: How many shards the run has.
        frequency: The data's frequency (plan's output; it picks the calendar features), or
            "auto" to detect it here.
        store_url: Model store holding the stage checkpoints (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).
    """
    import json
    from pathlib import Path

    from pricecast import frames
    from pricecast.columns import FEATURE_COLUMNS, feature_columns
    from pricecast.history import MIN_HISTORY
    from pricecast.stage import code_fingerprint, mode_for, run_stage, shard_stage

    # The heavy imports (pandas) are inside compute: a restored task never needs them.
    def compute(ctx):
        from components.features import core
        from pricecast import frequency as freq
        from pricecast.time_split import Split
        from pricecast.training_stats import merge_blocks, shard_stats

        clean_df = frames.read_frame(clean.path)
        spacing = freq.resolve(frequency, clean_df["ticker"], clean_df["date"])
        names = core.feature_columns(spacing)
        the_split = Split.from_dict(json.loads(Path(split.path).read_text(encoding="utf-8")))
        # Block by block (whole tickers, one Parquet row group each): every feature is a function
        # of its own ticker's rows, so the blocks' output is the whole shard's, in less memory.
        parts, tickers = [], 0
        with frames.BlockWriter(features.path) as writer:
            for block in frames.ticker_blocks(clean_df["ticker"]) or [slice(0, 0)]:
                out = core.build_features(clean_df.iloc[block], spacing)
                writer.write(out)
                parts.append(shard_stats(out, the_split, names, spacing.value, shard=int(shard)))
                tickers += int(out["ticker"].nunique())
                del out
        stats = merge_blocks(parts, int(shard))
        Path(train_stats.path).write_text(json.dumps(stats.to_dict()), encoding="utf-8")
        ctx.record(rows_in=len(clean_df), rows_out=writer.rows,
                   dropped_incomplete_windows=len(clean_df) - writer.rows,
                   tickers=tickers, frequency=spacing.value, training_rows=stats.rows, blocks=len(parts))

    result = run_stage(
        shard_stage("features", shard, shards),
        params={"feature_columns": FEATURE_COLUMNS, "min_history": MIN_HISTORY, "frequency": frequency,
                "shard": int(shard)},
        inputs={"clean": clean.path, "split": split.path},
        outputs={"features": features.path, "train_stats": train_stats.path},
        compute=compute,
        code=code_fingerprint("components.features.component"),
        mode=mode_for("features", force_from),
        store_url=store_url or None,
    )
    # Set after run_stage so a restored checkpoint carries the same metadata as a fresh run.
    # rows_out is the writer's row count, kept in the checkpoint's manifest: no pyarrow to read it back.
    features.metadata["rows"] = result.rows_out
    spacing = result.extra.get("frequency", frequency)  # the resolved one, also from a checkpoint
    features.metadata["frequency"] = spacing
    features.metadata["feature_columns"] = feature_columns(spacing)
    features.metadata["min_history"] = MIN_HISTORY
    features.metadata["shard"] = int(shard)
    train_stats.metadata.update(shard=int(shard), training_rows=result.extra.get("training_rows"))
