"""Sketch: bins fixed by the float value (exact boundaries, 2^-8 wide), exact merges, quantiles, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricecast.errors import ConfigError
from pricecast.sketch import RELATIVE_ACCURACY, Sketch, bin_keys, bin_lower, ks_statistic

RNG = np.random.default_rng(11)
SPECIAL = np.array([0.0, -0.0, 5e-324, -5e-324, 2.0**-1022, -(2.0**-1022), 1.0, -1.0,
                    np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0)])
EXTREME = np.array([1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308])


def _values(n: int = 50_000) -> np.ndarray:
    return np.concatenate([RNG.normal(0, 0.01, n), RNG.standard_cauchy(n // 10), np.zeros(50), SPECIAL])


def test_every_value_lies_in_its_bin_and_bins_are_at_most_2_to_the_minus_8_wide() -> None:
    values = np.concatenate([_values(), EXTREME])
    keys = bin_keys(values)
    lower, upper = bin_lower(keys), bin_lower(keys + 1)
    assert np.all(lower <= values) and np.all(values < upper)
    magnitude = np.minimum(np.abs(lower), np.abs(upper))
    # Subnormal bins are absolute, not relative; the outermost bins end at +-inf.
    normal = (magnitude >= 2.0**-1022) & np.isfinite(upper - lower)
    assert np.all((upper - lower)[normal] <= RELATIVE_ACCURACY * magnitude[normal])
    assert RELATIVE_ACCURACY <= 0.005
    assert bin_keys(np.array([0.0, -0.0])).tolist() == [0, 0]


def test_comparing_with_a_boundary_is_comparing_keys() -> None:
    """v >= lower(k) exactly when key(v) >= k: counts below a boundary are exact."""
    values = _values(20_000)
    for k in bin_keys(RNG.choice(values, 200)).tolist() + [0, -1, 1]:
        boundary = bin_lower(k)
        assert np.array_equal(values >= boundary, bin_keys(values) >= k), k
    sketch = Sketch.of(values)
    assert np.array_equal(Sketch.of(np.concatenate([values, EXTREME])).count_below(bin_lower(bin_keys(EXTREME))),
                          [values.size + 2, 1, values.size + 3, 0])
    edges = bin_lower(np.unique(bin_keys(RNG.choice(values, 50))))
    assert sketch.count_below(edges).tolist() == [int((values < e).sum()) for e in edges]
    assert sketch.count_below([-np.inf, np.inf]).tolist() == [0, values.size]


def test_non_finite_values_are_ignored_and_an_empty_sketch_is_valid() -> None:
    sketch = Sketch.of([1.0, np.nan, np.inf, -np.inf, 2.0])
    assert sketch.n == 2 and sketch.mean == 1.5 and sketch.min == 1.0 and sketch.max == 2.0
    empty = Sketch.of([np.nan])
    assert empty.n == 0 and empty == Sketch.empty() and math.isnan(empty.std)
    assert Sketch.merge([empty, sketch, empty]) == sketch and Sketch.merge([]) == empty
    with pytest.raises(ValueError, match="empty"):
        empty.quantile(0.5)


@pytest.mark.parametrize("parts", [2, 3, 16])
def test_merged_shards_have_exactly_the_counts_of_all_values(parts: int) -> None:
    values = _values()
    cuts = np.sort(RNG.choice(values.size, parts - 1, replace=False))
    pieces = [Sketch.of(p) for p in np.split(RNG.permutation(values), cuts)]
    whole = Sketch.of(values)
    for order in (pieces, pieces[::-1], [pieces[i] for i in RNG.permutation(parts)]):
        merged = Sketch.merge(order)
        assert np.array_equal(merged.keys, whole.keys) and np.array_equal(merged.counts, whole.counts)
        assert (merged.n, merged.min, merged.max) == (whole.n, whole.min, whole.max)
        assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-12 * whole.std)
        assert merged.std == pytest.approx(whole.std, rel=1e-12)
    assert whole.std == pytest.approx(np.std(values, ddof=1), rel=1e-12)


def test_dense_and_sparse_counting_agree() -> None:
    """Many values over a narrow key range are counted with one bincount, few values by sorting."""
    values = RNG.normal(0, 0.01, 200_000)
    keys = bin_keys(values)
    assert int(keys.max() - keys.min()) < 4 * keys.size  # the bincount path
    many = Sketch.of(values)
    few = Sketch.merge([Sketch.of(piece) for piece in np.array_split(values, 4_000)])  # 50 each: sorted
    assert np.array_equal(many.keys, few.keys) and np.array_equal(many.counts, few.counts)
    assert np.array_equal(many.count_below(bin_lower(many.keys)), np.cumsum(np.r_[0, many.counts[:-1]]))


def test_quantiles_are_within_the_relative_accuracy() -> None:
    values = RNG.lognormal(0, 2, 200_000) * RNG.choice([-1, 1], 200_000)
    sketch = Sketch.of(values)
    qs = np.linspace(0, 1, 101)
    expected = np.quantile(values, qs, method="lower")  # the value of rank floor(q (n - 1))
    got = sketch.quantile(qs)
    assert np.all(np.abs(got - expected) <= RELATIVE_ACCURACY / 2 * np.abs(expected))
    assert sketch.quantile(0) == values.min() and sketch.quantile(1.0) == values.max()
    assert isinstance(sketch.quantile(0.5), float)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sketch.quantile(1.5)


def test_json_round_trip_is_exact_and_compact() -> None:
    sketch = Sketch.of(_values())
    text = json.dumps(sketch.to_dict())
    assert Sketch.from_dict(json.loads(text)) == sketch
    assert len(text) < 12 * sketch.keys.size  # runs of consecutive keys: mostly the counts
    assert Sketch.from_dict(json.loads(json.dumps(Sketch.empty().to_dict()))) == Sketch.empty()


def test_a_document_of_another_format_or_altered_counts_is_refused() -> None:
    document = Sketch.of([1.0, 2.0, 3.0]).to_dict()
    with pytest.raises(ConfigError, match="8-bit bins"):
        Sketch.from_dict({**document, "mantissa_bits": 7})
    with pytest.raises(ConfigError, match="n = 4"):
        Sketch.from_dict({**document, "n": 4})


def test_binned_ks_statistic_is_close_to_scipys_on_the_raw_values() -> None:
    from scipy import stats

    a, b = RNG.normal(0, 1, 100_000), RNG.normal(0.05, 1.1, 80_000)
    exact = stats.ks_2samp(a, b).statistic
    binned = ks_statistic(Sketch.of(a), Sketch.of(b))
    assert binned <= exact + 1e-12 and exact - binned < 0.002
    assert ks_statistic(Sketch.of(a), Sketch.of(a)) == 0.0
    assert math.isnan(ks_statistic(Sketch.of(a), Sketch.empty()))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=60),
       st.integers(1, 5), st.integers(0, 2**16))
def test_any_values_any_split(values: list[float], parts: int, seed: int) -> None:
    array = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, parts, array.size)
    merged = Sketch.merge([Sketch.of(array[labels == i]) for i in range(parts)])
    whole = Sketch.of(array)
    assert np.array_equal(merged.keys, whole.keys) and np.array_equal(merged.counts, whole.counts)
    finite = array[np.isfinite(array)]
    assert merged.n == finite.size
    if finite.size:
        edges = bin_lower(whole.keys)
        assert whole.count_below(edges).tolist() == [int((finite < e).sum()) for e in edges]
        assert Sketch.from_dict(json.loads(json.dumps(whole.to_dict()))) == whole
