"""What the report stage computes and renders: the pooled :class:`Summary` and the gate's
:class:`GateResult`. Their own module so that ``core`` (which computes them) and ``render``
(which draws them) both import them and neither imports the other."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pricecast.forecast_metrics import ForecastMetrics, WindowResult

ReferenceKind = Literal["active", "naive"]


@dataclasses.dataclass(frozen=True)
class Summary:
    """Metrics over all test windows (pooled by rows) and per window."""

    candidate: ForecastMetrics
    naive: ForecastMetrics
    active: ForecastMetrics | None
    active_version: str | None
    windows: tuple[WindowResult, ...]
    # The candidate on the active model's out-of-sample rows only; None when those are all rows.
    candidate_vs_active: ForecastMetrics | None = None

    @property
    def rows(self) -> int:
        return self.candidate.n

    @property
    def active_excluded_rows(self) -> int:
        """Test rows the active model was trained on, left out of its score."""
        return sum(w.active_excluded_rows for w in self.windows)

    @property
    def active_trained_until(self) -> str | None:
        return max((w.active_trained_until for w in self.windows if w.active_trained_until), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.to_dict(),
            "naive": self.naive.to_dict(),
            "active": self.active.to_dict() if self.active else None,
            "active_version": self.active_version,
            "windows": [w.to_dict() for w in self.windows],
            "candidate_vs_active": self.candidate_vs_active.to_dict() if self.candidate_vs_active else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return cls(
            candidate=ForecastMetrics.from_dict(data["candidate"]),
            naive=ForecastMetrics.from_dict(data["naive"]),
            active=ForecastMetrics.from_dict(data["active"]) if data.get("active") else None,
            active_version=data.get("active_version"),
            windows=tuple(WindowResult.from_dict(w) for w in data["windows"]),
            candidate_vs_active=(ForecastMetrics.from_dict(data["candidate_vs_active"])
                                 if data.get("candidate_vs_active") else None),
        )


@dataclasses.dataclass(frozen=True)
class GateResult:
    """The gate's decision and the sentence that explains it."""

    passed: bool
    reason: str
    reference_kind: ReferenceKind
    metric: str
    candidate_value: float | None
    reference_value: float | None
    threshold: float | None
    max_degradation: float

    @property
    def verdict(self) -> str:
        return "promote" if self.passed else "reject"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
