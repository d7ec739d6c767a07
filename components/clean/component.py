"""KFP wrapper of clean: a plain function the pipeline turns into a component at compile time.

KFP lightweight components ship the function's source alone, so every import is inside it.
No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
"""

from kfp.dsl import Artifact, Dataset, Input, Output


def clean(
    validated: Input[Dataset],
    split: Input[Artifact],
    cleaned: Output[Dataset],
    outlier_bounds: Output[Artifact],
    shard: int = 0,
    shards: int = 1,
    max_gap_days: int = 5,
    outlier_sigma: float = 8.0,
    frequency: str = "auto",
    store_url: str = "",
    force_from: str = "",
) -> None:
    """Sort, drop exact duplicates, split at long gaps, compute log returns, clip outliers.

    Rules (components/clean/README.md): rows sorted by (ticker, date); exact duplicate rows
    dropped; a gap of more than max_gap_days business days (at weekly or monthly frequency: more
    than one period) starts a new segment and its return is NaN; log returns within a segment;
    returns further than outlier_sigma robust sigmas (1.4826 x MAD) from the ticker's median are
    clipped to that bound and flagged. The bounds are estimated from the training dates of the
    run's split (plan decides it on every shard's dates) only, so no test-window price reaches
    the model. One task cleans one shard: a ticker's rows are all in one shard.

    Args:
        validated: plan's partitioned table (part-XXXXX.parquet per shard), or one Parquet
            table (shard 0 of 1).
        split: JSON from plan: the time-ordered split (training start, test_start, test
            windows) that train fits on and evaluate scores.
        cleaned: Output Parquet table: date, ticker, price, log_return, segment, clipped.
        outlier_bounds: Output JSON: each ticker's clipping bounds on log returns, estimated
            before the split's test_start (train stores them with the model, so the server clips
            raw prices exactly as training did).
        shard: Which shard of validated to clean.
        shards: How many shards there are (names the logs and checkpoints per shard).
        max_gap_days: A longer gap between consecutive dates (business days) starts a segment.
        outlier_sigma: Clip returns beyond this many robust sigmas.
        frequency: The data's frequency (plan's output), or "auto" to detect it here.
        store_url: Store for checkpoints; empty uses PRICECAST_STORE_URL.
        force_from: Stage to recompute from ("" = reuse any matching checkpoint).
    """
    import json
    from pathlib import Path

    from pricecast import frames
    from pricecast.errors import ConfigError
    from pricecast.stage import code_fingerprint, mode_for, run_stage, shard_stage

    stage = shard_stage("clean", shard, shards)
    shard_file = str(frames.shard_path(validated.path, 0) if shard == 0
                     else Path(validated.path) / frames.SHARD_FILE.format(shard))
    if not Path(shard_file).is_file():
        raise ConfigError(f"Clean was asked for shard {shard}, but {validated.path} has no {Path(shard_file).name}.",
                          "Pass clean plan's validated_shards and a shard index from plan's output.")

    # The heavy imports (pandas, pyarrow) are inside compute: a restored task never needs them.
    def compute(ctx) -> None:
        from components.clean import core
        from pricecast import frequency as freq
        from pricecast.time_split import Split

        prices = frames.read_frame(shard_file)
        the_split = Split.from_dict(json.loads(Path(split.path).read_text(encoding="utf-8")))
        # An empty shard has no dates to detect from; its (empty) output is the same at any frequency.
        spacing = (freq.resolve(frequency, prices["ticker"], prices["date"]) if len(prices)
                   else freq.parse(frequency) or freq.Frequency.BUSINESS)
        frame, report, _ = core.clean_for_training(prices, max_gap_days, outlier_sigma, frequency=spacing,
                                                   split=the_split)
        frames.write_frame(frame, cleaned.path)
        Path(outlier_bounds.path).write_text(json.dumps(report.bounds_document()), encoding="utf-8")
        extra = {k: v for k, v in report.as_dict().items() if k not in ("rows_in", "rows_out")}
        ctx.record(rows_in=report.rows_in, rows_out=report.rows_out, **extra)

    result = run_stage(
        stage,
        params={"max_gap_days": max_gap_days, "outlier_sigma": outlier_sigma, "frequency": frequency,
                "shard": shard, "shards": shards},
        inputs={"validated": shard_file, "split": split.path},
        outputs={"cleaned": cleaned.path, "outlier_bounds": outlier_bounds.path},
        compute=compute,
        code=code_fingerprint("components.clean.component"),
        mode=mode_for("clean", force_from),
        store_url=store_url or None,
    )
    cleaned.metadata.update(result.extra)
    cleaned.metadata.update({"rows": result.rows_out, "restored_from_checkpoint": result.restored,
                             "shard": shard, "shards": shards})
    outlier_bounds.metadata.update({"shard": shard, "shards": shards})
