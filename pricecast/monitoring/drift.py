"""Drift of the model's inputs: PSI against a small reference profile, and a two-sample KS test.

Why both: PSI over the reference's deciles is an effect size with well-known thresholds (0.1
watch, 0.25 act) and needs only a profile of a few hundred bytes, so the model server can score
live inputs without the training data. The KS test's p-value shrinks with sample size: with the
thousands of rows a pipeline window holds it flags shifts too small to matter, so its breach is
reported next to PSI, while PSI alone makes the drift score. PSI has a noise floor of its own:
rolling-window features are autocorrelated, so a window needs a few thousand rows (see
components/drift/README.md).

Everything is computed from mergeable sketches (:class:`pricecast.sketch.Sketch`), never from
the rows themselves, so a reference and a window read shard by shard give the very numbers one
process would: the profile's edges are sketch-bin boundaries next to the deciles (within 0.39 %),
so its proportions and the current window's PSI are exact counts; KS compares the two binned
CDFs at every bin boundary. The DataFrame entry points (:func:`reference_profile`,
:func:`drift_report`) sketch their frames and call the sketch ones.

Measure drift on returns-based features only (lagged returns, rolling means and volatilities,
price relative to its moving average): price levels trend by nature, so a PSI on prices would
alarm on every rally without saying anything about the model's inputs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pricecast.errors import ConfigError
from pricecast.sketch import Sketch, bin_lower, ks_statistic

if TYPE_CHECKING:  # the model server imports this module for live drift; it needs no pandas
    import pandas as pd

log = logging.getLogger("pricecast.drift")

BINS = 10
# Proportion given to an empty bin: keeps ln(p/q) finite; small enough not to mask a real shift.
EPSILON = 1e-4
PROFILE_FORMAT = 1
# Key of the profile in train's model_info, hence in the model store's models/<version>/metadata.json.
PROFILE_KEY = "reference_profile"
# Rows per side the KS p-value is computed for (see ks_from_sketches).
KS_MAX_SAMPLES = 100_000
Level = Literal["ok", "warn", "alert"]


class DriftThresholds(BaseModel):
    """When a feature's drift is worth a look (warn) or an action (alert)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi_warn: float = Field(0.1, gt=0, description="PSI at which a feature is flagged for a look.")
    psi_alert: float = Field(0.25, gt=0, description="PSI at which a feature has drifted: act.")
    ks_p_value: float = Field(0.01, gt=0, lt=1, description="KS p-value below which a shift is flagged.")

    @model_validator(mode="after")
    def _ordered(self) -> DriftThresholds:
        if self.psi_warn > self.psi_alert:
            raise ValueError(f"psi_warn ({self.psi_warn}) must not exceed psi_alert ({self.psi_alert})")
        return self

    def level(self, psi_value: float) -> Level:
        """``alert``, ``warn`` or ``ok`` for one PSI value (NaN, no data, is ``ok``)."""
        if psi_value >= self.psi_alert:
            return "alert"
        return "warn" if psi_value >= self.psi_warn else "ok"


