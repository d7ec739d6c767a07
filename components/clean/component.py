"""KFP wrapper of clean: a plain function the pipeline turns into a component at compile time.

KFP lightweight components ship the function's source alone, so every import is inside it.
No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
"""

from kfp.dsl import Artifact, Dataset, Input, Output


def clean(
    validated: Input[Dataset],
    cleaned: Output[Dataset],
    outlier_bounds: Output[Artifact],
    split: Output[Artifact],
    max_gap_days: int = 5,
    outlier_sigma: float = 8.0,
    test_fraction: float = 0.2,
    n_windows: int = 3,
    frequency: str = "auto",
    store_url: str = "",
    force_from: str = "",
) -> None:
    """Sort, drop exact duplicates, split at long gaps, compute log returns, clip outliers.

    Rules (components/clean/README.md): rows sorted by (ticker, date); exact duplicate rows
    dropped; a gap of more than max_gap_days business days (at weekly or monthly frequency: more
    than one period) starts a new segment and its return is NaN; log returns within a segment;
    returns further than outlier_sigma robust sigmas (1.4826 x MAD) from the ticker's median are
    clipped to that bound and flagged. The time-ordered train/test split is decided here, on the
    data's dates, and the bounds are estimated from the training dates only, so no test-window
    price reaches the model.

    Args:
        validated: Parquet table from validate.
        cleaned: Output Parquet table: date, ticker, price, log_return, segment, clipped.
        outlier_bounds: Output JSON: each ticker's clipping bounds on log returns, estimated
            before the split's test_start (train stores them with the model, so the server clips
            raw prices exactly as training did).
        split: Output JSON: the time-ordered split (training start, test_start, test windows)
            that train fits on and evaluate scores.
        max_gap_days: A longer gap between consecutive dates (business days) starts a segment.
        outlier_sigma: Clip returns beyond this many robust sigmas.
        test_fraction: Share of the latest dates held out for testing.
        n_windows: Number of consecutive test windows the held-out dates are cut into.
        frequency: The data's frequency (validate's output), or "auto" to detect it here.
        store_url: Store for checkpoints; empty uses PRICECAST_STORE_URL.
        force_from: Stage to recompute from ("" = reuse any matching checkpoint).
    """
    import json
    from pathlib import Path

    from components.clean import core
    from pricecast import frames
    from pricecast import frequency as freq
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    def compute(ctx) -> None:
        prices = frames.read_frame(validated.path)
        spacing = freq.resolve(frequency, prices["ticker"], prices["date"])
        frame, report, the_split = core.clean_for_training(prices, max_gap_days, outlier_sigma, test_fraction,
                                                           n_windows, frequency=spacing)
        frames.write_frame(frame, cleaned.path)
        Path(outlier_bounds.path).write_text(json.dumps(report.bounds_document()), encoding="utf-8")
        Path(split.path).write_text(json.dumps(the_split.to_dict(), indent=2), encoding="utf-8")
        extra = {k: v for k, v in report.as_dict().items() if k not in ("rows_in", "rows_out")}
        ctx.record(rows_in=report.rows_in, rows_out=report.rows_out, **extra)

    result = run_stage(
        "clean",
        params={"max_gap_days": max_gap_days, "outlier_sigma": outlier_sigma, "test_fraction": test_fraction,
                "n_windows": n_windows, "frequency": frequency},
        inputs={"validated": validated.path},
        outputs={"cleaned": cleaned.path, "outlier_bounds": outlier_bounds.path, "split": split.path},
        compute=compute,
        code=code_fingerprint("components.clean.component"),
        mode=mode_for("clean", force_from),
        store_url=store_url or None,
    )
    cleaned.metadata.update(result.extra)
    cleaned.metadata.update({"rows": result.rows_out, "restored_from_checkpoint": result.restored})
