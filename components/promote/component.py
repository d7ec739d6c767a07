"""KFP wrapper of the promote stage (see core.py)."""

from kfp.dsl import Artifact, Input, Model


def promote(
    model: Input[Model],
    model_info: Input[Artifact],
    summary: Input[Artifact],
    passed: bool,
    require_approval: bool = False,
    store_url: str = "",
    force_from: str = "",
) -> str:
    """Record the candidate model in the registry and, if it passed the gate, make it active.

    Args:
        model: The trained model (skops bytes) from the train stage.
        model_info: Train's JSON record: version, sha256, data hash, features, training window.
        summary: Report's JSON summary: metrics, the gate's reason and ``compared_against``, the
            active version the gate compared with. A passing candidate becomes active only if
            that is still the active version; else it is recorded pending, with the reason.
        passed: Whether the candidate passed the gate (the pipeline's dsl.If/Else decides).
        require_approval: Mark a passing candidate `pending` until `pricecast registry approve`.
        store_url: Model store URL (file:// or s3://); empty uses PRICECAST_STORE_URL.
        force_from: Unused here (the registry write is idempotent); kept for a uniform interface.

    Returns:
        The decision recorded: promoted, pending or rejected.
    """
    import json
    from pathlib import Path

    from pricecast.stage import run_stage

    outcome: dict = {}

    def compute(ctx) -> None:
        from components.promote import core
        from pricecast.registry import RegistryStore

        info = json.loads(Path(model_info.path).read_text())
        summary_doc = json.loads(Path(summary.path).read_text())
        store = RegistryStore(store_url or None)
        reg = core.record_candidate(store, Path(model.path).read_bytes(), info, summary_doc,
                                    passed, require_approval)
        decision = reg.versions[info["version"]].decision
        outcome["decision"] = decision
        ctx.record(version=info["version"], decision=decision, active=reg.active,
                   compared_against=core.compared_against(summary_doc), registry=store.url, revision=reg.revision)

    run_stage(
        "promote",
        params={"passed": passed, "require_approval": require_approval, "force_from": force_from},
        inputs={"model": model.path, "model_info": model_info.path, "summary": summary.path},
        outputs={},
        compute=compute,
        mode="off",
        store_url=store_url or None,
    )
    return outcome["decision"]
