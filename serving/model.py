"""The served model's lifecycle: resolve in the registry, verify, deserialize, fold, predict.

Order matters for safety: the registry names a version and its sha256; the bytes are fetched and
hashed (``RegistryStore.fetch_verified``) and only bytes that match are handed to the
deserializer. Anything else leaves the server not ready, with the reason kept for ``/readyz``.

For speed the ``Pipeline(StandardScaler, Ridge)`` is folded into one affine map at load time:
``((x - mean) / scale) @ coef + b == x @ (coef / scale) + (b - (mean / scale) @ coef)``. One dot
product per batch replaces sklearn's per-call validation (tens of microseconds); a test checks
that both give the same predictions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pricecast import modelio
from pricecast.errors import (
    ModelIntegrityError,
    ModelNotFoundError,
    PricecastError,
    RegistryError,
    StorageError,
)
from pricecast.registry import ModelVersion, RegistryStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A verified, deserialized model and the affine map that predicts with it."""

    version: str
    sha256: str
    trained_at: str
    features: tuple[str, ...]
    weights: np.ndarray  # shape (n_features,)
    intercept: float
    estimator: Any  # the sklearn object itself, for metadata and equality checks
    load_seconds: float

    @property
    def n_features(self) -> int:
        return len(self.features)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predicted next-day log returns for a float64 array of shape (n, n_features)."""
        return rows.dot(self.weights) + self.intercept  # ndarray.dot: a third of matmul's call overhead


def fold_linear_pipeline(estimator: Any) -> tuple[np.ndarray, float]:
    """The ``(weights, intercept)`` of scalers followed by a linear model, as one affine map.

    Raises:
        ModelIntegrityError: the estimator is not StandardScaler steps ending in a linear model.
    """
    steps = [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    *scalers, final = steps
    coef = getattr(final, "coef_", None)
    if coef is None or np.ndim(coef) not in (1, 2) or (np.ndim(coef) == 2 and np.shape(coef)[0] != 1):
        raise ModelIntegrityError(
            f"The model's last step ({type(final).__name__}) is not a fitted single-output linear model.",
            "Serve a Pipeline(StandardScaler, Ridge) trained by pricecast.",
        )
    weights = np.asarray(coef, dtype=np.float64).ravel().copy()
    intercept = float(np.ravel(getattr(final, "intercept_", 0.0))[0])
    for scaler in reversed(scalers):
        if type(scaler).__name__ != "StandardScaler":
            raise ModelIntegrityError(f"Unexpected pipeline step {type(scaler).__name__}.",
                                      "Serve a Pipeline(StandardScaler, Ridge) trained by pricecast.")
        scale = getattr(scaler, "scale_", None)
        mean = getattr(scaler, "mean_", None)
        if scale is not None:
            weights = weights / np.asarray(scale, dtype=np.float64)
        if mean is not None and getattr(scaler, "with_mean", True):
            intercept -= float(np.asarray(mean, dtype=np.float64) @ weights)
    return weights, intercept


def _feature_list(mv: ModelVersion, estimator: Any, n_weights: int) -> tuple[str, ...]:
    """The features in the order the model expects: the registry's list, checked against the model."""
    features = tuple(mv.features) or tuple(str(f) for f in getattr(estimator, "feature_names_in_", ()))
    if not features:
        raise ModelIntegrityError(f"Model {mv.version} has no feature list in the registry.",
                                  "Register it with its features (pricecast's train stage does).")
    if len(features) != n_weights or len(set(features)) != len(features):
        raise ModelIntegrityError(
            f"Model {mv.version} takes {n_weights} inputs but the registry lists {len(features)} "
            f"features ({', '.join(features)}).",
            "The registry entry does not describe this model; roll back and retrain.",
        )
    names_in = getattr(estimator, "feature_names_in_", None)
    if names_in is not None and tuple(str(f) for f in names_in) != features:
        raise ModelIntegrityError(f"Model {mv.version} was trained on features in another order than the registry's.",
                                  "Roll back and retrain.")
    return features


def load_model(store_url: str, pin: str = "active") -> LoadedModel:
    """Resolve ``pin`` in the registry at ``store_url``, verify the bytes, and load them.

    Raises:
        ModelNotFoundError: no active model, unknown version, or missing bytes.
        ModelIntegrityError: sha256 mismatch, unreadable bytes, or an unexpected model.
        RegistryError | StorageError: the registry or store cannot be read.
    """
    started = time.perf_counter()
    store = RegistryStore(store_url)
    mv = store.load().resolve(pin)
    data = store.fetch_verified(mv)  # sha256 checked here, before anything is deserialized
    estimator = modelio.loads(data)
    weights, intercept = fold_linear_pipeline(estimator)
    if not np.all(np.isfinite(weights)) or not np.isfinite(intercept):
        raise ModelIntegrityError(f"Model {mv.version} has non-finite coefficients.", "Retrain it.")
    features = _feature_list(mv, estimator, weights.size)
    return LoadedModel(
        version=mv.version, sha256=mv.sha256, trained_at=mv.created_at, features=features,
        weights=weights, intercept=intercept, estimator=estimator,
        load_seconds=time.perf_counter() - started,
    )


def failure_reason(exc: BaseException) -> str:
    """A short, bounded label for ``pricecast_model_load_failures_total{reason}``."""
    if isinstance(exc, ModelNotFoundError):
        return "not_found"
    if isinstance(exc, ModelIntegrityError):
        return "integrity"
    if isinstance(exc, StorageError):
        return "storage"
    if isinstance(exc, RegistryError):
        return "registry"
    return "error"


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, PricecastError):
        return f"{exc.problem} {exc.fix}".strip()
    return f"{type(exc).__name__}: {exc}"