# --------------------------------------------------------------------------- profile and PSI
def _finite(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def bin_proportions(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin ``(-inf, e1), [e1, e2), ..., [e_last, inf)`` the edges cut."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def sketch_proportions(edges: Any, sketch: Sketch) -> np.ndarray:
    """:func:`bin_proportions` of a sketch's values: exact when the edges are sketch-bin boundaries
    (a profile's always are), else each value counts in the bin of its sketch bin's lower end."""
    below = sketch.count_below(np.asarray(edges, dtype=np.float64))
    return np.diff(np.concatenate([[0], below, [sketch.n]])) / max(sketch.n, 1)


def profile_from_sketch(sketch: Sketch, bins: int = BINS) -> dict[str, Any]:
    """One feature's reference: inner decile edges, bin proportions, n, mean and std.

    Each edge is the lower boundary of the sketch bin holding the value of rank ``floor(q (n-1))``
    (``q = 1/bins, ..., (bins-1)/bins``), so it lies within 0.39 % of that quantile and the
    proportions are the exact shares of the values on either side of it.

    Raises:
        ConfigError: The sketch holds fewer than 2 values.
    """
    if sketch.n < 2:
        raise ConfigError(
            f"A drift reference needs at least 2 finite values per feature, got {sketch.n}.",
            "Build the reference from the training window's feature rows.",
        )
    ranks = np.floor(np.arange(1, bins) / bins * (sketch.n - 1)).astype(np.int64)
    # Repeated quantiles (a feature with many equal values) collapse into one edge.
    edges = np.unique(bin_lower(sketch.keys[sketch.bin_of_rank(ranks)]))
    return {
        "edges": [float(e) for e in edges],
        "proportions": [float(p) for p in sketch_proportions(edges, sketch)],
        "n": int(sketch.n),
        "mean": float(sketch.mean),
        "std": float(sketch.std),
    }


def feature_profile(values: Any, bins: int = BINS) -> dict[str, Any]:
    """:func:`profile_from_sketch` of ``values`` (non-finite ones ignored)."""
    return profile_from_sketch(Sketch.of(values), bins)


def profile_from_sketches(sketches: Mapping[str, Sketch], bins: int = BINS) -> dict[str, Any]:
    """The JSON-serializable reference the model's metadata carries for live drift, from sketches.

    Returns:
        ``{"format": 1, "bins": bins, "features": {name: {edges, proportions, n, mean, std}}}``.
    """
    return {"format": PROFILE_FORMAT, "bins": bins,
            "features": {name: profile_from_sketch(sketch, bins) for name, sketch in sketches.items()}}


def sketch_columns(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, Sketch]:
    """One sketch per column of ``frame``."""
    return {c: Sketch.of(frame[c].to_numpy(dtype=np.float64, na_value=np.nan)) for c in columns}


def reference_profile(features_df: pd.DataFrame, columns: Sequence[str], bins: int = BINS) -> dict[str, Any]:
    """The JSON-serializable reference the model's metadata carries for live drift.

    Args:
        features_df: The training window's feature rows.
        columns: Returns-based feature columns to profile (never price levels).
        bins: Quantile bins per feature (deciles by default).

    Returns:
        ``{"format": 1, "bins": bins, "features": {name: {edges, proportions, n, mean, std}}}``,
        as :func:`profile_from_sketches` computes it from the columns' sketches.

    Raises:
        ConfigError: A column is missing or holds fewer than 2 finite values.
    """
    missing = [c for c in columns if c not in features_df.columns]
    if missing:
        raise ConfigError(f"The drift reference lacks feature columns: {', '.join(missing)}.",
                          "Pass the features stage's output.")
    return profile_from_sketches(sketch_columns(features_df, columns), bins)


def reference_profile_from(metadata: Mapping[str, Any] | None, version: str) -> dict[str, Any] | None:
    """The profile in a model version's metadata, or None (logged) when it has none.

    A model trained before profiles existed still serves; it only has no live drift score.
    """
    profile = (metadata or {}).get(PROFILE_KEY)
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT or not profile.get("features"):
        log.warning("No live drift for %s: its metadata has no %s (format %d).", version, PROFILE_KEY, PROFILE_FORMAT)
        return None
    return profile


def read_reference_profile(store_url: str, version: str) -> dict[str, Any] | None:
    """:func:`reference_profile_from` the metadata stored with ``version``."""
    from pricecast.registry import RegistryStore

    return reference_profile_from(RegistryStore(store_url).read_metadata(version), version)


def psi_from_proportions(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index: sum of ``(cur - ref) * ln(cur / ref)`` over the bins."""
    ref = np.maximum(reference, EPSILON)
    cur = np.maximum(current, EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi(reference_feature: Mapping[str, Any], values: Any) -> float:
    """PSI of ``values`` against one feature's profile (from :func:`profile_from_sketch`).

    Returns:
        The PSI (0 = same distribution), or NaN when ``values`` holds no finite number.
    """
    current = _finite(values)
    if current.size == 0:
        return math.nan
    edges = np.asarray(reference_feature["edges"], dtype=np.float64)
    return psi_from_proportions(np.asarray(reference_feature["proportions"]), bin_proportions(edges, current))


def psi_from_sketch(reference_feature: Mapping[str, Any], current: Sketch) -> float:
    """:func:`psi` of a sketch's values: the same number, since the profile's edges are bin boundaries."""
    if current.n == 0:
        return math.nan
    return psi_from_proportions(np.asarray(reference_feature["proportions"]),
                                sketch_proportions(reference_feature["edges"], current))


def ks_from_sketches(reference: Sketch, current: Sketch, max_samples: int = KS_MAX_SAMPLES) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test of two sketches: ``(statistic, p_value)``; NaNs when a side is empty.

    The statistic is the largest gap between the two binned CDFs over every bin boundary
    (:func:`pricecast.sketch.ks_statistic`): within the mass of one 0.39 %-wide bin of the test
    on the raw values, and the same whatever the sharding. The p-value is the asymptotic
    Kolmogorov distribution's (:func:`kolmogorov_sf`) at ``D * sqrt(n m / (n + m))``, with
    each side's size capped at ``max_samples``: with millions of rows any shift at all has
    p ~ 0, so the test keeps the sensitivity of one on 100 000 rows per side, where p < 0.01
    still needs a gap of about 0.007 between the CDFs.
    """
    statistic = ks_statistic(reference, current)
    if math.isnan(statistic):
        return math.nan, math.nan
    n, m = min(reference.n, max_samples), min(current.n, max_samples)
    return statistic, kolmogorov_sf(statistic * math.sqrt(n * m / (n + m)))


def kolmogorov_sf(x: float) -> float:
    """``P(K > x)`` for the Kolmogorov distribution: ``scipy.special.kolmogorov(x)``, to rounding.

    Two classical series, each used where it converges in a handful of terms (Kolmogorov 1933;
    the second by Jacobi's theta identity): for ``x >= 1``, ``2 Σ (-1)^(k-1) exp(-2 k² x²)``;
    below, ``1 - sqrt(2π)/x Σ exp(-(2k-1)² π² / (8 x²))``. Written out because importing SciPy
    for it cost the drift task about 0.2 s, a tenth of ``make run``'s drift stage.
    """
    if math.isnan(x):
        return math.nan
    if x <= 0:
        return 1.0
    total = 0.0
    if x >= 1:
        for k in range(1, 40):
            term = math.exp(-2.0 * k * k * x * x)
            total += term if k % 2 else -term
            if term < 1e-18 * total:
                break
        return min(1.0, 2.0 * total)
    for k in range(1, 40):
        term = math.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8.0 * x * x))
        total += term
        if term < 1e-18 * total or total == 0.0:
            break
    return max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / x * total)


