"""KFP wrapper of plan: a plain function the pipeline turns into a component at compile time.

KFP lightweight components ship the function's source alone, so every import is inside it.
No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
"""

from typing import Dict, List, NamedTuple  # noqa: UP035 - KFP reads typing.List from the signature

from kfp.dsl import Artifact, Dataset, Input, Output


def plan(
    profiles: Input[List[Artifact]],  # noqa: UP006 - KFP recognises typing.List
    validated: Input[List[Dataset]],  # noqa: UP006
    validated_shards: Output[Dataset],
    split: Output[Artifact],
    min_rows: int = 100,
    frequency: str = "auto",
    test_fraction: float = 0.2,
    n_windows: int = 3,
    store_url: str = "",
    force_from: str = "",
) -> NamedTuple("Outputs", [("Output", List[Dict]), ("frequency", str)]):  # noqa: UP006
    """Pool the validated shards: check the whole table, decide the run's split, gather the shards.

    Validate checks each shard for what it can answer alone; plan checks what only the whole
    table can answer, on the shards' profiles and with validate's sentences: at least min_rows
    rows, prices over time (not one date's cross-section), one supported frequency for every
    ticker (a mixed-frequency error names the shards), and enough dates and history for the
    model. The time-ordered split is then decided once, on the union of every shard's dates, as
    one table's would be. Once every shard has passed, ingest's raw data becomes its last good
    checkpoint (LATEST).

    Args:
        profiles: The validate tasks' profiles (dsl.Collected), one per shard, any order.
        validated: The validate tasks' tables (dsl.Collected), matched to shards by the shard
            index validate records on each, not by their position in the list.
        validated_shards: Output directory with every shard's table as part-XXXXX.parquet (hard
            links to the validated files where the filesystem allows, else copies): what the
            per-shard clean tasks read.
        split: Output JSON: the time-ordered split (training start, test_start, test windows)
            that clean, train and evaluate use.
        min_rows: Fewest rows the whole table must hold.
        frequency: auto (the frequency the tickers share), business, daily, weekly or monthly.
        test_fraction: Share of the latest dates held out for testing.
        n_windows: Number of consecutive test windows the held-out dates are cut into.
        store_url: Store for checkpoints; empty uses PRICECAST_STORE_URL.
        force_from: Stage to recompute from ("" = reuse any matching checkpoint).

    Returns:
        Output: What the next loop runs over, one item per shard: ``{"shard": i, "frequency":
            f}`` (``dsl.ParallelFor(items=plan_task.outputs["Output"]) as item``, then
            ``shard=item.shard, frequency=item.frequency``).
        frequency: The data's frequency (business, daily, weekly or monthly), for tasks outside
            the loop.

    Why the loop items carry the frequency and the output is named ``Output``: kfp.local (KFP
    2.17) resolves ``ParallelFor`` items only from a task output named ``Output``, and inside a
    loop body it replaces every upstream task's output *parameter* with the loop item (a
    ``frequency=plan_task.outputs["frequency"]`` there arrives as the shard index). Fields of
    the item and artifacts reach the loop body intact, locally and on a cluster.
    """
    import json
    import shutil
    from collections import namedtuple
    from pathlib import Path

    from components.plan.shards import by_shard, gather_shards
    from pricecast.errors import ConfigError
    from pricecast.stage import code_fingerprint, mark_latest, mode_for, run_stage

    profile_paths = by_shard(((json.loads(Path(a.path).read_text(encoding="utf-8"))["shard"], a.path)
                                   for a in profiles), "profile")
    # A table without a shard index in its metadata (not validate's own output) can only be
    # matched when there is one.
    tables = by_shard(((a.metadata.get("shard", 0 if len(validated) == 1 else None), a.path)
                            for a in validated), "validated table")
    if sorted(tables) != sorted(profile_paths):
        raise ConfigError(
            f"The validated tables are for shard(s) {sorted(tables)} but the profiles for {sorted(profile_paths)}.",
            "Collect the validated table and the profile of the same validate tasks.")

    # The heavy imports (pandas) are inside compute: a restored task never needs them.
    def compute(ctx) -> None:
        from components.plan import core
        from pricecast.shard_profile import Profile

        loaded = [Profile.from_dict(json.loads(Path(p).read_text(encoding="utf-8"))) for p in profile_paths.values()]
        the_plan = core.plan_shards(loaded, min_rows, frequency, test_fraction, n_windows)
        Path(split.path).write_text(json.dumps(the_plan.split.to_dict(), indent=2), encoding="utf-8")
        ctx.record(rows_in=the_plan.rows, rows_out=the_plan.rows, shards=the_plan.shards,
                   frequency=the_plan.frequency.value, tickers=the_plan.tickers, dates=the_plan.dates,
                   test_start=the_plan.split.to_dict()["test_start"])

    # The checkpoint holds the split alone: the validated shards are the validate tasks' own
    # outputs (and checkpoints), gathered again below whether the split was computed or restored.
    result = run_stage(
        "plan",
        params={"min_rows": min_rows, "frequency": frequency, "test_fraction": test_fraction,
                "n_windows": n_windows},
        inputs={f"profile_{shard:05d}": path for shard, path in profile_paths.items()},
        outputs={"split": split.path},
        compute=compute,
        code=code_fingerprint("components.plan.component"),
        mode=mode_for("plan", force_from),
        store_url=store_url or None,
    )
    try:
        gathered = gather_shards(tables, validated_shards.path)
    except BaseException:
        Path(split.path).unlink(missing_ok=True)  # no half of the outputs without the other
        shutil.rmtree(validated_shards.path, ignore_errors=True)
        raise
    # Every shard passed: the raw data is now ingest's last good checkpoint (ingest does not move it).
    keys = {str(a.metadata.get("ingest_checkpoint_key") or "") for a in profiles} - {""}
    if len(keys) == 1:
        mark_latest("ingest", keys.pop(), store_url or None)

    shards = [int(s) for s in result.extra["shards"]]
    found = str(result.extra["frequency"])
    validated_shards.metadata.update({"shards": len(shards), "rows": result.rows_out, "frequency": found,
                                      "restored_from_checkpoint": result.restored, **gathered})
    split.metadata.update({"test_start": result.extra.get("test_start"), "frequency": found})
    outputs = namedtuple("Outputs", ["Output", "frequency"])
    return outputs([{"shard": shard, "frequency": found} for shard in shards], found)
