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
from typing import TYPE_CHECKING, Any

import numpy as np

from pricecast.errors import ModelIntegrityError

if TYPE_CHECKING:
    from pricecast.moments import RidgeFit

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
    """Any scikit-learn object as skops bytes (a fitted ridge: :func:`dumps_ridge`, without skops)."""
    import skops.io as sio  # here: the model server's fast path never imports skops or sklearn

    return sio.dumps(model)


# The library versions whose skops file of Pipeline(StandardScaler, Ridge) dumps_ridge writes node
# for node (tests/core/test_modelio_ridge.py holds it to skops.io.dumps). Another scikit-learn
# may add an estimator parameter the file must carry, so any other version goes through skops.
RIDGE_LAYOUT_VERIFIED: dict[str, tuple[str, ...]] = {"scikit-learn": ("1.9.",), "skops": ("0.16.",)}
# Fixed entry times: the same fit gives the same bytes (skops stamps the wall clock).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def dumps_ridge(fit: RidgeFit) -> bytes:
    """The skops file of ``fit.to_pipeline()``, written without importing scikit-learn or skops.

    Importing them costs the train task about 1.3 s of a 2 s run at the default size, and the
    file is a JSON schema and five ``.npy`` arrays (see :func:`read_linear`). The bytes load with
    :func:`loads` (skops) and :func:`read_linear` exactly as skops' own output does; with library
    versions outside :data:`RIDGE_LAYOUT_VERIFIED` they *are* skops' own output.
    """
    versions = _installed(RIDGE_LAYOUT_VERIFIED)
    if versions is None:
        return dumps(fit.to_pipeline())
    schema = _RidgeSchema(versions["scikit-learn"])
    tree = schema.pipeline(fit)
    tree |= {"protocol": 2, "_skops_version": versions["skops"]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, payload in [*schema.files.items(), ("schema.json", json.dumps(tree, indent=2).encode())]:
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), payload)
    return buffer.getvalue()


def _installed(verified: dict[str, tuple[str, ...]]) -> dict[str, str] | None:
    """The installed versions of ``verified``'s distributions, or None if any is missing or unverified."""
    from importlib import metadata

    found = {}
    for name, prefixes in verified.items():
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
        if not found[name].startswith(prefixes):
            return None
    return found


class _RidgeSchema:
    """Builds skops protocol 2 nodes for a :class:`RidgeFit`, collecting the ``.npy`` files they name.

    Node ids only need to be unique: skops' loader shares objects that repeat an id.
    """

    def __init__(self, sklearn_version: str) -> None:
        self.files: dict[str, bytes] = {}
        self._ids = iter(range(1, 1 << 31))
        self._sklearn_version = sklearn_version

    def pipeline(self, fit: RidgeFit) -> dict[str, Any]:
        p = len(fit.feature_names)
        scaler = {
            "with_mean": self._json(True), "with_std": self._json(True), "copy": self._json(True),
            "feature_names_in_": self._node(
                "ndarray", "numpy", "NdArrayNode", content=[self._json(name) for name in fit.feature_names],
                type="json", shape=self._node("tuple", "builtins", "TupleNode", content=[self._json(p)])),
            "n_features_in_": self._json(p),
            "n_samples_seen_": self._array(np.float64(fit.n_samples)),
            "mean_": self._array(fit.mean), "var_": self._array(fit.var), "scale_": self._array(fit.scale),
        }
        ridge = {
            "alpha": self._json(float(fit.alpha)), "fit_intercept": self._json(True), "copy_X": self._json(True),
            "max_iter": self._json(None), "tol": self._json(0.0001), "solver": self._json("auto"),
            "positive": self._json(False), "random_state": self._json(None), "n_features_in_": self._json(p),
            "coef_": self._array(fit.coef), "n_iter_": self._json(None), "solver_": self._json(fit.solver),
            "intercept_": self._array(np.float64(fit.intercept)),
        }
        estimators = (("scale", self._object("StandardScaler", "sklearn.preprocessing._data", scaler)),
                      ("ridge", self._object("Ridge", "sklearn.linear_model._ridge", ridge)))
        steps = [self._node("tuple", "builtins", "TupleNode", content=[self._json(name), estimator])
                 for name, estimator in estimators]
        return self._object("Pipeline", "sklearn.pipeline", {
            "steps": self._node("list", "builtins", "ListNode", content=steps),
            "transform_input": self._json(None), "memory": self._json(None), "verbose": self._json(False),
        })

    def _node(self, cls: str, module: str, loader: str, **fields: Any) -> dict[str, Any]:
        return {"__class__": cls, "__module__": module, "__loader__": loader, **fields, "__id__": next(self._ids)}

    def _json(self, value: Any) -> dict[str, Any]:
        return self._node("str", "builtins", "JsonNode", content=json.dumps(value), is_json=True)

    def _array(self, value: np.ndarray | np.float64) -> dict[str, Any]:
        node = self._node(type(value).__name__, "numpy", "NdArrayNode", type="numpy")
        node["file"] = f"{node['__id__']}.npy"
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        self.files[node["file"]] = buffer.getvalue()
        return node

    def _object(self, cls: str, module: str, attrs: dict[str, Any]) -> dict[str, Any]:
        """An estimator: its ``__getstate__`` dict (string keys), which scikit-learn stamps with its version."""
        attrs = {**attrs, "_sklearn_version": self._json(self._sklearn_version)}
        key_types = self._node("list", "builtins", "ListNode",
                               content=[self._node("str", "builtins", "TypeNode") for _ in attrs])
        state = self._node("dict", "builtins", "DictNode", content=attrs, key_types=key_types)
        return self._node(cls, module, "ObjectNode", content=state)


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
