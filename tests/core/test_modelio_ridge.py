"""``modelio.dumps_ridge`` writes the skops file skops itself writes for the fitted pipeline.

The train stage writes the model without importing scikit-learn or skops (1.3 s of its
start-up). These tests hold the hand-written layout to ``skops.io.dumps`` of the same
``Pipeline(StandardScaler, Ridge)``, node for node and array for array, so a new scikit-learn or
skops that changes the layout fails here instead of serving a different model.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from pricecast import modelio
from pricecast.moments import Moments, RidgeFit, fit_ridge


def _fit(alpha: float = 1.0, names: tuple[str, ...] = ("ret_lag_0", "vol", "level"), constant: bool = False,
         collinear: bool = False) -> RidgeFit:
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (200, len(names)))
    if constant:
        x[:, 0] = 3.5
    if collinear:
        x[:, -1] = 2 * x[:, 0]
    y = x @ np.arange(1.0, len(names) + 1) + rng.normal(0, 0.1, 200)
    return fit_ridge(Moments.of(x, y), alpha, names)


def _tree(data: bytes) -> dict[str, Any]:
    """The file's schema with every array read in place of its file name and the ids dropped
    (they only need to be unique; skops shares one id between equal constants)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                return {key: (_npy(archive.read(value)) if key == "file" else walk(value))
                        for key, value in node.items() if key != "__id__"}
            if isinstance(node, list):
                return [walk(value) for value in node]
            return node

        return walk(json.loads(archive.read("schema.json")))


def _npy(payload: bytes) -> tuple[str, tuple[int, ...], list[float]]:
    array = np.load(io.BytesIO(payload), allow_pickle=False)
    return array.dtype.str, array.shape, array.ravel().tolist()


FITS = {
    "ridge": _fit(),
    "alpha 0, collinear (svd)": _fit(0.0, collinear=True),
    "a constant feature": _fit(250.0, constant=True),
    "one feature": _fit(1e6, names=("x",)),
    "names JSON must escape": _fit(names=('quote"d', "back\\slash", "ünïcode ✓")),
}


@pytest.mark.parametrize("fit", FITS.values(), ids=FITS.keys())
def test_the_file_is_what_skops_writes_for_the_fitted_pipeline(fit: RidgeFit) -> None:
    assert _tree(modelio.dumps_ridge(fit)) == _tree(sio.dumps(fit.to_pipeline()))


@pytest.mark.parametrize("fit", FITS.values(), ids=FITS.keys())
def test_it_loads_through_skops_and_the_fast_path_as_the_same_model(fit: RidgeFit) -> None:
    data = modelio.dumps_ridge(fit)
    loaded = modelio.loads(data)  # skops, with pricecast's trusted-type check
    reference = fit.to_pipeline()
    for step in ("scale", "ridge"):
        mine, theirs = vars(loaded.named_steps[step]), vars(reference.named_steps[step])
        assert mine.keys() == theirs.keys(), step
        for name, value in theirs.items():
            assert type(mine[name]) is type(value), (step, name)
            np.testing.assert_array_equal(mine[name], value, err_msg=f"{step}.{name}")
    names = list(fit.feature_names)
    x = pd.DataFrame(np.random.default_rng(1).normal(0, 1, (50, len(names))), columns=names)
    np.testing.assert_array_equal(loaded.predict(x), reference.predict(x))
    form = modelio.read_linear(data)
    assert form is not None and form.feature_names == fit.feature_names
    np.testing.assert_allclose(x.to_numpy() @ form.weights + form.intercept, reference.predict(x),
                               rtol=1e-12, atol=1e-12)


def test_the_same_fit_gives_the_same_bytes_unlike_skops_which_stamps_ids_and_the_clock() -> None:
    # Also shows the installed scikit-learn and skops are the verified ones, so train takes the
    # fast path: skops' own output names its arrays by object id and differs call to call.
    fit = _fit()
    assert modelio.dumps_ridge(fit) == modelio.dumps_ridge(fit)
    assert sio.dumps(fit.to_pipeline()) != sio.dumps(fit.to_pipeline())


def test_unverified_library_versions_go_through_skops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(modelio.RIDGE_LAYOUT_VERIFIED, "scikit-learn", ("0.1.",))
    fit = _fit()
    data = modelio.dumps_ridge(fit)
    assert data != modelio.dumps_ridge(fit)  # skops' own, id-named output
    assert _tree(data) == _tree(sio.dumps(fit.to_pipeline()))
