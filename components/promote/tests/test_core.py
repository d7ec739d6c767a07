"""Unit tests of the promote core on a local model store: decisions, reasons, integrity, reruns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.promote.core import candidate_version, decide, record_candidate
from pricecast import registry, storage
from pricecast.errors import ConfigError, ModelIntegrityError, RegistryError
from pricecast.registry import RegistryStore

GATE_REASON = "Candidate MAPE 1.311% is within the threshold 1.464%: promote."


def candidate(model_bytes: bytes, second: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train's model_info and report's summary for ``model_bytes``, shaped as those stages write them."""
    sha = storage.sha256_bytes(model_bytes)
    info = {
        "version": f"20260101-00000{second}-{sha[:8]}", "created_at": f"2026-01-01T00:00:0{second}+00:00",
        "sha256": sha, "data_hash": "d" * 64, "features": ["ret_lag_1", "vol_5"],
        "training_window": {"start": "2021-01-04", "end": "2023-06-30"}, "rows": 1000, "alpha": 1.0,
    }
    summary = {
        "version": info["version"], "verdict": "promote", "main_metric": "mape",
        "compared_against": None,  # the active version the gate compared with; None: a first run
        "gate": {"passed": True, "reason": GATE_REASON, "metric": "mape", "verdict": "promote"},
        "candidate": {"name": "candidate", "n": 2920, "mae": 3.243, "rmse": 4.799, "mape": 1.311,
                      "directional_accuracy": None, "n_direction": 2920},
    }
    return info, summary


@pytest.fixture
def store(tmp_path: Path) -> RegistryStore:
    return RegistryStore(f"file://{tmp_path}")


def promote_first(store: RegistryStore) -> str:
    """An active model to gate against: returns its version."""
    info, summary = candidate(b"first model", second=1)
    record_candidate(store, b"first model", info, summary, passed=True)
    return info["version"]


@pytest.mark.parametrize(("passed", "require_approval", "decision"), [
    (True, False, "promoted"), (True, True, "pending"), (False, False, "rejected"), (False, True, "rejected"),
])
def test_decide_maps_the_gate_and_the_approval_mode(passed, require_approval, decision):
    assert decide(passed, require_approval) == decision


def test_the_record_keeps_numeric_metrics_the_gate_metric_and_a_string_window():
    info, summary = candidate(b"model")
    info["training_window"] = {"start": 20210104, "end": "2023-06-30"}
    summary["gate"]["metric"] = "rmse"
    mv = candidate_version(info, summary, "promoted")
    assert mv.metrics == {"n": 2920.0, "mae": 3.243, "rmse": 4.799, "mape": 1.311, "n_direction": 2920.0}
    assert mv.main_metric == "rmse" and mv.training_window == {"start": "20210104", "end": "2023-06-30"}
    assert mv.artifact == f"models/{info['version']}/model.skops" and mv.reason == GATE_REASON


def test_a_passing_candidate_becomes_active_with_its_bytes_and_reason(store):
    info, summary = candidate(b"model bytes")
    reg = record_candidate(store, b"model bytes", info, summary, passed=True)
    version = info["version"]
    assert reg.active == version and reg.revision == 1 and store.load() == reg
    mv = reg.get(version)
    assert (mv.decision, mv.reason, mv.sha256) == ("promoted", GATE_REASON, info["sha256"])
    assert store.fetch_verified(mv) == b"model bytes"
    assert [(e.action, e.version, e.previous_active) for e in reg.events] == [("promote", version, None)]
    metadata = storage.read_bytes(store.metadata_url(version))
    assert mv.metadata_sha256 == storage.sha256_bytes(metadata) and b'"rows": 1000' in metadata
    assert b'"decision"' not in metadata  # the registry is the one record of decisions


def test_require_approval_leaves_the_candidate_pending_with_its_reason(store):
    active = promote_first(store)
    info, summary = candidate(b"second model", second=2)
    reg = record_candidate(store, b"second model", info, summary, passed=True, require_approval=True)
    mv = reg.get(info["version"])
    assert mv.decision == "pending" and reg.active == active
    assert mv.reason == f"{GATE_REASON} Waiting for `pricecast registry approve {info['version']}`."
    assert (reg.events[-1].action, reg.events[-1].previous_active) == ("register", active)
    assert registry.approve(reg, info["version"]).active == info["version"]  # what the reason tells you to run


