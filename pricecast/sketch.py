"""A mergeable histogram of one feature's values, with bins fixed by the float value itself.

Why not quantiles of the data: they cannot be merged. Shards each see a part of the training
rows; the drift reference needs quantiles, PSI and KS of all of them. A histogram whose bins do
not depend on the data merges by adding counts, exactly and in any order, so K shards give the
very counts one process would.

The bins (DDSketch's idea, with the bin read off the IEEE-754 bit pattern instead of a
logarithm): a finite float64 ``v`` maps to the integer ``u`` = its bits for ``v >= 0`` and minus
the bits of ``|v|`` for ``v < 0``, which orders the floats as the reals (``-0.0`` and ``0.0``
alike); its bin key is ``u >> 44``, i.e. its sign, exponent and first 8 mantissa bits. So:

- every bin is left-closed, ``[lower(k), lower(k + 1))``, and its lower boundary is an exact
  float64: ``v >= lower(k)`` exactly when ``key(v) >= k``, with no rounding anywhere. Counts of
  values below a boundary are therefore exact, which is what PSI and the profile's edges use;
- a bin is at most 2⁻⁸ (0.39 %) of its smaller boundary wide, so :meth:`Sketch.quantile` (the
  bin's midpoint) is within 2⁻⁹ (0.2 %) relative of a value of that bin, and a boundary next to
  a value is within 0.39 % of it (:data:`RELATIVE_ACCURACY`);
- zero falls in the bin ``[0, 2⁻¹⁰²²·2⁻⁸)`` with the tiniest subnormals; negatives mirror the
  positives. Non-finite values are ignored.

A feature spanning 1e-6..1 in magnitude occupies at most 2 x 20 octaves x 256 = 10 k bins; the
sketch is sparse (occupied keys only) and stores runs of consecutive keys compactly in JSON.
Along with the bins it keeps n, min, max, the mean and the sum of squared deviations (M2, merged
with Chan's update), so the profile's mean and std need no second pass over the rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pricecast.errors import ConfigError

SKETCH_FORMAT = 1
MANTISSA_BITS = 8
SHIFT = 52 - MANTISSA_BITS
# Widest bin relative to the magnitude of its smaller boundary.
RELATIVE_ACCURACY = 2.0 ** -MANTISSA_BITS
_MAGNITUDE = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def bin_keys(values: np.ndarray) -> np.ndarray:
    """The bin key of each finite float64 in ``values`` (non-finite ones must be removed first)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    ordered = bits & _MAGNITUDE
    np.negative(ordered, out=ordered, where=bits < 0)
    ordered >>= SHIFT  # arithmetic shift: floor, for negatives too
    return ordered


def bin_lower(keys: np.ndarray | Sequence[int] | int) -> np.ndarray:
    """The exact lower boundary of each bin key (``-inf`` for the lowest bin, ``inf`` past the highest)."""
    ordered = np.asarray(keys, dtype=np.int64) << SHIFT
    magnitude = np.abs(ordered).view(np.float64)
    return np.where(ordered < 0, -magnitude, magnitude)


