"""Model (de)serialization in one place: skops, which never executes code on load.

Callers must verify the bytes' sha256 against the registry *before* calling :func:`loads`
(``RegistryStore.fetch_verified`` does): defence in depth on top of skops' type allow-list.
"""

from __future__ import annotations

from typing import Any

import skops.io as sio

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
    return sio.dumps(model)


def loads(data: bytes) -> Any:
    """Deserialize a model, refusing any type outside :data:`TRUSTED_TYPES`."""
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
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
