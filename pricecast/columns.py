"""The column names the stages and the model server hand each other: one home for the contract.

clean writes :data:`CLEAN_COLUMNS` (and the clipping bounds train stores under
:data:`OUTLIER_BOUNDS_KEY`); features adds :data:`TARGET`, :data:`ACTUAL_RETURN` and
:data:`FEATURE_COLUMNS`; train, evaluate, drift and the server read them. Each stage imports the
names from here rather than from the stage that writes them, so no stage imports another.
"""

from __future__ import annotations

from pricecast import frequency as freq

CLEAN_COLUMNS = ("date", "ticker", "price", "log_return", "segment", "clipped")
OUTLIER_BOUNDS_KEY = "outlier_bounds"  # where model_info (and a model's metadata.json) keeps them

RETURN_LAGS = 5
SHORT_WINDOW = 5
LONG_WINDOW = 20

FEATURE_COLUMNS: list[str] = [
    *(f"ret_lag_{k}" for k in range(RETURN_LAGS)),
    f"ret_mean_{SHORT_WINDOW}",
    f"ret_mean_{LONG_WINDOW}",
    f"ret_vol_{SHORT_WINDOW}",
    f"ret_vol_{LONG_WINDOW}",
    f"price_vs_ma_{LONG_WINDOW}",
    "dow_sin",
    "dow_cos",
    "month_sin",
    "month_cos",
]
TARGET = "target"
# The next-day log return as it happened, unclipped: what forecasts are scored against. TARGET is
# its clipped form, what the model is fitted to (a bad tick must not pull the fit).
ACTUAL_RETURN = "actual_return"
CALENDAR_FEATURES = {"dow": ("dow_sin", "dow_cos"), "month": ("month_sin", "month_cos")}


def feature_columns(frequency: freq.Frequency | str = freq.Frequency.BUSINESS) -> list[str]:
    """The model's inputs at ``frequency``: :data:`FEATURE_COLUMNS` for business and calendar days
    (the served format of daily models), without the weekday features for weekly and monthly
    data, whose weekday never changes."""
    kept = freq.spacing(frequency).calendar_features
    dropped = {c for kind, names in CALENDAR_FEATURES.items() if kind not in kept for c in names}
    return [c for c in FEATURE_COLUMNS if c not in dropped]

# Drift is measured on returns-based features only: the calendar features are functions of the
# date and "drift" with the season by construction.
CALENDAR_PREFIXES = ("dow_", "month_")
DRIFT_FEATURES: list[str] = [c for c in FEATURE_COLUMNS if not c.startswith(CALENDAR_PREFIXES)]
