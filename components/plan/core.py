"""Plan: pool the shards' profiles, check the whole table, decide the run's split, gather the shards.

Validate checks each shard for what it can answer alone. What only the whole table can answer
is checked here, on the profiles (:mod:`pricecast.shard_profile`), in the order validate checks
one table and with its sentences: at least ``min_rows`` rows, prices over time rather than one
date's cross-section, one supported frequency for every ticker of every shard, and enough dates
(and one ticker with the history) for the model. Then the time-ordered split is decided once,
on the union of every shard's dates, so a sharded run splits exactly as its whole table would.

The validated shards become one partitioned table (``part-XXXXX.parquet`` per shard), which
the per-shard clean tasks read: KFP cannot hand a collected list to tasks inside another loop.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from components.plan.shards import by_shard
from pricecast import history
from pricecast import frequency as freq
from pricecast.errors import ConfigError, SchemaValidationError
from pricecast.shard_profile import (
    FREQUENCY,
    HISTORY,
    MIN_ROWS,
    TIME_SERIES,
    Profile,
    cross_section_fix,
    cross_section_summary,
    history_fix,
    min_rows_fix,
    min_rows_summary,
    short_history_summary,
    too_few_dates_summary,
)
from pricecast.time_split import Split, check_split_parameters, iso_day, time_split

log = logging.getLogger("components.plan")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the later stages run on: the shards, the data's frequency and the split."""

    shards: list[int]
    frequency: freq.Frequency
    split: Split
    rows: int
    tickers: int
    dates: int

    def summary(self) -> str:
        return (f"{self.rows:,} rows, {self.tickers:,} tickers and {self.dates:,} dates in {len(self.shards)} "
                f"shard(s) at {self.frequency.value} frequency; test period from {iso_day(self.split.test_start)} "
                f"in {len(self.split.windows)} window(s)")


def check_complete(profiles: Mapping[int, Profile]) -> list[int]:
    """The shard indices, checked to be every shard 0..K-1 of one table, each once."""
    if not profiles:
        raise ConfigError("Plan got no shard profiles.", "Run validate on every shard of ingest's raw table first.")
    declared = sorted({p.shards for p in profiles.values()})
    shards = sorted(profiles)
    if len(declared) != 1 or shards != list(range(declared[0])):
        missing = sorted(set(range(max(declared[-1], shards[-1] + 1))) - set(shards))
        raise ConfigError(
            f"The shard profiles do not cover one table: got shard(s) {', '.join(map(str, shards))} of a table "
            f"of {' or '.join(map(str, declared))} shard(s)" + (f"; missing {', '.join(map(str, missing))}"
                                                                   if missing else "") + ".",
            "Validate every shard of ingest's raw table with the same shards parameter, and collect them all.")
    return shards


# --------------------------------------------------------------------------- the checks
@dataclasses.dataclass(frozen=True)
class _Failure:
    check: str
    column: str
    summary: str
    fix: str


def _error(failures: Sequence[_Failure], rows: int, min_rows: int, shards: int) -> SchemaValidationError:
    """A schema diff of the whole table (no sample rows: those live in the shards' diffs)."""
    checks = [{"check": f.check, "column": f.column, "failing_rows": 0, "summary": f.summary, "fix": f.fix,
               "sample": []} for f in failures]
    diff = {
        "valid": False, "schema": "prices", "scope": f"every shard ({shards})",
        "rows": {"found": rows, "min_rows": min_rows, "failing": 0},
        "checks": checks, "warnings": [],
        "problem": "The data does not match the price schema: " + "; ".join(c["summary"] for c in checks) + ".",
        "fix": " ".join(dict.fromkeys(c["fix"] for c in checks)),
    }
    return SchemaValidationError(diff["problem"], diff["fix"], diff=diff)


def _pooled_detection(profiles: Mapping[int, Profile]) -> tuple[freq.Detection, pd.Series]:
    """Every shard's per-ticker spacing as one detection, and each ticker's shard."""
    parts = [p.series for p in profiles.values()]
    series = pd.concat(parts) if parts else pd.DataFrame()
    shard_of = pd.Series(np.repeat([p.shard for p in profiles.values()], [len(s) for s in parts]), index=series.index)
    twice = series.index[series.index.duplicated()]
    if len(twice):
        ticker = str(twice[0])
        raise ConfigError(
            f"Ticker {ticker!r} is in shards {sorted(set(shard_of[ticker]))}: a ticker's rows must all be in one "
            "shard.", "Partition raw prices by ticker (pricecast.frames.shard_of), as ingest does.")
    known = {freq.Frequency(f) for f in series["frequency"] if isinstance(f, str)}
    return freq.Detection(series, known.pop() if len(known) == 1 else None), shard_of