def ks_test(reference_values: Any, current_values: Any, max_samples: int = KS_MAX_SAMPLES) -> tuple[float, float]:
    """:func:`ks_from_sketches` of two sets of values (non-finite ones ignored)."""
    return ks_from_sketches(Sketch.of(reference_values), Sketch.of(current_values), max_samples)


# --------------------------------------------------------------------------- report
@dataclasses.dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift between the reference and the current window."""

    feature: str
    psi: float
    ks_statistic: float
    ks_p_value: float
    level: Level
    ks_breach: bool
    n_reference: int
    n_current: int
    reference_mean: float
    current_mean: float
    reference_std: float
    current_std: float


@dataclasses.dataclass(frozen=True)
class DriftReport:
    """Per-feature drift plus the overall score (the largest PSI)."""

    features: tuple[FeatureDrift, ...]
    thresholds: DriftThresholds
    context: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def score(self) -> float:
        return max((f.psi for f in self.features if not math.isnan(f.psi)), default=0.0)

    @property
    def worst(self) -> FeatureDrift | None:
        return max(self.features, key=lambda f: -1.0 if math.isnan(f.psi) else f.psi, default=None)

    @property
    def level(self) -> Level:
        return self.thresholds.level(self.score)

    def breached(self, level: Level) -> list[FeatureDrift]:
        """Features at ``level`` (``warn`` or ``alert``)."""
        return [f for f in self.features if f.level == level]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and math.isnan(value) else value

        return {
            "score": self.score, "level": self.level, "worst_feature": self.worst.feature if self.worst else None,
            "thresholds": self.thresholds.model_dump(), "context": self.context,
            "features": [{k: clean(v) for k, v in dataclasses.asdict(f).items()} for f in self.features],
        }

    def to_markdown(self) -> str:
        """A table a person reads: one row per feature, the worst first."""
        t = self.thresholds
        lines = [
            "# Input drift report", "",
            f"**Drift score (max PSI): {self.score:.4f} — {self.level.upper()}** "
            f"(warn ≥ {t.psi_warn}, alert ≥ {t.psi_alert}; KS flagged when p < {t.ks_p_value})", "",
        ]
        lines += [f"- {k}: {v}" for k, v in self.context.items()]
        lines += ["", "| feature | PSI | level | KS stat | KS p | ref mean | cur mean | ref std | cur std |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for f in sorted(self.features, key=lambda f: -f.psi if not math.isnan(f.psi) else 0.0):
            lines.append(
                f"| {f.feature} | {f.psi:.4f} | {f.level}{' (KS)' if f.ks_breach else ''} | {f.ks_statistic:.3f} "
                f"| {f.ks_p_value:.2g} | {f.reference_mean:.3g} | {f.current_mean:.3g} "
                f"| {f.reference_std:.3g} | {f.current_std:.3g} |")
        return "\n".join(lines) + "\n"


def drift_report_from_sketches(
    reference: Mapping[str, Sketch],
    current: Mapping[str, Sketch],
    thresholds: DriftThresholds | None = None,
    context: Mapping[str, Any] | None = None,
    profile: Mapping[str, Any] | None = None,
    bins: int = BINS,
) -> DriftReport:
    """Compare the current window with the reference, feature by feature, from their sketches.

    Args:
        reference: One sketch per feature of the reference rows (the training window); its
            keys, in order, are the features compared.
        current: One sketch per feature of the current rows (the latest window).
        thresholds: PSI and KS thresholds; the standard ones by default.
        context: Facts to carry into the report (windows, row counts, model version).
        profile: The reference's profile when it is already known (train stores it with the
            model, and the model server scores live drift against it): PSI then uses exactly
            the bins the server uses. Computed from ``reference`` when omitted, when its bin
            count is not ``bins`` or when it lacks a feature.
        bins: Quantile bins of the reference for PSI.

    Raises:
        ConfigError: No features, a feature missing from ``current``, or (when the profile is
            computed) a reference feature with fewer than 2 values.
    """
    thresholds = thresholds or DriftThresholds()
    columns = list(reference)
    if not columns:
        raise ConfigError("No feature columns to compare for drift.", "Pass the returns-based feature columns.")
    missing = [c for c in columns if c not in current]
    if missing:
        raise ConfigError(f"The current data lacks feature columns: {', '.join(missing)}.",
                          "Compare two outputs of the features stage.")
    known = (profile or {}).get("features", {})
    if profile is None or profile.get("bins") != bins or any(c not in known for c in columns):
        known = profile_from_sketches(reference, bins)["features"]
    rows = []
    for column in columns:
        ref, cur = reference[column], current[column]
        value = psi_from_sketch(known[column], cur)
        ks_stat, ks_p = ks_from_sketches(ref, cur)
        rows.append(FeatureDrift(
            feature=column, psi=value, ks_statistic=ks_stat, ks_p_value=ks_p,
            level=thresholds.level(value), ks_breach=bool(ks_p < thresholds.ks_p_value),
            n_reference=ref.n, n_current=cur.n,
            reference_mean=ref.mean if ref.n else math.nan, current_mean=cur.mean if cur.n else math.nan,
            reference_std=ref.std, current_std=cur.std,
        ))
    return DriftReport(tuple(rows), thresholds, dict(context or {}))


def drift_report(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    columns: Sequence[str],
    thresholds: DriftThresholds | None = None,
    bins: int = BINS,
    context: Mapping[str, Any] | None = None,
    profile: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Compare the current window with the reference, feature by feature.

    The frames' columns are sketched and compared by :func:`drift_report_from_sketches`, so
    the same rows read in shards give the same report.

    Args:
        reference_df: Reference rows (the training window's features).
        current_df: Current rows (the latest window's features).
        columns: Returns-based features to compare.
        thresholds: PSI and KS thresholds; the standard ones by default.
        bins: Quantile bins of the reference for PSI.
        context: Facts to carry into the report (windows, row counts, model version).
        profile: The reference's profile when it is already known (see
            :func:`drift_report_from_sketches`).

    Raises:
        ConfigError: No columns, a column missing from either frame, or an empty window.
    """
    if not columns:
        raise ConfigError("No feature columns to compare for drift.", "Pass the returns-based feature columns.")
    for name, frame in (("current", current_df), ("reference", reference_df)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ConfigError(f"The {name} data lacks feature columns: {', '.join(missing)}.",
                              "Compare two outputs of the features stage.")
    if current_df.empty:
        raise ConfigError("The current window has no rows to compare.", "Widen the current window.")
    return drift_report_from_sketches(sketch_columns(reference_df, columns), sketch_columns(current_df, columns),
                                      thresholds, context, profile, bins)


# --------------------------------------------------------------------------- live (server)
class LiveDriftMonitor:
    """PSI of the last ``window`` live input rows against a stored profile, cheap on the hot path.

    :meth:`observe` copies the batch into a numpy ring buffer (one slice assignment under a
    lock); every ``every`` rows, once ``min_rows`` are in, it recomputes every feature's PSI in
    one vectorized pass and hands the scores to ``sink`` (e.g. :func:`gauge_sink`).
    """

    def __init__(self, profile: Mapping[str, Any], columns: Sequence[str], *, window: int = 1000,
                 every: int = 100, min_rows: int | None = None,
                 sink: Callable[[Mapping[str, float]], None] | None = None) -> None:
        if window < 2 or every < 1:
            raise ConfigError(f"Live drift needs window >= 2 and every >= 1 (got {window}, {every}).",
                              "Use e.g. window=1000, every=100.")
        columns = list(columns)
        features = [f for f in profile["features"] if f in columns]
        if not features:
            raise ConfigError("The drift profile shares no feature with the model's inputs.",
                              "Store the profile train computes from the model's own features.")
        self.features = tuple(features)
        self._index = np.array([columns.index(f) for f in features])
        self._edges = [np.asarray(profile["features"][f]["edges"], dtype=np.float64) for f in features]
        # Reference proportions padded to one width: a padded bin is empty on both sides, so
        # after EPSILON it adds (eps - eps) * ln(1) = 0 to the PSI.
        self._width = max(e.size for e in self._edges) + 1
        self._reference = np.zeros((len(features), self._width))
        for j, f in enumerate(features):
            ref = profile["features"][f]["proportions"]
            self._reference[j, :len(ref)] = ref
        self._reference = np.maximum(self._reference, EPSILON)
        self.window, self.every = window, every
        self.min_rows = min(window, min_rows if min_rows is not None else window // 2)
        self.sink = sink
        self.scores: dict[str, float] = {}
        self._buffer = np.empty((window, len(columns)))
        self._next = self._filled = self._since = 0
        self._lock = threading.Lock()

    def observe(self, rows: np.ndarray) -> None:
        """Append a batch of 2-D input rows in the model's column order (the predict input)."""
        n = rows.shape[0]
        if n > self.window:
            rows, n = rows[-self.window:], self.window
        with self._lock:
            end = self._next + n
            if end <= self.window:
                self._buffer[self._next:end] = rows
            else:  # wrap around the ring
                split = self.window - self._next
                self._buffer[self._next:] = rows[:split]
                self._buffer[:n - split] = rows[split:]
            self._next = end % self.window
            self._filled = min(self.window, self._filled + n)
            self._since += n
            if self._since < self.every or self._filled < self.min_rows:
                return
            self._since = 0
            try:
                scores = self.compute()
            except Exception:  # monitoring must never fail a prediction
                log.exception("Live drift computation failed; scores keep their last values.")
                return
        if self.sink is not None:
            try:
                self.sink(scores)
            except Exception:  # same: a gauge problem is not the client's
                log.exception("Publishing live drift scores failed.")

    def compute(self) -> dict[str, float]:
        """PSI of every profiled feature over the buffered rows (call under the lock or alone)."""
        data = self._buffer[:self._filled]
        codes = np.empty((len(self.features), data.shape[0]), dtype=np.int64)
        for j, edges in enumerate(self._edges):
            codes[j] = np.searchsorted(edges, data[:, self._index[j]], side="right") + j * self._width
        counts = np.bincount(codes.ravel(), minlength=codes.shape[0] * self._width)
        current = np.maximum(counts.reshape(-1, self._width) / data.shape[0], EPSILON)
        values = np.sum((current - self._reference) * np.log(current / self._reference), axis=1)
        self.scores = dict(zip(self.features, values.tolist(), strict=True))
        return self.scores


def drift_gauge(registry: Any) -> Any:
    """Create ``pricecast_drift_score{feature,model_version,track}`` in a prometheus registry."""
    from prometheus_client import Gauge  # here: the server decides when prometheus_client loads

    return Gauge("pricecast_drift_score", "PSI of recent live inputs against the model's training reference.",
                 ["feature", "model_version", "track"], multiprocess_mode="livemax", registry=registry)


def gauge_sink(gauge: Any, model_version: str, track: str) -> Callable[[Mapping[str, float]], None]:
    """A :class:`LiveDriftMonitor` sink that sets the gauge's per-feature children."""
    children: dict[str, Any] = {}

    def sink(scores: Mapping[str, float]) -> None:
        for feature, value in scores.items():
            child = children.get(feature)
            if child is None:
                child = children[feature] = gauge.labels(feature, model_version, track)
            child.set(value)

    return sink