@pytest.mark.parametrize("require_approval", [False, True])
def test_a_rejected_candidate_is_recorded_with_its_reason_and_active_stays(store, require_approval):
    active = promote_first(store)
    info, summary = candidate(b"worse model", second=2)
    summary["gate"] = {"passed": False, "reason": "Candidate MAPE 2.1% is above the threshold 1.5%: reject.",
                       "metric": "mape", "verdict": "reject"}
    reg = record_candidate(store, b"worse model", info, summary, passed=False, require_approval=require_approval)
    mv = reg.get(info["version"])
    assert (mv.decision, mv.reason) == ("rejected", "Candidate MAPE 2.1% is above the threshold 1.5%: reject.")
    assert reg.active == active and store.load().active == active
    assert (reg.events[-1].action, reg.events[-1].reason) == ("reject", mv.reason)
    assert store.fetch_verified(mv) == b"worse model"  # kept, immutable, for the record


def test_bytes_that_do_not_match_trains_sha256_are_refused_and_nothing_is_written(store, tmp_path):
    promote_first(store)
    registry_before = (tmp_path / "registry.json").read_bytes()
    info, summary = candidate(b"the bytes train hashed", second=2)
    with pytest.raises(ModelIntegrityError) as refused:
        record_candidate(store, b"other bytes", info, summary, passed=True)
    assert "differs from train's record" in refused.value.problem
    assert refused.value.fix == "Rerun the pipeline from train: `pricecast run --from train`."
    assert (tmp_path / "registry.json").read_bytes() == registry_before
    assert not (tmp_path / "models" / info["version"]).exists()


def test_promoting_the_same_candidate_twice_records_one_version_and_one_event(store, tmp_path):
    info, summary = candidate(b"model bytes")
    first = record_candidate(store, b"model bytes", info, summary, passed=True)
    document = (tmp_path / "registry.json").read_bytes()
    again = record_candidate(store, b"model bytes", info, summary, passed=True)
    assert again == first and (again.revision, len(again.versions), len(again.events)) == (1, 1, 1)
    assert (tmp_path / "registry.json").read_bytes() == document  # the no-op wrote nothing


def test_the_same_version_with_other_bytes_is_refused(store, tmp_path):
    info, summary = candidate(b"model bytes")
    record_candidate(store, b"model bytes", info, summary, passed=True)
    document = (tmp_path / "registry.json").read_bytes()
    forged = {**info, "sha256": storage.sha256_bytes(b"replaced bytes")}
    with pytest.raises(RegistryError, match="exists with different bytes"):
        record_candidate(store, b"replaced bytes", forged, summary, passed=True)
    assert (tmp_path / "registry.json").read_bytes() == document
    assert storage.read_bytes(store.model_url(info["version"])) == b"model bytes"


@pytest.mark.parametrize("key", ["sha256", "version"])
def test_model_info_without_its_identity_is_refused_by_name_and_nothing_is_written(store, tmp_path, key):
    info, summary = candidate(b"model bytes")
    del info[key]
    with pytest.raises(ModelIntegrityError) as refused:
        record_candidate(store, b"model bytes", info, summary, passed=True)
    assert key in refused.value.problem and "--from train" in refused.value.fix
    assert not (tmp_path / "registry.json").exists() and not (tmp_path / "models").exists()


def test_an_operator_rollback_during_the_run_stands_and_the_candidate_waits(store):
    first = promote_first(store)
    info, summary = candidate(b"second model", second=2)
    record_candidate(store, b"second model", info, summary | {"compared_against": first}, passed=True)
    gated_against = info["version"]  # report compares the next candidate with it...
    store.update(lambda reg: registry.rollback(reg, reason="bad model"))  # ...then an operator rolls back
    info, summary = candidate(b"third model", second=3)

    reg = record_candidate(store, b"third model", info, summary | {"compared_against": gated_against}, passed=True)

    assert reg.active == first and store.load() == reg  # the rollback was not undone
    mv = reg.get(info["version"])
    assert mv.decision == "pending" and f"compared it with {gated_against}" in mv.reason and "bad model" in mv.reason


def test_the_gate_reference_of_an_older_summary_is_its_active_version(store):
    active = promote_first(store)
    info, summary = candidate(b"second model", second=2)
    del summary["compared_against"]
    reg = record_candidate(store, b"second model", info, summary | {"active_version": active}, passed=True)
    assert reg.active == info["version"]


def test_a_summary_that_does_not_name_the_gate_reference_is_refused_and_nothing_is_written(store, tmp_path):
    info, summary = candidate(b"model bytes")
    del summary["compared_against"]
    with pytest.raises(ConfigError, match="which active model the gate compared") as refused:
        record_candidate(store, b"model bytes", info, summary, passed=True)
    assert "--from report" in refused.value.fix
    assert not (tmp_path / "registry.json").exists() and not (tmp_path / "models").exists()
