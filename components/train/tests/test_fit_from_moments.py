"""The ridge fitted from pooled shard moments is the single-process ``StandardScaler + Ridge`` fit.

Issue 14's exactness test: coefficients and intercept to 1e-9 relative for one shard and for
uneven random splits into 2..16 shards, predictions equal, and the model serializes, loads and
predicts like one fitted by scikit-learn (pricecast.moments.fit_ridge, a RidgeFit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.train.core import coefficients, make_model
from pricecast import modelio
from pricecast.errors import ConfigError
from pricecast.moments import Moments, RidgeFit, fit_ridge

NAMES = ["ret_lag_0", "level", "tiny", "vol", "trend"]


def _rows(n: int = 3_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Correlated features, one with a mean 1e6 times its spread, one of spread 1e-7."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (n, 5))
    x = np.column_stack([
        0.01 * base[:, 0],
        1e4 + 1e-2 * base[:, 1],  # large mean relative to spread
        1e-7 * base[:, 2] + 3e-7,
        0.02 * np.abs(base[:, 3]) + 0.5 * 0.01 * base[:, 0],  # correlated with the first
        np.cumsum(base[:, 4]) / np.sqrt(n),
    ])
    y = x @ [0.3, 2.0, 1e4, -0.5, 0.01] + rng.normal(0, 0.02, n)
    return pd.DataFrame(x, columns=NAMES), y


def _splits(n: int, parts: int, rng: np.random.Generator) -> list[slice]:
    cuts = np.sort(rng.choice(np.arange(1, n), parts - 1, replace=False)) if parts > 1 else np.array([], int)
    bounds = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _from_shards(x: pd.DataFrame, y: np.ndarray, alpha: float, parts: int, seed: int = 0):
    array = x.to_numpy()
    shards = _splits(len(y), parts, np.random.default_rng(seed))
    return fit_ridge(Moments.pool([Moments.of(array[s], y[s]) for s in shards]), alpha, list(x.columns))


def _assert_same_fit(ours: RidgeFit, reference, rel: float = 1e-9) -> None:
    theirs = RidgeFit.from_pipeline(reference)
    a, b = coefficients(ours), coefficients(theirs)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=rel, abs=0), name
    np.testing.assert_allclose(ours.coef, theirs.coef, rtol=rel, atol=0)
    assert ours.intercept == pytest.approx(theirs.intercept, rel=rel)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1e6])
@pytest.mark.parametrize("parts", [1, 2, 3, 5, 8, 13, 16])
def test_coefficients_equal_a_single_process_fit(alpha: float, parts: int) -> None:
    x, y = _rows()
    reference = make_model(alpha).fit(x, y)
    ours = _from_shards(x, y, alpha, parts, seed=parts)
    _assert_same_fit(ours, reference)
    np.testing.assert_allclose(ours.to_pipeline().predict(x), reference.predict(x), rtol=1e-9,
                               atol=1e-12 * np.abs(y).max())


def test_a_constant_feature_gets_scale_one_as_in_scikit_learn() -> None:
    x, y = _rows(500, seed=2)
    x["level"] = 7.25  # zero variance: StandardScaler keeps scale 1
    reference = make_model(1.0).fit(x, y)
    ours = _from_shards(x, y, 1.0, 4)
    assert ours.scale[1] == 1.0 == reference.named_steps["scale"].scale_[1]
    _assert_same_fit(ours, reference)


def test_every_fitted_attribute_is_set_with_scikit_learns_types() -> None:
    x, y = _rows(300)
    reference = make_model(1.0).fit(x, y)
    ours = _from_shards(x, y, 1.0, 3).to_pipeline()
    for step in ("scale", "ridge"):
        mine, theirs = vars(ours.named_steps[step]), vars(reference.named_steps[step])
        assert mine.keys() == theirs.keys(), step
        for name, value in theirs.items():
            assert type(mine[name]) is type(value), (step, name)
            if isinstance(value, np.ndarray):
                assert mine[name].dtype == value.dtype and mine[name].shape == value.shape, (step, name)
            elif not isinstance(value, float | np.floating):
                assert mine[name] == value, (step, name)
    assert list(ours.feature_names_in_) == NAMES and ours.n_features_in_ == len(NAMES)


def test_skops_round_trip_loads_and_predicts_identically() -> None:
    x, y = _rows(400, seed=3)
    ours = _from_shards(x, y, 1.0, 5)
    data = modelio.dumps_ridge(ours)
    loaded = modelio.loads(data)  # the trusted-type check passes
    np.testing.assert_array_equal(loaded.predict(x), ours.to_pipeline().predict(x))
    assert coefficients(RidgeFit.from_pipeline(loaded)) == coefficients(ours)
    # The model server's fast path reads the same affine map.
    form = modelio.read_linear(data)
    assert form is not None and form.feature_names == tuple(NAMES)
    np.testing.assert_allclose(x.to_numpy() @ form.weights + form.intercept, loaded.predict(x), rtol=1e-12)


def test_moments_that_cannot_give_a_model_are_refused() -> None:
    x, y = _rows(50)
    moments = Moments.of(x.to_numpy(), y)
    for alpha in (-1.0, float("nan"), float("inf")):  # NaN would fit a model that predicts NaN
        with pytest.raises(ConfigError, match="alpha must be a finite number >= 0"):
            fit_ridge(moments, alpha, NAMES)
    with pytest.raises(ConfigError, match="no row"):
        fit_ridge(Moments.of(x.to_numpy()[:0], y[:0]), 1.0, NAMES)
    with pytest.raises(ConfigError, match="4 feature names for moments of 5"):
        fit_ridge(moments, 1.0, NAMES[:4])
    y[3] = np.nan
    with pytest.raises(ConfigError, match="not finite"):
        fit_ridge(Moments.of(x.to_numpy(), y), 1.0, NAMES)


def test_a_frame_with_other_columns_is_refused_like_a_fitted_model() -> None:
    x, y = _rows(100)
    ours = _from_shards(x, y, 1.0, 2).to_pipeline()
    with pytest.raises(ValueError, match="feature names"):
        ours.predict(x.rename(columns={"tiny": "other"}))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 400), parts=st.integers(1, 16), alpha=st.sampled_from([0.0, 0.1, 10.0]),
       seed=st.integers(0, 2**16))
def test_any_sharding_gives_the_single_process_coefficients(n: int, parts: int, alpha: float, seed: int) -> None:
    x, y = _rows(n, seed=seed)
    x = x.drop(columns=["tiny"])  # a 1e-7 feature on 20 rows makes alpha = 0 ill-posed, not a sharding question
    parts = min(parts, n)
    _assert_same_fit(_from_shards(x, y, alpha, parts, seed=seed), make_model(alpha).fit(x, y))
