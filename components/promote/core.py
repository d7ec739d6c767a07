"""The promotion gate's last step: record the candidate in the registry with its decision.

The gate itself (is the candidate within ``max_degradation`` of the active model?) is decided by
the report stage; the pipeline runs this stage under ``dsl.If(verdict == 'promote')`` to promote
(or, with ``require_approval``, to mark the version ``pending``) and under ``dsl.Else`` to record
the rejection. Either way the model bytes are stored, immutable, under ``models/<version>/``.

The gate's verdict holds only against the model it was computed against: report's summary names
it (``compared_against``), and promotion moves ``active`` only if it is still that model
(:func:`pricecast.registry.register_gated`, inside the registry's compare-and-swap). Otherwise
the candidate is recorded ``pending`` with the reason.
"""

from __future__ import annotations

from typing import Any

from pricecast import registry, storage
from pricecast.errors import ConfigError, ModelIntegrityError
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


def compared_against(summary: dict[str, Any]) -> str | None:
    """The active version the gate compared the candidate with (None: none was active, naive was).

    Raises:
        ConfigError: a summary that does not say (written by an older report stage).
    """
    for key in ("compared_against", "active_version"):  # active_version: summaries before the key
        if key in summary:
            return summary[key] or None
    raise ConfigError(
        "report's summary does not say which active model the gate compared the candidate with.",
        "Rerun the pipeline from report (`pricecast run --from report`) so the summary records it.",
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

    A passing candidate becomes active only if the active model is still the one the gate
    compared it with; else it is recorded ``pending`` with the reason.
    Idempotent: rerunning with the same model changes nothing (same version, same bytes).
    """
    decision = decide(passed, require_approval)
    mv = candidate_version(info, summary, decision)
    reference = compared_against(summary)
    actual = storage.sha256_bytes(model_bytes)
    if actual != mv.sha256:
        raise ModelIntegrityError(
            f"The model artifact's sha256 {actual[:12]}… differs from train's record {mv.sha256[:12]}….",
            "Rerun the pipeline from train: `pricecast run --from train`.",
        )
    # The decision lives in the registry only: it can still change (see register_gated).
    stored = store.put_model(mv.version, model_bytes, info)
    mv = mv.model_copy(update={"metadata_sha256": stored.metadata_sha256})
    return store.update(lambda reg: registry.register_gated(reg, mv, reference))
