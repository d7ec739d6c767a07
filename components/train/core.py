"""Train: a scaled ridge regression of the next-period log return on the features.

The model is fitted on the training rows of a time-ordered split (:mod:`pricecast.time_split`,
re-exported here) and described by a :class:`TrainInfo`: what it saw, when, how well it fits,
and the sha256 of its bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pricecast import frequency as freq
from pricecast import modelio, storage
from pricecast.columns import DRIFT_FEATURES, FEATURE_COLUMNS, TARGET, feature_columns
from pricecast.errors import ConfigError
from pricecast.forecast_metrics import forecast_metrics
from pricecast.monitoring.drift import reference_profile
from pricecast.time_split import Split, Window, target_dates, time_split, train_mask, window_mask

FRAMEWORK = "sklearn"
# The features-frame columns that the split and the fit read (daily data; see training_columns).
TRAINING_COLUMNS: list[str] = ["date", "ticker", "segment", "price", TARGET, *FEATURE_COLUMNS]
__all__ = [
    "FRAMEWORK", "TRAINING_COLUMNS", "Split", "TrainInfo", "Window", "coefficients", "data_hash",
    "fit_model", "make_model", "predict_in_chunks", "target_dates", "time_split", "train_mask", "train_model",
    "training_columns", "window_mask",
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
    """Standardize the features, then ridge regression (alpha = L2 penalty)."""
    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])


def coefficients(model: Pipeline) -> dict[str, float]:
    """The ridge coefficients in the features' own units (per unit of each feature)."""
    scale, ridge = model.named_steps["scale"], model.named_steps["ridge"]
    raw = ridge.coef_ / scale.scale_
    names = list(getattr(model, "feature_names_in_", FEATURE_COLUMNS))
    return {"intercept": float(ridge.intercept_ - raw @ scale.mean_), **dict(zip(names, map(float, raw), strict=True))}


def fit_model(model: Pipeline, x: pd.DataFrame, y: np.ndarray, rows: int = 500_000) -> Pipeline:
    """``model.fit(x, y)`` for millions of rows, with the same result in less time and memory.

    ``StandardScaler.fit`` builds several full-size temporaries (NaN masks, deviations); its
    documented out-of-core path, ``partial_fit`` over slices, computes the same mean and variance
    without them. The ridge then fits the one scaled copy in place (``copy_X=False``).
    """
    scaler, ridge = model.named_steps["scale"], model.named_steps["ridge"]
    for start in range(0, len(x), rows):
        scaler.partial_fit(x.iloc[start:start + rows])
    ridge.set_params(copy_X=False).fit(scaler.transform(x), y)
    ridge.set_params(copy_X=True)  # the saved model carries the default, not our fit-time choice
    return model


def predict_in_chunks(model: Pipeline, x: pd.DataFrame, rows: int = 500_000) -> np.ndarray:
    """``model.predict(x)`` a slice at a time: the scaler's copy of millions of rows never exists at once."""
    return np.concatenate([model.predict(x.iloc[start:start + rows]) for start in range(0, len(x), rows)])


def data_hash(frame: pd.DataFrame) -> str:
    """sha256 over the columns' names and values (raw bytes of numbers and dates; strings coded).

    Column by column, so no second copy of the training rows is built just to hash them.
    """
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        digest.update(str(name).encode())
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
            values = np.ascontiguousarray(column.to_numpy())
            if values.dtype.kind == "M":
                # A unit change must not change the hash; int64 because buffers refuse datetimes.
                values = values.astype("datetime64[ns]").view(np.int64)
            digest.update(memoryview(values))
        else:  # strings: codes in order of appearance plus the distinct values
            codes, uniques = pd.factorize(column)
            digest.update(memoryview(codes.astype(np.int64)))
            digest.update("\0".join(map(str, uniques)).encode())
    return digest.hexdigest()


def train_model(
    features_df: pd.DataFrame,
    split: Split,
    alpha: float = 1.0,
    now: datetime | None = None,
    frequency: freq.Frequency | str = freq.Frequency.BUSINESS,
) -> tuple[Pipeline, TrainInfo]:
    """Fit the model on the training rows of ``split`` and describe it.

    Args:
        features_df: The features stage's output.
        split: From :func:`time_split`.
        alpha: Ridge L2 penalty (on standardized features), >= 0.
        now: Creation time (UTC) for the version string; the current time when omitted.
        frequency: The data's frequency (recorded; it picks the feature columns).

    Returns:
        The fitted pipeline and its :class:`TrainInfo`, whose ``model_bytes`` are the skops
        bytes ``sha256`` was computed from (write exactly these: skops output is not
        byte-reproducible).

    Raises:
        ConfigError: ``alpha`` is negative or no row is left to train on.
        NumericRangeError: The in-sample forecast errors overflow float64.
    """
    if alpha < 0:
        raise ConfigError(f"alpha must be >= 0, got {alpha}.", "Use e.g. 1.0 (0 = ordinary least squares).")
    mask = train_mask(features_df, split)
    if not mask.any():
        raise ConfigError("No row has a target before the first test date, so there is nothing to train on.",
                          "Ingest more history or lower test_fraction.")
    names = feature_columns(frequency)
    x = _feature_matrix(features_df, mask, names)
    target = features_df[TARGET].to_numpy()[mask]
    price = features_df["price"].to_numpy()[mask]
    model = fit_model(make_model(alpha), x, target)

    fitted = forecast_metrics("candidate", price, target, predict_in_chunks(model, x))
    naive = forecast_metrics("naive", price, target, None)
    metrics = {f"train_{k}": v for k, v in _numbers(fitted).items()}
    metrics |= {f"train_naive_{k}": v for k, v in _numbers(naive).items()}
    dates = features_df["date"].to_numpy()[mask]
    # Copy-on-write makes this assign shallow: the feature columns are hashed in place.
    hashed = data_hash(x.assign(date=dates, ticker=features_df["ticker"].array[mask], **{TARGET: target}))

    model_bytes = modelio.dumps(model)
    sha = storage.sha256_bytes(model_bytes)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    info = TrainInfo(
        version=f"{created:%Y%m%d-%H%M%S}-{sha[:8]}",
        created_at=created.isoformat(timespec="seconds"),
        sha256=sha,
        data_hash=hashed,
        features=names,
        training_window={"start": _day(dates.min()), "end": _day(dates.max())},
        rows=int(mask.sum()),
        alpha=float(alpha),
        split=split.to_dict(),
        metrics=metrics,
        coefficients=coefficients(model),
        reference_profile=reference_profile(x, DRIFT_FEATURES),
        frequency=freq.Frequency(frequency).value,
        model_bytes=model_bytes,
    )
    return model, info


def _feature_matrix(features_df: pd.DataFrame, mask: np.ndarray, names: list[str]) -> pd.DataFrame:
    """The masked feature columns as one float64 block, named so the model records its inputs.

    One row-major block rather than 14 column blocks: sklearn then turns the frame into an array
    without interleaving the columns again at every fit, transform and predict.
    """
    matrix = np.empty((int(mask.sum()), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        matrix[:, j] = features_df[name].to_numpy(dtype=np.float64)[mask]
    return pd.DataFrame(matrix, columns=names, copy=False)


def _day(value: object) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _numbers(metrics: Any) -> dict[str, float]:
    return {k: float(v) for k in ("mae", "rmse", "mape", "directional_accuracy")
            if (v := getattr(metrics, k)) is not None}
