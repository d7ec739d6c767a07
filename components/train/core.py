"""Train: a scaled ridge regression of the next-period log return on the features.

The model is fitted on the training rows of a time-ordered split (:mod:`pricecast.time_split`,
re-exported here) and described by a :class:`TrainInfo`: what it saw, when, how well it fits,
and the sha256 of its bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from pricecast import frequency as freq
from pricecast import modelio, storage
from pricecast.columns import DRIFT_FEATURES, FEATURE_COLUMNS, TARGET, feature_columns
from pricecast.errors import ConfigError
from pricecast.forecast_metrics import forecast_metrics
from pricecast.forecast_metrics import pool as pool_metrics
from pricecast.moments import RidgeFit, check_alpha, fit_ridge
from pricecast.monitoring.drift import BINS, PROFILE_FORMAT, profile_from_sketch
from pricecast.time_split import Split, Window, target_dates, time_split, train_mask, window_mask
from pricecast.training_stats import ShardStats, pool, shard_stats

if TYPE_CHECKING:  # annotations only: the stage never imports scikit-learn (1 s of its start-up)
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from pricecast.frames import Columns

FRAMEWORK = "sklearn"
# The features-frame columns that the split and the fit read (daily data; see training_columns).
TRAINING_COLUMNS: list[str] = ["date", "ticker", "segment", "price", TARGET, *FEATURE_COLUMNS]
__all__ = [
    "FRAMEWORK", "TRAINING_COLUMNS", "Split", "TrainInfo", "Window", "coefficients",
    "make_model", "target_dates", "time_split", "train_from_stats", "train_mask",
    "train_model", "training_columns", "window_mask",
]


def training_columns(frequency: freq.Frequency | str = freq.Frequency.BUSINESS) -> list[str]:
    """The features-frame columns that the split and the fit read at ``frequency``."""
    return ["date", "ticker", "segment", "price", TARGET, *feature_columns(frequency)]


@dataclasses.dataclass(frozen=True)
class TrainInfo:
    """What the model artifact carries: provenance, data, window, metrics and its own sha256."""

    version: str
    created_at: str
    sha256: str
    data_hash: str
    features: list[str]
    training_window: dict[str, str]
    rows: int
    alpha: float
    split: dict[str, Any]
    metrics: dict[str, float]
    coefficients: dict[str, float]
    # Decile profile of the returns-based features on the training rows: the server computes
    # live drift (PSI) against it without needing the training data.
    reference_profile: dict[str, Any] = dataclasses.field(default_factory=dict)
    framework: str = FRAMEWORK
    # The data's frequency: the features' calendar columns, the target's horizon (the next
    # period) and the spacing the server demands of raw prices follow it. Older models: business.
    frequency: str = freq.Frequency.BUSINESS.value
    model_bytes: bytes = dataclasses.field(default=b"", repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the model bytes (they travel as the model artifact)."""
        data = dataclasses.asdict(self)
        del data["model_bytes"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainInfo:
        names = {f.name for f in dataclasses.fields(cls)} - {"model_bytes"}
        return cls(**{k: v for k, v in data.items() if k in names})


# --------------------------------------------------------------------------- model
def make_model(alpha: float = 1.0) -> Pipeline:
    """Standardize the features, then ridge regression (alpha = L2 penalty): what :func:`fit_ridge`
    fits from the shards' statistics, as an unfitted scikit-learn pipeline."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])


def coefficients(fit: RidgeFit) -> dict[str, float]:
    """The ridge coefficients in the features' own units (per unit of each feature), and the intercept."""
    form = modelio.fold([modelio.Scaling(fit.mean, fit.scale)], fit.coef, fit.intercept, fit.feature_names)
    names = form.feature_names or tuple(FEATURE_COLUMNS)
    return {"intercept": form.intercept, **dict(zip(names, map(float, form.weights), strict=True))}


def train_model(
    features_df: pd.DataFrame,
    split: Split,
    alpha: float = 1.0,
    now: datetime | None = None,
    frequency: freq.Frequency | str = freq.Frequency.BUSINESS,
) -> tuple[Pipeline, TrainInfo]:
    """Fit the model on the training rows of ``split`` in one frame (one shard) and describe it.

    The same path as a sharded run, with one shard: :func:`train_from_stats`; the model comes
    back as the scikit-learn pipeline its bytes load as.

    Args:
        features_df: The features stage's output.
        split: From :func:`time_split`.
        alpha: Ridge L2 penalty (on standardized features), >= 0.
        now: Creation time (UTC) for the version string; the current time when omitted.
        frequency: The data's frequency (recorded; it picks the feature columns).

    Returns:
        The fitted ``Pipeline(StandardScaler, Ridge)`` and its :class:`TrainInfo`.
    """
    check_alpha(alpha)
    spacing = freq.Frequency(frequency)
    stats = shard_stats(features_df, split, feature_columns(spacing), spacing.value)
    fit, info = train_from_stats([stats], split, alpha, [features_df], now)
    return fit.to_pipeline(), info


def train_from_stats(
    stats: Sequence[ShardStats],
    split: Split,
    alpha: float,
    shards: Iterable[pd.DataFrame | Columns],
    now: datetime | None = None,
) -> tuple[RidgeFit, TrainInfo]:
    """Fit on K shards' pooled statistics, then score the fit in-sample shard by shard.

    The ridge solution depends on the training rows only through their count, means and
    centered scatter, so the pooled fit equals a single-process ``StandardScaler + Ridge`` fit
    on all the rows (to rounding). The in-sample metrics need the predictions, so ``shards`` is
    read once more, one frame at a time, and the metrics are pooled from per-shard sums.

    Args:
        stats: Every shard's :class:`ShardStats` (from the features stage).
        split: The run's split (plan decided it).
        alpha: Ridge L2 penalty (on standardized features), >= 0.
        shards: The features frames (at least :func:`training_columns`; pandas, or
            :class:`pricecast.frames.Columns` as the task reads them), in any order.
        now: Creation time (UTC) for the version string; the current time when omitted.

    Returns:
        The fit and its :class:`TrainInfo`, whose ``model_bytes`` are the skops bytes
        ``sha256`` was computed from (write exactly these).

    Raises:
        ConfigError: ``alpha`` is negative, the shards disagree, or no row is left to train on.
        NumericRangeError: The in-sample forecast errors overflow float64.
    """
    check_alpha(alpha)
    pooled = pool(stats)
    fit = fit_ridge(pooled.moments, alpha, pooled.features)
    fitted, naive = [], []
    # In-sample forecasts from the fitted affine map (what the server computes), column by
    # column: no (rows x features) copy of a shard and no sklearn input checks per shard.
    affine = coefficients(fit)
    for frame in shards:
        mask = train_mask(frame, split)
        if not mask.any():
            continue
        predicted = np.full(int(mask.sum()), affine["intercept"])
        for name in pooled.features:
            predicted += affine[name] * np.asarray(frame[name], dtype=np.float64)[mask]
        target = np.asarray(frame[TARGET], dtype=np.float64)[mask]
        price = np.asarray(frame["price"], dtype=np.float64)[mask]
        fitted.append(forecast_metrics("candidate", price, target, predicted))
        naive.append(forecast_metrics("naive", price, target, None))
        # Let this shard go before the next one is read: two shards never live at once.
        del frame, target, price, mask, predicted
    if not fitted:
        raise ConfigError("The features shards hold none of the training rows their statistics count.",
                          "Pass train the same features artifacts the statistics were computed from.")
    metrics = {f"train_{k}": v for k, v in _numbers(pool_metrics("candidate", fitted)).items()}
    metrics |= {f"train_naive_{k}": v for k, v in _numbers(pool_metrics("naive", naive)).items()}

    model_bytes = modelio.dumps_ridge(fit)
    sha = storage.sha256_bytes(model_bytes)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    info = TrainInfo(
        version=f"{created:%Y%m%d-%H%M%S}-{sha[:8]}",
        created_at=created.isoformat(timespec="seconds"),
        sha256=sha,
        data_hash=pooled.data_hash,
        features=pooled.features,
        training_window={"start": pooled.first_date, "end": pooled.last_date},
        rows=pooled.rows,
        alpha=float(alpha),
        split=split.to_dict(),
        metrics=metrics,
        coefficients=affine,
        reference_profile={"format": PROFILE_FORMAT, "bins": BINS,
                           "features": {c: profile_from_sketch(pooled.sketches[c], BINS)
                                        for c in DRIFT_FEATURES if c in pooled.sketches}},
        frequency=freq.Frequency(pooled.frequency).value,
        model_bytes=model_bytes,
    )
    return fit, info


def _numbers(metrics: Any) -> dict[str, float]:
    return {k: float(v) for k in ("mae", "rmse", "mape", "directional_accuracy")
            if (v := getattr(metrics, k)) is not None}
