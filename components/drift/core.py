"""Drift stage: the latest window's features against the model's training window.

The reference is the training window recorded in train's ``model_info`` (``training_window``
start and end dates); the current window is what came after it (the test period) or, with
``current_days``, the last N dates of the data. Only returns-based features are compared:
:data:`pricecast.columns.DRIFT_FEATURES` leaves out the calendar features, which are functions of the date and
"drift" with the season by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from pricecast.columns import DRIFT_FEATURES
from pricecast.errors import ConfigError
from pricecast.monitoring.drift import PROFILE_KEY, DriftReport, DriftThresholds, drift_report


def training_window(model_info: Mapping[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last training dates from train's model_info.

    Raises:
        ConfigError: ``training_window`` is missing or its dates do not parse.
    """
    window = model_info.get("training_window") or {}
    first = window.get("start", window.get("first"))
    last = window.get("end", window.get("last"))
    problem = ConfigError(f"model_info has no usable training_window ({window!r}).",
                          "Pass the model_info artifact of the train stage (start and end dates).")
    try:
        start, end = pd.Timestamp(first), pd.Timestamp(last)
    except (TypeError, ValueError) as exc:
        raise problem from exc
    if pd.isna(start) or pd.isna(end):  # a missing key parses as NaT, not as an error
        raise problem
    return start, end


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
    if current_days < 0:
        raise ConfigError(f"current_days must be >= 0, got {current_days}.",
                          "Use 0 for the dates after training, or N for the last N dates.")
    first, last = training_window(model_info)
    dates = features_df["date"]
    reference = features_df[(dates >= first) & (dates <= last)]
    if current_days:
        recent = pd.Series(dates.unique()).nlargest(current_days)
        current = features_df[dates >= recent.min()]
    else:
        current = features_df[dates > last]
    if reference.empty:
        raise ConfigError(f"No feature row lies in the training window {first.date()}..{last.date()}.",
                          "Pass the features the model was trained on (same pipeline run).")
    if current.empty:
        raise ConfigError(f"No feature row is dated after the training window's end {last.date()}.",
                          "Set current_days to compare the last N dates instead.")
    context = {
        "model_version": model_info.get("version", ""),
        "reference_window": f"{reference['date'].min().date()} .. {reference['date'].max().date()}",
        "reference_rows": len(reference),
        "current_window": f"{current['date'].min().date()} .. {current['date'].max().date()}",
        "current_rows": len(current),
    }
    return reference, current, context


def drift_for_model(
    features_df: pd.DataFrame,
    model_info: Mapping[str, Any],
    thresholds: DriftThresholds | None = None,
    current_days: int = 0,
    columns: list[str] | None = None,
) -> DriftReport:
    """The drift report of the current window against the model's training window."""
    reference, current, context = split_windows(features_df, model_info, current_days)
    # Train's profile of its training rows: the bins the model server scores live drift with.
    return drift_report(reference, current, columns or DRIFT_FEATURES, thresholds, context=context,
                        profile=model_info.get(PROFILE_KEY))
