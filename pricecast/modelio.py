"""Model (de)serialization in one place: skops, which never executes code on load.

Callers must verify the bytes' sha256 against the registry *before* calling :func:`loads` or
:func:`read_linear` (``RegistryStore.fetch_verified`` does): defence in depth on top of skops'
type allow-list.

:func:`read_linear` is the model server's fast path. A pricecast model is a
``Pipeline(StandardScaler, Ridge)``, i.e. one affine map; its skops file is a zip of a JSON
schema and ``.npy`` arrays, so the map can be read with the standard library and numpy alone,
without importing scikit-learn, SciPy and skops (about 4 s of a 7 s server start on 2 cores).
Anything it does not recognise exactly goes through :func:`loads` instead.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pricecast.errors import ModelIntegrityError

# Only these types may appear in a model file; anything else is refused, never instantiated.
TRUSTED_TYPES: list[str] = [
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.linear_model._base.LinearRegression",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "builtins.str",
]


def dumps(model: Any) -> bytes:
    import skops.io as sio  # here: the model server's fast path never imports skops or sklearn

    return sio.dumps(model)


def loads(data: bytes) -> Any:
    """Deserialize a model, refusing any type outside :data:`TRUSTED_TYPES`."""
    import skops.io as sio

    try:
        # skops itself trusts every scikit-learn class; pricecast serves linear pipelines only.
        found = set(sio.get_untrusted_types(data=data)) | _object_types(data)
        untrusted = sorted(t for t in found if t not in TRUSTED_TYPES)
    except Exception as exc:  # noqa: BLE001 - any parse failure means unreadable bytes
        raise ModelIntegrityError(f"The model bytes are not a readable skops file ({exc}).",
                                  "Retrain or roll back to another version.") from exc
    if untrusted:
        raise ModelIntegrityError(
            f"The model file contains types that are not allowed: {', '.join(untrusted)}.",
            "Only sklearn linear pipelines are served; retrain with pricecast.",
        )
    try:
        return sio.loads(data, trusted=TRUSTED_TYPES)
    except Exception as exc:  # noqa: BLE001
        raise ModelIntegrityError(f"The model bytes could not be loaded ({exc}).",
                                  "Retrain or roll back to another version.") from exc


def _object_types(data: bytes) -> set[str]:
    """``module.Class`` of every object the file would instantiate (containers and scalars aside)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("__loader__") == "ObjectNode":
                found.add(f"{node.get('__module__')}.{node.get('__class__')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


# --------------------------------------------------------------------------- affine form
@dataclass(frozen=True)
class Scaling:
    """One StandardScaler's fitted state: ``(x - mean) / scale`` (either part may be absent)."""

    mean: np.ndarray | None
    scale: np.ndarray | None


@dataclass(frozen=True)
class LinearForm:
    """A linear pipeline as one affine map: ``x @ weights + intercept``."""

    weights: np.ndarray  # shape (n_features,)
    intercept: float
    feature_names: tuple[str, ...]  # what the model was fitted on; () when unknown


def fold(scalings: Sequence[Scaling], coef: Any, intercept: Any, feature_names: Sequence[str] = ()) -> LinearForm:
    """Scalers followed by a linear model, folded into one affine map.

    ``((x - mean) / scale) @ coef + b == x @ (coef / scale) + (b - (mean / scale) @ coef)``.

    Raises:
        ModelIntegrityError: ``coef`` is not a single output's coefficients.
    """
    if np.ndim(coef) not in (1, 2) or (np.ndim(coef) == 2 and np.shape(coef)[0] != 1):
        raise ModelIntegrityError("The model's last step is not a fitted single-output linear model.",
                                  "Serve a Pipeline(StandardScaler, Ridge) trained by pricecast.")
    weights = np.asarray(coef, dtype=np.float64).ravel().copy()
    b = float(np.ravel(intercept)[0]) if np.size(intercept) else 0.0
    for scaling in reversed(scalings):
        if scaling.scale is not None:
            weights = weights / np.asarray(scaling.scale, dtype=np.float64)
        if scaling.mean is not None:
            b -= float(np.asarray(scaling.mean, dtype=np.float64) @ weights)
    return LinearForm(weights, b, tuple(str(f) for f in feature_names))


_SCALER = ("sklearn.preprocessing._data", "StandardScaler")
_LINEAR = {("sklearn.linear_model._ridge", "Ridge"), ("sklearn.linear_model._base", "LinearRegression")}


def read_linear(data: bytes) -> LinearForm | None:
    """The affine map of a skops ``Pipeline(StandardScaler..., Ridge|LinearRegression)``.

    Reads the file's schema and arrays (``allow_pickle=False``) without importing sklearn or
    skops. Returns None for any other content or layout, so the caller falls back to
    :func:`loads` and its allow-list.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
            if schema.get("protocol") != 2:
                return None
            if _class(schema) == ("sklearn.pipeline", "Pipeline"):
                steps = [_step(node) for node in _attrs(schema)["steps"]["content"]]
            else:
                steps = [schema]  # a bare linear model
            *scalers, final = steps
            if any(_class(s) != _SCALER for s in scalers) or _class(final) not in _LINEAR:
                return None
            scalings = []
            for scaler in scalers:
                attrs = _attrs(scaler)
                with_mean = _json(attrs.get("with_mean", {"content": "true", "__loader__": "JsonNode"}))
                scalings.append(Scaling(_array(archive, attrs.get("mean_")) if with_mean else None,
                                        _array(archive, attrs.get("scale_"))))
            linear = _attrs(final)
            names = _attrs(scalers[0] if scalers else final).get("feature_names_in_")
            feature_names = [_json(n) for n in names["content"]] if names and names.get("type") == "json" else []
            coef = _array(archive, linear["coef_"])
            if coef is None:
                return None
            intercept = _array(archive, linear["intercept_"]) if "intercept_" in linear else None
            return fold(scalings, coef, 0.0 if intercept is None else intercept, feature_names)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, zipfile.BadZipFile, ModelIntegrityError):
        return None


def _class(node: dict[str, Any]) -> tuple[str, str]:
    return node.get("__module__", ""), node.get("__class__", "")


def _attrs(node: dict[str, Any]) -> dict[str, Any]:
    """An ObjectNode's attribute nodes (its state is a DictNode)."""
    if node.get("__loader__") != "ObjectNode" or node["content"].get("__loader__") != "DictNode":
        raise ValueError("not an object node")
    return node["content"]["content"]


def _step(node: dict[str, Any]) -> dict[str, Any]:
    """The estimator of one ``(name, estimator)`` pipeline step."""
    if node.get("__loader__") != "TupleNode" or len(node["content"]) != 2:
        raise ValueError("not a pipeline step")
    return node["content"][1]


def _json(node: dict[str, Any]) -> Any:
    if node.get("__loader__") != "JsonNode":
        raise ValueError("not a JSON node")
    return json.loads(node["content"])


def _array(archive: zipfile.ZipFile, node: dict[str, Any] | None) -> np.ndarray | None:
    """A numeric array stored as ``.npy`` in the archive (never unpickled); None for a null."""
    if node is None or (node.get("__loader__") == "JsonNode" and json.loads(node["content"]) is None):
        return None
    if node.get("__loader__") != "NdArrayNode" or node.get("type") != "numpy":
        raise ValueError("not a stored numpy array")
    array = np.load(io.BytesIO(archive.read(node["file"])), allow_pickle=False)
    if array.dtype.kind != "f":
        raise ValueError("not a float array")
    return array