def _where(shard_of: pd.Series, series: pd.DataFrame) -> str:
    """Which shards hold the tickers of each frequency (for the mixed or contradicted case)."""
    known = series.dropna(subset=["frequency"])
    parts = []
    for found, group in known.groupby("frequency"):
        held = sorted(set(shard_of[group.index].astype(int)))
        parts.append(f"{found} in shard{'s' if len(held) > 1 else ''} {', '.join(map(str, held))}")
    return "; ".join(parts)


def check_whole_table(profiles: Mapping[int, Profile], min_rows: int, requested: freq.Frequency | None,
                      test_fraction: float, n_windows: int) -> tuple[freq.Frequency, np.ndarray]:
    """The checks of the whole table, in validate's order; the data's frequency and its dates.

    Raises:
        SchemaValidationError: With a schema diff naming the problem, the shards and the fix.
    """
    shards = len(profiles)
    rows = sum(p.rows for p in profiles.values())
    if rows < max(min_rows, 1):
        raise _error([_Failure(MIN_ROWS, "", min_rows_summary(rows, min_rows), min_rows_fix(rows, min_rows))],
                     rows, min_rows, shards)
    dates = np.unique(np.concatenate([p.dates for p in profiles.values()]))
    detection, shard_of = _pooled_detection(profiles)
    if max(p.longest for p in profiles.values()) < 2:
        raise _error([_Failure(TIME_SERIES, "", cross_section_summary(len(detection.series), dates),
                               cross_section_fix(test_fraction, n_windows))], rows, min_rows, shards)
    why = freq.problem(detection, requested)
    if why is not None or (requested is None and detection.frequency is None):
        summary = why or "no supported frequency"
        if shards > 1 and (detection.mixed or requested is not None):
            summary += f" ({_where(shard_of, detection.series)})"
        raise _error([_Failure(FREQUENCY, "date", summary, freq.fix(detection, requested))], rows, min_rows, shards)
    frequency = requested or detection.frequency
    assert frequency is not None
    fix = history_fix(frequency, test_fraction, n_windows)
    if not history.model_fits(len(dates), test_fraction, n_windows):
        raise _error([_Failure(HISTORY, "", too_few_dates_summary(frequency, len(dates), test_fraction, n_windows),
                               fix)], rows, min_rows, shards)
    test_start = dates[len(dates) - history.test_dates(len(dates), test_fraction)]
    longest = {s: p.longest_before_date(test_start) for s, p in profiles.items()}
    best = max(longest, key=lambda s: (longest[s], -s))
    if longest[best] < history.MIN_HISTORY + 1:
        raise _error([_Failure(HISTORY, "", short_history_summary(frequency, test_start, longest[best],
                                                                  f"a ticker of shard {best}"), fix)],
                     rows, min_rows, shards)
    return frequency, dates


def plan_shards(profiles: Iterable[Profile], min_rows: int = 100, frequency: str = freq.AUTO,
                test_fraction: float = 0.2, n_windows: int = 3) -> Plan:
    """Pool the shards' profiles: check the whole table, then decide the split on every date.

    Args:
        profiles: One profile per shard, any order (validate's ``profile`` outputs).
        min_rows: Fewest rows the whole table must hold (at least 1).
        frequency: ``auto`` (the one every classified ticker shares) or a frequency's name.
        test_fraction: The split's held-out share of the dates.
        n_windows: The split's number of test windows.

    Raises:
        ConfigError: Bad parameters, or profiles that are not every shard of one table once.
        SchemaValidationError: A check of the whole table failed (diff, problem and fix).
    """
    requested = freq.parse(frequency)
    check_split_parameters(test_fraction, n_windows)
    indexed = by_shard(((p.shard, p) for p in profiles), "profile")
    shards = check_complete(indexed)
    found, dates = check_whole_table(indexed, min_rows, requested, test_fraction, n_windows)
    the_plan = Plan(shards=shards, frequency=found, split=time_split(dates, test_fraction, n_windows),
                    rows=sum(p.rows for p in indexed.values()), tickers=sum(p.tickers for p in indexed.values()),
                    dates=len(dates))
    log.info("plan: %s.", the_plan.summary())
    return the_plan


__all__ = ["Plan", "check_complete", "check_whole_table", "plan_shards"]
