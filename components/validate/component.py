"""KFP wrapper of validate: a plain function the pipeline turns into a component at compile time.

KFP lightweight components ship the function's source alone, so every import is inside it.
No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
"""

from kfp.dsl import Artifact, Dataset, Input, Markdown, Output


def validate(
    raw: Input[Dataset],
    validated: Output[Dataset],
    schema_diff: Output[Artifact],
    schema_report: Output[Markdown],
    profile: Output[Artifact],
    shard: int = 0,
    shards: int = 1,
    min_rows: int = 100,
    date_format: str = "",
    frequency: str = "auto",
    test_fraction: float = 0.2,
    n_windows: int = 3,
    store_url: str = "",
    force_from: str = "",
) -> str:
    """Check raw prices against the declared schema and what later stages need; fail fast with a schema diff.

    The schema (pandera): date (datetime), ticker (non-empty string), price (float, > 0, finite,
    1e-300 to 1e300), no nulls, one price per (ticker, date) (exact duplicate rows pass; clean
    drops them), at least min_rows rows. Then, for the later stages: each ticker a series over
    time (not a one-date cross-section), one supported frequency (detected or named), and a
    ticker long enough for the features' windows and the test windows at that frequency. The
    schema diff (expected vs found columns and dtypes, up to 10 failing rows per check) is written
    as JSON and Markdown on success and on failure, and on failure also to <store>/validation/ so
    it survives the failed task.

    Sharded data (shards > 1) is validated one shard per task: what a shard can answer alone
    (columns, values, duplicates, a frequency that contradicts ``frequency`` or differs between
    its tickers) is checked here; the row count, a series over time, one frequency and the
    history are checked by plan on every shard's profile. Ingest's LATEST checkpoint moves only
    once plan has accepted every shard.

    Args:
        raw: Parquet table from ingest.
        validated: Output Parquet table: date datetime64[ns], ticker str, price float64
            (metadata: shard, rows, frequency, ingest_checkpoint_key).
        schema_diff: Output JSON schema diff.
        schema_report: Output Markdown rendering of the schema diff.
        profile: Output JSON for plan: {"shard", "shards", "rows", "tickers", "dates" (ISO,
            sorted, distinct), "frequency" (the shard's, null when no ticker has a supported
            spacing), "longest", "longest_before", "series" (each ticker's spacing)}.
        shard: Which shard of raw to validate (raw's part-XXXXX.parquet; 0 for a single file).
        shards: How many shards raw has; 1 runs every check here.
        min_rows: Fewest rows accepted.
        date_format: strptime format of string dates; empty uses the format ingest recorded on
            the raw artifact, else ISO 8601, else one inferred format.
        frequency: auto (detect from the dates), business, daily, weekly or monthly.
        test_fraction: The time split's held-out share of dates (as train gets it), to count
            whether the data is long enough.
        n_windows: The time split's number of test windows (as train gets it).
        store_url: Store for checkpoints and failure reports; empty uses PRICECAST_STORE_URL.
        force_from: Stage to recompute from ("" = reuse any matching checkpoint).

    Returns:
        The data's frequency (business, daily, weekly or monthly); with several shards, this
        shard's ("" when none of its tickers has a supported spacing): plan returns the run's.
    """
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    from pricecast import frames, storage
    from pricecast.errors import ConfigError, PricecastError, SchemaValidationError
    from pricecast.settings import get_settings
    from pricecast.stage import code_fingerprint, mode_for, run_stage, shard_stage

    effective_format = date_format or str(raw.metadata.get("date_format") or "")
    written = int(raw.metadata.get("shards") or 0)  # what ingest wrote (absent on an imported file)
    shard_file = frames.shard_path(raw.path, 0) if shard == 0 else Path(raw.path) / frames.SHARD_FILE.format(shard)
    problem = (f"has {written} shard(s)" if written and written != shards
               else f"has shards 0 to {shards - 1} only" if not 0 <= shard < shards
               else f"has no {shard_file.name}" if not shard_file.is_file() else "")
    if problem:
        raise ConfigError(f"Validate was asked for shard {shard} of {shards}, but the raw table {raw.path} {problem}.",
                          "Pass validate the shards parameter ingest was given, and one shard index from ingest's "
                          "output.")

    def write_report(report: dict) -> str:
        from components.validate.diff import render_markdown

        markdown = render_markdown(report)
        Path(schema_diff.path).write_text(json.dumps(report, indent=2), encoding="utf-8")
        Path(schema_report.path).write_text(markdown, encoding="utf-8")
        return markdown

    def keep_failure(exc: SchemaValidationError, markdown: str, log) -> SchemaValidationError:
        """Copy the diff to the store: a failed KFP task's outputs may never be uploaded."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        base = storage.join(store_url or get_settings().store_url, "validation", f"{stamp}-schema_diff")
        try:
            storage.write_text(base + ".json", json.dumps(exc.diff, indent=2))
            storage.write_text(base + ".md", markdown)
        except PricecastError as store_exc:
            log.error("Could not keep the schema diff in the store: %s", store_exc)
            return exc
        return SchemaValidationError(exc.problem, f"{exc.fix} Full report: {base}.md", diff=exc.diff)

    stage = shard_stage("validate", shard, shards)

    # The heavy imports (pandas, pandera) are inside compute: a restored task never needs them.
    def compute(ctx) -> None:
        from components.validate import core

        raw_df = frames.read_frame(shard_file)
        try:
            frame, report, summary = core.validate_shard(raw_df, effective_format, min_rows, frequency,
                                                         test_fraction, n_windows, shard, shards)
        except SchemaValidationError as exc:
            markdown = write_report(exc.diff)
            ctx.log.error("Schema diff (validation failed):\n%s", markdown)
            raise keep_failure(exc, markdown, ctx.log) from exc
        markdown = write_report(report)
        ctx.log.info("Schema diff (valid):\n%s", markdown)
        frames.write_frame(frame, validated.path)
        Path(profile.path).write_text(json.dumps(summary.to_dict()), encoding="utf-8")
        ctx.record(rows_in=len(raw_df), rows_out=len(frame), warnings=report["warnings"],
                   frequency=report["frequency"])

    result = run_stage(
        stage,
        params={"min_rows": min_rows, "date_format": effective_format, "frequency": frequency,
                "test_fraction": test_fraction, "n_windows": n_windows, "shard": shard, "shards": shards},
        inputs={"raw": str(shard_file)},
        outputs={"validated": validated.path, "schema_diff": schema_diff.path, "schema_report": schema_report.path,
                 "profile": profile.path},
        compute=compute,
        code=code_fingerprint("components.validate.component"),
        mode=mode_for("validate", force_from),
        store_url=store_url or None,
        keep_on_failure=("schema_diff", "schema_report"),
    )
    # Ingest's LATEST ("last good raw data") is not moved here: plan moves it once every shard
    # has passed. Its key travels on the artifacts (not in the files: a restored checkpoint
    # may come from another ingest run of the same bytes).
    found = str(result.extra.get("frequency") or "")
    ingest_key = str(raw.metadata.get("checkpoint_key") or "")
    for artifact in (validated, profile):
        artifact.metadata.update({"shard": shard, "shards": shards, "ingest_checkpoint_key": ingest_key})
    validated.metadata.update({"rows": result.rows_out, "restored_from_checkpoint": result.restored,
                               "frequency": found})
    schema_diff.metadata.update({"valid": True, "warnings": len(result.extra.get("warnings", [])),
                                 "frequency": found})
    return found
