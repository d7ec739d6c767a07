"""Registry records for the core tests: small, distinct, in creation order by their last digit."""

from __future__ import annotations

from pricecast import registry
from pricecast.registry import ModelVersion


def mv(version: str, decision: str = "promoted", sha: str = "s") -> ModelVersion:
    return ModelVersion(version=version, created_at=f"2026-01-01T00:00:0{version[-1]}", sha256=sha + version,
                        data_hash="d", artifact=f"models/{version}/model.skops", decision=decision,
                        metrics={"mape": 1.0})


def promoted(*versions: str) -> registry.Registry:
    """A registry in which each of ``versions`` was gated against the one before and promoted (the last is active)."""
    reg = registry.Registry()
    for v in versions:
        reg = registry.register_gated(reg, mv(v), reg.active)
    return reg
