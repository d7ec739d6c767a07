"""The promotion gate's last step: record the candidate in the registry with its decision.

The gate itself (is the candidate within ``max_degradation`` of the active model?) is decided by
the report stage; the pipeline runs this stage under ``dsl.If(verdict == 'promote')`` to promote
(or, with ``require_approval``, to mark the version ``pending``) and under ``dsl.Else`` to record
the rejection. Either way the model bytes are stored, immutable, under ``models/<version>/``.
"""

from __future__ import annotations

from typing import Any

from pricecast import registry, storage
from pricecast.errors import ModelIntegrityError
from pricecast.registry import Decision, ModelVersion, RegistryStore


def decide(passed: bool, require_approval: bool) -> Decision:
    """Map the gate result and the approval mode to the registry decision."""
    if not passed:
        return "rejected"
    return "pending" if require_approval else "promoted"


def candidate_version(info: dict[str, Any], summary: dict[str, Any], decision: Decision) -> ModelVersion:
    """Build the registry record from train's model_info and report's summary."""
    missing = [key for key in ("version", "sha256") if not info.get(key)]
    if missing:
        raise ModelIntegrityError(
            f"train's model_info lacks {', '.join(missing)}: the candidate cannot be registered or verified.",
            "Rerun the pipeline from train (`pricecast run --from train`) so model_info is written whole.",
        )
    gate = summary.get("gate", {})
    reason = gate.get("reason", "")
    if decision == "pending":
        reason = f"{reason} Waiting for `pricecast registry approve {info['version']}`.".strip()
    return ModelVersion(
        version=info["version"],
        created_at=info.get("created_at") or registry.now_iso(),
        sha256=info["sha256"],
        data_hash=info.get("data_hash", ""),
        artifact=f"models/{info['version']}/{registry.MODEL_FILE}",
        features=list(info.get("features", [])),
        training_window={k: str(v) for k, v in info.get("training_window", {}).items()},
        metrics={k: float(v) for k, v in summary.get("candidate", {}).items() if isinstance(v, (int, float))},
        main_metric=gate.get("metric", summary.get("main_metric", "mape")),
        decision=decision,
        reason=reason,
    )


def record_candidate(
    store: RegistryStore,
    model_bytes: bytes,
    info: dict[str, Any],
    summary: dict[str, Any],
    passed: bool,
    require_approval: bool = False,
) -> registry.Registry:
    """Store the model (once) and register it; returns the registry after the change.

    Idempotent: rerunning with the same model changes nothing (same version, same bytes).
    """
    decision = decide(passed, require_approval)
    mv = candidate_version(info, summary, decision)
    actual = storage.sha256_bytes(model_bytes)
    if actual != mv.sha256:
        raise ModelIntegrityError(
            f"The model artifact's sha256 {actual[:12]}… differs from train's record {mv.sha256[:12]}….",
            "Rerun the pipeline from train: `pricecast run --from train`.",
        )
    store.put_model(mv.version, model_bytes, {**info, "decision": decision, "reason": mv.reason})
    return store.update(lambda reg: registry.register(reg, mv))
