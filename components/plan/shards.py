"""The plan task's bookkeeping of shards: which file is which shard, and the shards as one table.

Apart from :mod:`components.plan.core` because the task runs them whether its split is computed
or restored from a checkpoint: nothing here imports pandas.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pricecast import frames
from pricecast.errors import ConfigError


# --------------------------------------------------------------------------- shards by index
def by_shard(items: Iterable[tuple[Any, Any]], what: str) -> dict[int, Any]:
    """``{shard: item}`` from (shard index, item) pairs, in whatever order the fan-in gave them.

    Raises:
        ConfigError: An item without a shard index, or two items of one shard.
    """
    found: dict[int, Any] = {}
    for position, (shard, item) in enumerate(items):
        if shard is None or shard == "":
            raise ConfigError(f"{what} #{position} does not say which shard it is (no shard index).",
                              "Pass validate's own outputs: validate records each shard's index.")
        shard = int(shard)
        if shard in found:
            raise ConfigError(f"Two {what}s are for shard {shard}.",
                              "Collect each validate task's output once (one task per shard).")
        found[shard] = item
    return found


# --------------------------------------------------------------------------- the shards as one table
def gather_shards(sources: Mapping[int, str | Path], out: str | Path) -> dict[str, int]:
    """Put each shard's file at ``out/part-XXXXX.parquet``: a hard link where possible, else a copy.

    A hard link costs nothing and is safe here: stages never change a file in place (they write
    a new one and rename it). Another filesystem, or one without links, gets a copy. The files
    go to a temporary directory beside ``out`` that is renamed into place last, so a reader sees
    every shard or no directory at all.

    Returns:
        How many files were linked and how many copied: ``{"linked": n, "copied": m}``.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    done = {"linked": 0, "copied": 0}
    try:
        for shard, source in sorted(sources.items()):
            target = staging / frames.SHARD_FILE.format(shard)
            try:
                os.link(source, target)
                done["linked"] += 1
            except OSError:  # EXDEV (another filesystem), EPERM (no links there), ...
                shutil.copyfile(source, target)
                done["copied"] += 1
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink(missing_ok=True)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return done


__all__ = ["by_shard", "gather_shards"]
