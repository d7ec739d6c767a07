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

    @property
    def rows(self) -> int:
        return self.candidate.n

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.to_dict(),
            "naive": self.naive.to_dict(),
            "active": self.active.to_dict() if self.active else None,
            "active_version": self.active_version,
            "windows": [w.to_dict() for w in self.windows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return cls(
            candidate=ForecastMetrics.from_dict(data["candidate"]),
            naive=ForecastMetrics.from_dict(data["naive"]),
            active=ForecastMetrics.from_dict(data["active"]) if data.get("active") else None,
            active_version=data.get("active_version"),
            windows=tuple(WindowResult.from_dict(w) for w in data["windows"]),
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
