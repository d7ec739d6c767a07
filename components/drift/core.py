"""Drift stage: the latest window's features against the model's training window.

The reference is the training window recorded in train's ``model_info`` (``training_window``
start and end dates); the current window is what came after it (the test period) or, with
``current_days``, the last N dates of the data. Only returns-based features are compared:
:data:`pricecast.columns.DRIFT_FEATURES` leaves out the calendar features, which are functions of the date and
"drift" with the season by construction.

The features arrive in shards. Each shard's rows of both windows are sketched and the sketches
merged (:mod:`pricecast.sketch`), so one shard at a time is in memory and the report does not
depend on how the rows were sharded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pricecast import frames
from pricecast.columns import DRIFT_FEATURES
from pricecast.errors import ConfigError
from pricecast.monitoring.drift import PROFILE_KEY, DriftReport, DriftThresholds, drift_report_from_sketches
from pricecast.sketch import Sketch
from pricecast.time_split import day, distinct_dates, iso_day

if TYPE_CHECKING:  # the task reads features as frames.Columns, not as pandas frames
    import pandas as pd


def training_window(model_info: Mapping[str, Any]) -> tuple[np.datetime64, np.datetime64]:
    """The first and last training dates from train's model_info (datetime64[ns]).

    Raises:
        ConfigError: ``training_window`` is missing or its dates do not parse.
    """
    window = model_info.get("training_window") or {}
    first = window.get("start", window.get("first"))
    last = window.get("end", window.get("last"))
    problem = ConfigError(f"model_info has no usable training_window ({window!r}).",
                          "Pass the model_info artifact of the train stage (start and end dates).")
    try:
        start, end = day(first), day(last)
    except (TypeError, ValueError) as exc:
        raise problem from exc
    if np.isnat(start) or np.isnat(end):  # None parses as NaT, not as an error
        raise problem
    return start, end


def last_dates_start(dates: Iterable[Any], current_days: int) -> np.datetime64:
    """The first of the last ``current_days`` distinct dates, over every shard's dates.

    Raises:
        ConfigError: No date at all.
    """
    distinct: set[np.datetime64] = set()
    for shard_dates in dates:
        distinct.update(distinct_dates(shard_dates))
    if not distinct:
        raise ConfigError("The features hold no row at all.", "Pass the features stage's output.")
    return sorted(distinct)[-min(current_days, len(distinct))]


def _masks(dates: Any, first: np.datetime64, last: np.datetime64,
           since: np.datetime64 | None) -> tuple[np.ndarray, np.ndarray]:
    """Reference rows (inside the training window) and current rows (from ``since``, else after it)."""
    dates = np.asarray(dates)
    reference = (dates >= first) & (dates <= last)
    current = dates >= since if since is not None else dates > last
    return reference, current


def _check_windows(first: np.datetime64, last: np.datetime64, reference_rows: int, current_rows: int) -> None:
    if reference_rows == 0:
        raise ConfigError(f"No feature row lies in the training window {iso_day(first)}..{iso_day(last)}.",
                          "Pass the features the model was trained on (same pipeline run).")
    if current_rows == 0:
        raise ConfigError(f"No feature row is dated after the training window's end {iso_day(last)}.",
                          "Set current_days to compare the last N dates instead.")


def _check_days(current_days: int) -> None:
    if current_days < 0:
        raise ConfigError(f"current_days must be >= 0, got {current_days}.",
                          "Use 0 for the dates after training, or N for the last N dates.")


def split_windows(
    features_df: pd.DataFrame, model_info: Mapping[str, Any], current_days: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Reference rows (inside the training window) and current rows, plus a description of both.

    Args:
        features_df: The features stage's output.
        model_info: Train's record (``training_window``, ``version``).
        current_days: 0 compares every date after the training window; N > 0 the last N dates.

    Raises:
        ConfigError: ``current_days`` is negative, or either window has no rows.
    """
    _check_days(current_days)
    first, last = training_window(model_info)
    since = last_dates_start([features_df["date"]], current_days) if current_days else None
    in_reference, in_current = _masks(features_df["date"], first, last, since)
    reference, current = features_df[in_reference], features_df[in_current]
    _check_windows(first, last, len(reference), len(current))
    context = {
        "model_version": model_info.get("version", ""),
        "reference_window": f"{iso_day(reference['date'].min())} .. {iso_day(reference['date'].max())}",
        "reference_rows": len(reference),
        "current_window": f"{iso_day(current['date'].min())} .. {iso_day(current['date'].max())}",
        "current_rows": len(current),
    }
    return reference, current, context


