"""Moments: of, pool (Chan et al.), raw sums, and an exact JSON round trip.

The fit they give is checked against scikit-learn in components/train/tests/test_fit_from_moments.py,
where the train stage's own model is importable.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricecast.moments import Moments


def _rows(n: int = 2_000, p: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, p)) * [1.0, 0.01, 1e-6, 3.0] + [0.0, 1e4, 1.0, -5.0]
    y = x @ [0.5, 20.0, 1e5, -0.1] + rng.normal(0, 0.1, n) + 1e3
    return x, y


def _splits(n: int, parts: int, rng: np.random.Generator) -> list[slice]:
    cuts = np.sort(rng.choice(np.arange(1, n), parts - 1, replace=False))
    bounds = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _close(a: Moments, b: Moments, rel: float) -> None:
    assert a.n == b.n
    for name in ("mean_x", "cxx", "cxy"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rel, atol=0,
                                   err_msg=name)
    assert a.mean_y == pytest.approx(b.mean_y, rel=rel) and a.cyy == pytest.approx(b.cyy, rel=rel)


def test_moments_of_rows_are_means_and_centered_scatter() -> None:
    x, y = _rows(50)
    m = Moments.of(x, y)
    dx, dy = x - x.mean(axis=0), y - y.mean()
    assert m.n == 50 and m.p == 4
    exact = np.array([math.fsum(column) / 50 for column in x.T])
    np.testing.assert_allclose(m.mean_x, exact, rtol=1e-15, atol=1e-15 * x.std(axis=0).max())
    np.testing.assert_allclose(m.cxx, dx.T @ dx, rtol=1e-13)
    np.testing.assert_allclose(m.cxy, dx.T @ dy, rtol=1e-13)
    assert m.cyy == pytest.approx(dy @ dy, rel=1e-13)


@pytest.mark.parametrize("parts", [1, 2, 3, 7, 16])
def test_pooled_shards_equal_the_moments_of_all_rows(parts: int) -> None:
    x, y = _rows()
    rng = np.random.default_rng(parts)
    pooled = Moments.pool([Moments.of(x[s], y[s]) for s in _splits(len(y), parts, rng)])
    # Feature 1 has mean 1e4 and spread 1e-2: raw sums would lose its variance entirely.
    _close(pooled, Moments.of(x, y), rel=1e-9)


def test_means_are_exact_beyond_their_last_digit_for_large_levels() -> None:
    # Mean 1e4, spread 1e-2: float64 holds the mean to 2e-12, a part in 1e10 of the spread; the
    # low part keeps the rest, so the difference of two shards' means is exact and pooling
    # adds no error to the scatter (the term Chan's update adds is (na nb / n) δ²).
    rng = np.random.default_rng(5)
    x = 1e4 + 1e-2 * rng.normal(0, 1, (4_000, 1))
    y = rng.normal(0, 1, 4_000)
    pieces = _splits(4_000, 16, rng)
    pooled = Moments.pool([Moments.of(x[s], y[s]) for s in pieces])
    exact_mean = math.fsum(x[:, 0]) / 4_000
    assert pooled.mean_x[0] == pytest.approx(exact_mean, rel=2**-52)
    deviations = x[:, 0] - exact_mean  # exact: every value lies within a factor 2 of the mean
    assert pooled.cxx[0, 0] == pytest.approx(math.fsum(deviations * deviations), rel=1e-13)


def test_empty_parts_are_the_identity_and_no_part_is_an_error() -> None:
    x, y = _rows(30)
    whole = Moments.of(x, y)
    empty = Moments.of(x[:0], y[:0])
    assert empty.n == 0 and empty.p == 4
    assert Moments.pool([empty, whole, empty]) == whole
    with pytest.raises(ValueError, match="at least one part"):
        Moments.pool([])
    with pytest.raises(ValueError, match="different feature counts"):
        Moments.pool([whole, Moments.of(x[:, :2], y)])


def test_raw_sums_follow_from_the_centered_form() -> None:
    x, y = _rows(200)
    sums = Moments.of(x[:, [0, 3]], y).raw_sums()  # features of moderate means: raw sums are accurate
    xs = x[:, [0, 3]]
    assert sums["count"] == 200
    np.testing.assert_allclose(sums["sum_x"], xs.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sums["sum_xx"], xs.T @ xs, rtol=1e-12)
    np.testing.assert_allclose(sums["sum_xy"], xs.T @ y, rtol=1e-12)
    assert sums["sum_y"] == pytest.approx(y.sum(), rel=1e-12)
    assert sums["sum_yy"] == pytest.approx(y @ y, rel=1e-12)


def test_json_round_trip_is_exact() -> None:
    x, y = _rows(100)
    m = Moments.pool([Moments.of(x[:40], y[:40]), Moments.of(x[40:], y[40:])])
    back = Moments.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m
    assert back.mean_x.dtype == np.float64 and back.cxx.shape == (4, 4)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 300),
    cuts=st.lists(st.floats(0, 1), max_size=6),
    shift=st.sampled_from([0.0, 1.0, 1e6]),
    seed=st.integers(0, 2**16),
)
def test_any_split_pools_to_the_whole(n: int, cuts: list[float], shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 3)) + shift
    y = x @ [1.0, -2.0, 0.5] + rng.normal(0, 1, n)
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    parts = [Moments.of(x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    pooled, whole = Moments.pool(parts), Moments.of(x, y)
    # Relative to each statistic's scale: a scatter entry near 0 is compared to the diagonal.
    tol = 1e-9
    scale = np.sqrt(np.outer(np.diag(whole.cxx), np.diag(whole.cxx)))
    assert pooled.n == n
    assert np.all(np.abs(pooled.cxx - whole.cxx) <= tol * scale)
    assert np.all(np.abs(pooled.cxy - whole.cxy) <= tol * np.sqrt(np.diag(whole.cxx) * whole.cyy))
    assert abs(pooled.cyy - whole.cyy) <= tol * whole.cyy
    np.testing.assert_allclose(pooled.mean_x, whole.mean_x, rtol=1e-12, atol=1e-12 * (1 + shift))