@dataclasses.dataclass(frozen=True, eq=False)
class Sketch:
    """Counts per occupied bin (keys ascending), plus n, mean, M2, min and max of the values."""

    keys: np.ndarray  # int64, ascending, unique
    counts: np.ndarray  # int64, > 0, same length
    n: int
    mean: float
    m2: float  # sum of squared deviations from the mean
    min: float  # inf when empty
    max: float  # -inf when empty

    # ------------------------------------------------------------------ build
    @classmethod
    def empty(cls) -> Sketch:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), 0, 0.0, 0.0, math.inf, -math.inf)

    @classmethod
    def of(cls, values: Any) -> Sketch:
        """The sketch of the finite values among ``values`` (any array-like of numbers)."""
        array = np.asarray(values, dtype=np.float64).ravel()
        finite_mask = np.isfinite(array)
        finite = array if finite_mask.all() else array[finite_mask]
        del finite_mask
        if finite.size == 0:
            return cls.empty()
        # Few full-size temporaries: on a busy machine their page faults cost more than the math.
        keys = bin_keys(finite)
        low = int(keys.min())
        if int(keys.max()) - low >= 4 * keys.size:  # few values over a wide range: sort them
            occupied, counts = np.unique(keys, return_counts=True)
        else:  # keys span at most 2^21 integers whatever the data: one bincount, no sort
            keys -= low
            dense = np.bincount(keys)
            occupied = np.flatnonzero(dense) + low
            counts = dense[occupied - low]
        with np.errstate(over="ignore"):  # values beyond 1e154: M2 (and maybe the mean) is inf
            mean = float(finite.mean())
            deviations = np.subtract(finite, mean, out=keys.view(np.float64))  # the keys' buffer is free
            m2 = float(deviations @ deviations)
        return cls(
            keys=occupied.astype(np.int64),
            counts=counts.astype(np.int64),
            n=int(finite.size),
            mean=mean,
            m2=m2,
            min=float(finite.min()),
            max=float(finite.max()),
        )

    @classmethod
    def merge(cls, parts: Sequence[Sketch]) -> Sketch:
        """One sketch of the union of the parts' values.

        Counts, n, min and max are exact and independent of the order of ``parts``; mean and M2
        pool pairwise (Chan et al.), exact up to rounding.
        """
        parts = [p for p in parts if p.n]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        # Sorting the occupied keys (thousands per part), not a dense array over their range.
        keys, where = np.unique(np.concatenate([p.keys for p in parts]), return_inverse=True)
        counts = np.zeros(keys.size, dtype=np.int64)
        np.add.at(counts, where, np.concatenate([p.counts for p in parts]))  # integer adds: exact in any order
        level: list[tuple[int, float, float]] = [(p.n, p.mean, p.m2) for p in parts]
        while len(level) > 1:
            level = [_chan(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                     for i in range(0, len(level), 2)]
        n, mean, m2 = level[0]
        return cls(
            keys=keys.astype(np.int64),
            counts=counts,
            n=n, mean=mean, m2=m2,
            min=min(p.min for p in parts),
            max=max(p.max for p in parts),
        )

    # ------------------------------------------------------------------ read
    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); NaN below 2 values."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan

    def lower_boundaries(self) -> np.ndarray:
        """The lower boundary of each occupied bin (ascending)."""
        return bin_lower(self.keys)

    def count_below(self, edges: Any) -> np.ndarray:
        """How many values are ``< edge``, for each edge (int64).

        Exact when the edge is a bin boundary (:func:`bin_lower`); for any other edge, the
        values in the bins below the edge's own bin (so off by at most that bin's count).
        """
        edges = np.asarray(edges, dtype=np.float64).ravel()
        cumulative = np.concatenate([[0], np.cumsum(self.counts)])
        result = np.empty(edges.size, dtype=np.int64)
        finite = np.isfinite(edges)
        result[~finite] = np.where(edges[~finite] > 0, self.n, 0)
        if finite.any():
            result[finite] = cumulative[np.searchsorted(self.keys, bin_keys(edges[finite]), side="left")]
        return result

    def cdf_at(self, edges: Any) -> np.ndarray:
        """The share of values ``< edge`` for each edge (see :meth:`count_below`); NaN when empty."""
        if self.n == 0:
            return np.full(np.size(edges), math.nan)
        return self.count_below(edges) / self.n

    def quantile(self, q: float | Sequence[float]) -> Any:
        """The ``q``-quantile(s) to within :data:`RELATIVE_ACCURACY` / 2 of a value in the right bin.

        The value of rank ``q (n - 1)`` lies in a bin; its midpoint is returned, clamped to the
        exact min and max (so ``quantile(0)`` and ``quantile(1)`` are exact).

        Raises:
            ValueError: The sketch is empty or ``q`` is outside [0, 1].
        """
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if self.n == 0:
            raise ValueError("An empty sketch has no quantiles")
        if np.any((qs < 0) | (qs > 1)) or not np.all(np.isfinite(qs)):
            raise ValueError(f"Quantiles must lie in [0, 1], got {q!r}")
        index = self.bin_of_rank(np.floor(qs * (self.n - 1)).astype(np.int64))
        lower, upper = bin_lower(self.keys[index]), bin_lower(self.keys[index] + 1)
        with np.errstate(over="ignore", invalid="ignore"):
            middle = lower + (upper - lower) / 2
        middle = np.where(np.isfinite(middle), middle, lower)
        values = np.clip(middle, self.min, self.max)
        values = np.where(qs == 0, self.min, np.where(qs == 1, self.max, values))
        return float(values[0]) if np.ndim(q) == 0 else values

    def bin_of_rank(self, ranks: np.ndarray) -> np.ndarray:
        """Index into :attr:`keys` of the bin holding the value of each 0-based rank in sorted order."""
        return np.searchsorted(np.cumsum(self.counts), ranks, side="right")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and exact: runs of consecutive keys as ``[first_key, [counts...]]``."""
        breaks = np.flatnonzero(np.diff(self.keys) != 1) + 1
        runs = [[int(keys[0]), counts.tolist()]
                for keys, counts in zip(np.split(self.keys, breaks), np.split(self.counts, breaks), strict=True)
                if keys.size]
        return {
            "format": SKETCH_FORMAT, "mantissa_bits": MANTISSA_BITS, "n": self.n,
            "mean": self.mean, "m2": self.m2,
            "min": self.min if self.n else None, "max": self.max if self.n else None,
            "runs": runs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sketch:
        """The sketch :meth:`to_dict` wrote.

        Raises:
            ConfigError: Another format or bin width, or counts that do not add up to n.
        """
        if data.get("format") != SKETCH_FORMAT or data.get("mantissa_bits") != MANTISSA_BITS:
            raise ConfigError(
                f"A sketch of format {data.get('format')!r} with {data.get('mantissa_bits')!r}-bit bins; this "
                f"version reads format {SKETCH_FORMAT} with {MANTISSA_BITS}-bit bins.",
                "Recompute the statistics with this version (rerun the features stage).")
        runs = data.get("runs", [])
        keys = np.concatenate([np.arange(first, first + len(counts), dtype=np.int64) for first, counts in runs]
                              or [np.empty(0, np.int64)])
        counts = np.concatenate([np.asarray(c, dtype=np.int64) for _, c in runs] or [np.empty(0, np.int64)])
        n = int(data["n"])
        if int(counts.sum()) != n or np.any(counts <= 0) or np.any(np.diff(keys) <= 0):
            raise ConfigError(f"A sketch's bins hold {int(counts.sum())} values but it says n = {n}, or its keys "
                              "are not ascending.", "Recompute the statistics; the document was altered.")
        return cls(keys=keys, counts=counts, n=n, mean=float(data["mean"]), m2=float(data["m2"]),
                   min=math.inf if data.get("min") is None else float(data["min"]),
                   max=-math.inf if data.get("max") is None else float(data["max"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return (np.array_equal(self.keys, other.keys) and np.array_equal(self.counts, other.counts)
                and (self.n, self.mean, self.m2, self.min, self.max)
                == (other.n, other.mean, other.m2, other.min, other.max))


def _chan(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    """Count, mean and M2 of two disjoint sets combined (Chan, Golub and LeVeque)."""
    (na, mean_a, m2_a), (nb, mean_b, m2_b) = a, b
    n = na + nb
    delta = mean_b - mean_a
    return n, mean_a + delta * (nb / n), m2_a + m2_b + delta * delta * (na * nb / n)


def ks_statistic(a: Sketch, b: Sketch) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of the binned values: the largest gap of the
    two empirical CDFs over every bin boundary (NaN when a side is empty).

    The CDFs are exact at the boundaries, so this is the exact statistic of the data rounded
    to the shared bins; it is at most the statistic of the raw values, and below it by no more
    than the mass of the one bin where the raw CDFs part most.
    """
    if a.n == 0 or b.n == 0:
        return math.nan
    keys = np.union1d(a.keys, b.keys)
    cdf_a = np.concatenate([[0], np.cumsum(a.counts)])[np.searchsorted(a.keys, keys, side="left")] / a.n
    cdf_b = np.concatenate([[0], np.cumsum(b.counts)])[np.searchsorted(b.keys, keys, side="left")] / b.n
    return float(np.max(np.abs(cdf_a - cdf_b)))
