"""Sufficient statistics of a linear fit's rows, pooled exactly across shards, and the ridge they give.

A standardized ridge regression needs only the row count, the means of the features and the
target, and their centered scatter: ``Cxx = Σ(x - x̄)(x - x̄)ᵀ``, ``Cxy = Σ(x - x̄)(y - ȳ)``,
``Cyy = Σ(y - ȳ)²``. These are the raw sums the issue names (count, Σx, Σxxᵀ, Σxy, Σy, Σy²) in
their numerically stable form: ``Σxxᵀ = Cxx + n x̄x̄ᵀ`` and so on (:meth:`Moments.raw_sums`), but a
feature whose mean is large next to its spread loses every digit of its variance when it is
computed as ``Σx² - n x̄²``; the centered form never subtracts two large numbers.

Shards pool with the pairwise update of Chan, Golub and LeVeque ("Algorithms for computing the
sample variance", 1983): two parts' scatters add, plus a correction from the difference of their
means, ``Cxx = Ca + Cb + (na nb / n) δδᵀ``. It is exact in real arithmetic, so pooled moments equal
those of the concatenated rows up to rounding, and :func:`fit_ridge` turns them into the same
fitted ``Pipeline(StandardScaler, Ridge)`` a single process would (a :class:`RidgeFit`; see
its docstring).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pricecast.errors import ConfigError

if TYPE_CHECKING:  # scikit-learn only where a scikit-learn object is asked for
    from sklearn.pipeline import Pipeline

MOMENTS_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Moments:
    """Count, means and centered scatter of the rows ``(x, y)`` of a linear fit."""

    n: int
    mean_x: np.ndarray  # (p,)
    mean_y: float
    cxx: np.ndarray  # (p, p): Σ(x - x̄)(x - x̄)ᵀ
    cxy: np.ndarray  # (p,): Σ(x - x̄)(y - ȳ)
    cyy: float  # Σ(y - ȳ)²
    # What rounding the means to float64 left out (double-double means): with them the difference
    # of two shards' means is exact, even for a feature of mean 1e4 and spread 1e-2, whose float
    # mean alone is off by a part in 1e10 of its spread.
    mean_x_lo: np.ndarray | None = None  # (p,); zeros when omitted
    mean_y_lo: float = 0.0

    def __post_init__(self) -> None:
        if self.mean_x_lo is None:
            object.__setattr__(self, "mean_x_lo", np.zeros_like(self.mean_x))

    @property
    def p(self) -> int:
        """Number of features."""
        return int(self.mean_x.shape[0])

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, overwrite_x: bool = False) -> Moments:
        """The moments of the rows of ``x`` (n, p) and ``y`` (n,); zeros when ``n == 0``.

        Two passes (means, then scatter of the deviations): the stable way, and the one numpy's
        own ``var`` takes. ``overwrite_x`` centres a float64 ``x`` in place instead of copying
        it: a shard's feature block is tens of MB, and fresh memory is what a large stage pays
        for most.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(f"Moments.of needs x of shape (n, p) and y of shape (n,), got {x.shape} and {y.shape}")
        n, p = x.shape
        if n == 0:
            return cls(0, np.zeros(p), 0.0, np.zeros((p, p)), np.zeros(p), 0.0)
        # A correction pass: numpy sums axis 0 row after row, so a mean of 1e4 can be off by
        # far more than its last digit; the deviations' own mean (x - mean is exact for values
        # near the mean) recovers it, and the part below the last digit is kept apart.
        rough_x = x.mean(axis=0)
        if overwrite_x and x.flags.writeable:
            dx = x
            dx -= rough_x
        else:
            dx = x - rough_x
        correction_x = dx.mean(axis=0)
        dx -= correction_x
        rough_y = float(y.mean())
        dy = y - rough_y
        correction_y = float(dy.mean())
        dy -= correction_y
        mean_x, mean_x_lo = _two_sum(rough_x, correction_x)
        mean_y, mean_y_lo = _two_sum(rough_y, correction_y)
        return cls(n, mean_x, float(mean_y), dx.T @ dx, dx.T @ dy, float(dy @ dy), mean_x_lo, float(mean_y_lo))

    @classmethod
    def pool(cls, parts: Sequence[Moments]) -> Moments:
        """The moments of the union of disjoint row sets, from each set's moments.

        Pairwise, as a balanced tree: every row passes through about log2(K) updates, the
        rounding of each is relative to its own terms (Chan, Golub and LeVeque).

        Raises:
            ValueError: No part, or parts with different numbers of features.
        """
        if not parts:
            raise ValueError("Moments.pool needs at least one part")
        if len({part.p for part in parts}) > 1:
            raise ValueError(f"Moments.pool got parts with different feature counts: {sorted({q.p for q in parts})}")
        level = list(parts)
        while len(level) > 1:
            level = [cls._combine(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                     for i in range(0, len(level), 2)]
        return level[0]

    @classmethod
    def _combine(cls, a: Moments, b: Moments) -> Moments:
        if b.n == 0:
            return a
        if a.n == 0:
            return b
        n = a.n + b.n
        # The difference of the exact means: hi - hi is exact for close means (Sterbenz).
        dx = (b.mean_x - a.mean_x) + (b.mean_x_lo - a.mean_x_lo)
        dy = (b.mean_y - a.mean_y) + (b.mean_y_lo - a.mean_y_lo)
        w = a.n * b.n / n
        mean_x, mean_x_lo = _add(a.mean_x, a.mean_x_lo, dx * (b.n / n))
        mean_y, mean_y_lo = _add(a.mean_y, a.mean_y_lo, dy * (b.n / n))
        return cls(
            n=n,
            mean_x=mean_x,
            mean_y=float(mean_y),
            cxx=a.cxx + b.cxx + np.outer(dx, dx) * w,
            cxy=a.cxy + b.cxy + dx * (dy * w),
            cyy=a.cyy + b.cyy + dy * dy * w,
            mean_x_lo=mean_x_lo,
            mean_y_lo=float(mean_y_lo),
        )

    def raw_sums(self) -> dict[str, Any]:
        """The same statistics as raw sums: count, Σx, Σxxᵀ, Σxy, Σy, Σy² (not pooled this way: see the module doc)."""
        n = self.n
        return {
            "count": n,
            "sum_x": self.mean_x * n,
            "sum_xx": self.cxx + np.outer(self.mean_x, self.mean_x) * n,
            "sum_xy": self.cxy + self.mean_x * (self.mean_y * n),
            "sum_y": self.mean_y * n,
            "sum_yy": self.cyy + self.mean_y * self.mean_y * n,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; Python floats print as their shortest repr, so :meth:`from_dict` is exact."""
        return {
            "format": MOMENTS_FORMAT, "n": int(self.n),
            "mean_x": self.mean_x.tolist(), "mean_y": float(self.mean_y),
            "cxx": self.cxx.tolist(), "cxy": self.cxy.tolist(), "cyy": float(self.cyy),
            "mean_x_lo": self.mean_x_lo.tolist(), "mean_y_lo": float(self.mean_y_lo),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Moments:
        if data.get("format", MOMENTS_FORMAT) != MOMENTS_FORMAT:
            raise ConfigError(f"Moments of format {data.get('format')!r}; this version reads format {MOMENTS_FORMAT}.",
                              "Recompute the statistics with this version.")
        p = len(data["mean_x"])
        return cls(
            n=int(data["n"]),
            mean_x=np.asarray(data["mean_x"], dtype=np.float64).reshape(p),
            mean_y=float(data["mean_y"]),
            cxx=np.asarray(data["cxx"], dtype=np.float64).reshape(p, p),
            cxy=np.asarray(data["cxy"], dtype=np.float64).reshape(p),
            cyy=float(data["cyy"]),
            mean_x_lo=np.asarray(data.get("mean_x_lo", [0.0] * p), dtype=np.float64).reshape(p),
            mean_y_lo=float(data.get("mean_y_lo", 0.0)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Moments):
            return NotImplemented
        return (self.n == other.n and self.mean_y == other.mean_y and self.cyy == other.cyy
                and self.mean_y_lo == other.mean_y_lo
                and all(np.array_equal(getattr(self, f), getattr(other, f))
                        for f in ("mean_x", "cxx", "cxy", "mean_x_lo")))


def _two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """``a + b`` rounded, and the rounding error, exactly (Knuth's TwoSum; arrays or floats)."""
    total = a + b
    b_part = total - a
    return total, (a - (total - b_part)) + (b - b_part)


def _add(hi: Any, lo: Any, term: Any) -> tuple[Any, Any]:
    """The double-double ``hi + lo`` plus ``term``, renormalized so ``lo`` is below ``hi``'s last digit."""
    total, error = _two_sum(hi, term)
    return _two_sum(total, lo + error)


def _constant_features(var: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """Features StandardScaler treats as constant (scale 1): scikit-learn's
    ``_is_constant_feature``, a private helper, restated so a refactor there cannot break this."""
    eps = np.finfo(np.float64).eps
    return var <= n * eps * var + (n * mean * eps) ** 2


@dataclasses.dataclass(frozen=True)
class RidgeFit:
    """A fitted ``Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha))])`` as plain arrays.

    What the model is: the scaler's fitted state and the ridge's solution on the standardized
    features. :func:`pricecast.modelio.dumps_ridge` writes it as the skops file of
    :meth:`to_pipeline` without importing scikit-learn or skops.
    """

    feature_names: tuple[str, ...]
    n_samples: int
    alpha: float
    mean: np.ndarray  # (p,) StandardScaler.mean_
    var: np.ndarray  # (p,) StandardScaler.var_ (population variance)
    scale: np.ndarray  # (p,) StandardScaler.scale_ (1 for a constant feature)
    coef: np.ndarray  # (p,) Ridge.coef_ on the standardized features
    intercept: float  # Ridge.intercept_
    solver: str  # Ridge.solver_

    def to_pipeline(self) -> Pipeline:
        """The scikit-learn pipeline, with every fitted attribute a ``fit`` sets, of its type.

        It predicts on a DataFrame and refuses other columns, as a fitted one does.
        """
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        p = len(self.feature_names)
        scaler = StandardScaler()
        scaler.feature_names_in_ = np.asarray(self.feature_names, dtype=object)
        scaler.n_features_in_ = p
        scaler.n_samples_seen_ = np.float64(self.n_samples)  # scikit-learn 1.9 keeps it as a float64 scalar
        scaler.mean_ = self.mean.copy()
        scaler.var_ = self.var.copy()
        scaler.scale_ = self.scale.copy()

        ridge = Ridge(alpha=self.alpha)
        ridge.n_features_in_ = p  # fitted on the scaler's array output: no feature names
        ridge.coef_ = self.coef.copy()
        ridge.n_iter_ = None
        ridge.solver_ = self.solver
        ridge.intercept_ = np.float64(self.intercept)
        return Pipeline([("scale", scaler), ("ridge", ridge)])

    @classmethod
    def from_pipeline(cls, model: Pipeline) -> RidgeFit:
        """The fitted state of a scikit-learn ``Pipeline(StandardScaler, Ridge)`` (e.g. one ``fit`` made)."""
        scaler, ridge = model.named_steps["scale"], model.named_steps["ridge"]
        return cls(
            feature_names=tuple(str(name) for name in getattr(scaler, "feature_names_in_", ())),
            n_samples=int(scaler.n_samples_seen_), alpha=float(ridge.alpha),
            mean=np.asarray(scaler.mean_, dtype=np.float64), var=np.asarray(scaler.var_, dtype=np.float64),
            scale=np.asarray(scaler.scale_, dtype=np.float64), coef=np.asarray(ridge.coef_, dtype=np.float64),
            intercept=float(ridge.intercept_), solver=str(ridge.solver_),
        )


def check_alpha(alpha: float) -> None:
    """The ridge penalty is a finite number >= 0 (NaN would fit a model that predicts NaN).

    Raises:
        ConfigError: Otherwise.
    """
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ConfigError(f"alpha must be a finite number >= 0, got {alpha}.",
                          "Use e.g. 1.0 (0 = ordinary least squares).")


def fit_ridge(moments: Moments, alpha: float, feature_names: Sequence[str]) -> RidgeFit:
    """What ``Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha))]).fit(x, y)`` computes,
    from the moments of the rows alone:

    - StandardScaler: ``mean_`` = x̄, ``var_`` = diag(Cxx) / n (population variance), ``scale_`` =
      √var_, or 1 where the variance is indistinguishable from 0.
    - Ridge on the standardized ``Z = (x - x̄) / s`` with an intercept: Z is already centered, so
      ``ZᵀZ = S⁻¹ Cxx S⁻¹`` and ``Zᵀ(y - ȳ) = S⁻¹ Cxy``; the coefficients solve
      ``(ZᵀZ + αI) β = Zᵀ(y - ȳ)`` (``solver_ == "cholesky"``, scikit-learn's choice for dense
      data), falling back to least squares when that system is not positive definite (α = 0
      with collinear features), where scikit-learn falls back to its SVD solver; the intercept
      is ȳ. numpy's LAPACK does the algebra: SciPy's import alone would cost a task 0.2 s.

    Raises:
        ConfigError: ``alpha`` is negative or not finite, the moments hold no row or a non-finite value, or the
            names do not match them.
    """
    names = tuple(str(name) for name in feature_names)
    check_alpha(alpha)
    if moments.n == 0:
        raise ConfigError("The training statistics hold no row, so there is nothing to fit.",
                          "Ingest more history or lower test_fraction.")
    if len(names) != moments.p:
        raise ConfigError(f"{len(names)} feature names for moments of {moments.p} features.",
                          "Pass the names of the columns the moments were computed on, in order.")
    if not (np.isfinite(moments.cxx).all() and np.isfinite(moments.cxy).all() and math.isfinite(moments.mean_y)
            and np.isfinite(moments.mean_x).all()):
        raise ConfigError("The training statistics are not finite: a training row holds NaN or inf.",
                          "Check the features stage's output; scikit-learn refuses such rows too.")
    n = moments.n
    var = np.diagonal(moments.cxx) / n
    scale = np.sqrt(var)
    scale[_constant_features(var, moments.mean_x, n)] = 1.0

    gram = moments.cxx / np.outer(scale, scale)
    gram.flat[:: moments.p + 1] += alpha
    rhs = moments.cxy / scale
    try:
        np.linalg.cholesky(gram)  # raises unless the system is positive definite, as scipy's "pos" solve does
        solver, coef = "cholesky", np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:
        solver, coef = "svd", np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return RidgeFit(
        feature_names=names, n_samples=n, alpha=float(alpha), mean=moments.mean_x.copy(), var=var,
        scale=scale, coef=np.asarray(coef, dtype=np.float64),
        intercept=float(moments.mean_y),  # ȳ - mean(Z) β, and Z is centered
        solver=solver,
    )
