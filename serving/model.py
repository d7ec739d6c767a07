"""The served model's lifecycle: resolve in the registry, verify, deserialize, fold, predict.

Order matters for safety: the registry names a version and its sha256; the bytes are fetched and
hashed (``RegistryStore.fetch_verified``) and only bytes that match are handed to the
deserializer. Anything else leaves the server not ready, with the reason kept for ``/readyz``.

For speed the ``Pipeline(StandardScaler, Ridge)`` is one affine map, ``x @ weights + b``
(:func:`pricecast.modelio.fold`). One dot product per batch replaces sklearn's per-call validation
(tens of microseconds); a test checks that both give the same predictions. The map is read from
the verified bytes without importing scikit-learn (:func:`pricecast.modelio.read_linear`); a file
it does not recognise is deserialized by skops with its allow-list and folded the same way.
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
    """A verified model as the affine map that predicts with it."""

    version: str
    sha256: str
    trained_at: str
    features: tuple[str, ...]
    weights: np.ndarray  # shape (n_features,)
    intercept: float
    load_seconds: float
    loader: str  # "linear" (read without sklearn) or "skops" (deserialized, then folded)
    # metadata.json (train's model_info: drift profile, outlier bounds), verified like the bytes.
    metadata: dict[str, Any] | None = None

    @property
    def n_features(self) -> int:
        return len(self.features)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predicted next-day log returns for a float64 array of shape (n, n_features)."""
        return rows.dot(self.weights) + self.intercept  # ndarray.dot: a third of matmul's call overhead


def fold_linear_pipeline(estimator: Any) -> modelio.LinearForm:
    """The affine map of a deserialized sklearn pipeline: StandardScaler steps, then a linear model.

    Raises:
        ModelIntegrityError: the estimator is not StandardScaler steps ending in a linear model.
    """
    steps = [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    *scalers, final = steps
    coef = getattr(final, "coef_", None)
    if coef is None:
        raise ModelIntegrityError(
            f"The model's last step ({type(final).__name__}) is not a fitted single-output linear model.",
            "Serve a Pipeline(StandardScaler, Ridge) trained by pricecast.",
        )
    scalings = []
    for scaler in scalers:
        if type(scaler).__name__ != "StandardScaler":
            raise ModelIntegrityError(f"Unexpected pipeline step {type(scaler).__name__}.",
                                      "Serve a Pipeline(StandardScaler, Ridge) trained by pricecast.")
        mean = getattr(scaler, "mean_", None) if getattr(scaler, "with_mean", True) else None
        scalings.append(modelio.Scaling(mean, getattr(scaler, "scale_", None)))
    names = getattr(steps[0], "feature_names_in_", ())
    return modelio.fold(scalings, coef, getattr(final, "intercept_", 0.0), [str(n) for n in names])


def _feature_list(mv: ModelVersion, names_in: tuple[str, ...], n_weights: int) -> tuple[str, ...]:
    """The features in the order the model expects: the registry's list, checked against the model."""
    features = tuple(mv.features) or names_in
    if not features:
        raise ModelIntegrityError(f"Model {mv.version} has no feature list in the registry.",
                                  "Register it with its features (pricecast's train stage does).")
    if len(features) != n_weights or len(set(features)) != len(features):
        raise ModelIntegrityError(
            f"Model {mv.version} takes {n_weights} inputs but the registry lists {len(features)} "
            f"features ({', '.join(features)}).",
            "The registry entry does not describe this model; roll back and retrain.",
        )
    if names_in and names_in != features:
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
    data = store.fetch_verified(mv)  # sha256 checked here, before anything is read
    form, loader = modelio.read_linear(data), "linear"
    if form is None:
        form, loader = fold_linear_pipeline(modelio.loads(data)), "skops"
    if not np.all(np.isfinite(form.weights)) or not np.isfinite(form.intercept):
        raise ModelIntegrityError(f"Model {mv.version} has non-finite coefficients.", "Retrain it.")
    features = _feature_list(mv, form.feature_names, form.weights.size)
    metadata = store.fetch_verified_metadata(mv)  # sha256 checked like the bytes' (train's model_info)
    log.info("Loaded model %s (%s) with the %s loader.", mv.version, mv.sha256[:12], loader)
    return LoadedModel(
        version=mv.version, sha256=mv.sha256, trained_at=mv.created_at, features=features,
        weights=form.weights, intercept=form.intercept, load_seconds=time.perf_counter() - started,
        loader=loader, metadata=metadata,
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