@dataclasses.dataclass
class WindowSketches:
    """Both windows' sketches per feature, built a shard at a time, and what the report says of them."""

    reference: dict[str, Sketch]
    current: dict[str, Sketch]
    context: dict[str, Any]
    rows_read: int


def sketch_windows(
    shards: Iterable[pd.DataFrame | frames.Columns],
    model_info: Mapping[str, Any],
    columns: Sequence[str],
    since: np.datetime64 | None = None,
) -> WindowSketches:
    """Sketch the reference and current rows of each shard and merge them: one shard in memory at a time.

    Args:
        shards: Feature frames (``date`` and ``columns``), e.g. :func:`pricecast.frames.read_shards`.
        model_info: Train's record (``training_window``, ``version``).
        columns: Features to sketch.
        since: First date of the current window (:func:`last_dates_start`); None: every date
            after the training window.

    Raises:
        ConfigError: Either window has no rows.
    """
    first, last = training_window(model_info)
    reference = {c: Sketch.empty() for c in columns}
    current = {c: Sketch.empty() for c in columns}
    rows = {"reference": 0, "current": 0}
    spans: dict[str, list[np.datetime64]] = {"reference": [], "current": []}
    rows_read = 0
    for frame in shards:
        rows_read += len(frame)
        for window, mask, sketches in zip(("reference", "current"), _masks(frame["date"], first, last, since),
                                          (reference, current), strict=True):
            if not mask.any():
                continue
            rows[window] += int(mask.sum())
            dates = np.asarray(frame["date"])[mask]
            spans[window] += [dates.min(), dates.max()]
            for c in columns:
                values = np.asarray(frame[c], dtype=np.float64)[mask]
                sketches[c] = Sketch.merge([sketches[c], Sketch.of(values)])
    _check_windows(first, last, rows["reference"], rows["current"])
    context = {"model_version": model_info.get("version", "")}
    for window in ("reference", "current"):
        context[f"{window}_window"] = f"{iso_day(min(spans[window]))} .. {iso_day(max(spans[window]))}"
        context[f"{window}_rows"] = rows[window]
    return WindowSketches(reference, current, context, rows_read)


def drift_for_shards(
    paths: Sequence[str | Path],
    model_info: Mapping[str, Any],
    thresholds: DriftThresholds | None = None,
    current_days: int = 0,
    columns: Sequence[str] | None = None,
) -> tuple[DriftReport, int]:
    """The drift report of the current window against the model's training window, read shard by shard.

    Each shard's reference and current rows are sketched (:class:`pricecast.sketch.Sketch`) and
    the sketches merged, so memory holds one shard, and any sharding of the same rows gives the
    same PSI, KS and level (means and stds to rounding).

    Args:
        paths: The features shards (Parquet files).
        model_info: Train's record: ``training_window``, ``version``, and the ``reference_profile``
            whose bins the model server scores live drift with.
        thresholds: PSI and KS thresholds; the standard ones by default.
        current_days: 0 compares every date after the training window; N > 0 the last N dates
            (over all shards: their dates are read first, one shard at a time).
        columns: Features to compare; :data:`DRIFT_FEATURES` by default.

    Returns:
        The report and the number of rows read.

    Raises:
        ConfigError: ``current_days`` is negative, or either window has no rows.
    """
    _check_days(current_days)
    columns = list(columns or DRIFT_FEATURES)
    since = None
    if current_days:
        since = last_dates_start((f["date"] for f in frames.read_shards(paths, columns=["date"])), current_days)
    windows = sketch_windows(frames.read_blocks(paths, columns=["date", *columns]), model_info, columns, since)
    return _report(windows, model_info, thresholds), windows.rows_read


def drift_for_model(
    features_df: pd.DataFrame,
    model_info: Mapping[str, Any],
    thresholds: DriftThresholds | None = None,
    current_days: int = 0,
    columns: list[str] | None = None,
) -> DriftReport:
    """:func:`drift_for_shards` of one features frame (one shard)."""
    _check_days(current_days)
    columns = list(columns or DRIFT_FEATURES)
    since = last_dates_start([features_df["date"]], current_days) if current_days else None
    return _report(sketch_windows([features_df], model_info, columns, since), model_info, thresholds)


def _report(windows: WindowSketches, model_info: Mapping[str, Any], thresholds: DriftThresholds | None) -> DriftReport:
    # Train's profile of its training rows: the bins the model server scores live drift with.
    return drift_report_from_sketches(windows.reference, windows.current, thresholds, windows.context,
                                      profile=model_info.get(PROFILE_KEY))
