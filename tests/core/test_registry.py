"""The registry: transitions, idempotence, rollback, integrity, concurrent writers (local)."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from pricecast import registry, storage
from pricecast.errors import (
    ConcurrentUpdateError,
    ModelIntegrityError,
    ModelNotFoundError,
    NothingToRollBackError,
    RegistryError,
    WriteOutcomeUnknownError,
)
from pricecast.registry import RegistryStore
from tests.core.support import mv, promoted


def test_register_promote_reject_pending():
    reg = registry.register(registry.Registry(), mv("v1"))
    reg = registry.register(reg, mv("v2", "rejected"))
    reg = registry.register(reg, mv("v3", "pending"))
    assert reg.active == "v1"
    assert [e.action for e in reg.events] == ["promote", "reject", "register"]
    reg = registry.approve(reg, "v3")
    assert reg.active == "v3" and reg.versions["v3"].decision == "promoted"
    with pytest.raises(RegistryError, match="only pending"):
        registry.approve(reg, "v1")


def test_register_is_idempotent_and_versions_immutable():
    reg = registry.register(registry.Registry(), mv("v1"))
    assert registry.register(reg, mv("v1")) is reg
    with pytest.raises(RegistryError, match="immutable"):
        registry.register(reg, mv("v1", sha="other"))


def test_rollback_to_previous_and_named():
    reg = registry.rollback(promoted("v1", "v2", "v3"))
    assert reg.active == "v2"
    reg = registry.rollback(reg, "v1")
    assert reg.active == "v1"
    reg = registry.register(reg, mv("v4", "rejected"))
    with pytest.raises(RegistryError, match="rejected"):
        registry.rollback(reg, "v4")
    with pytest.raises(ModelNotFoundError):
        registry.rollback(reg, "nope")


def test_repeated_rollbacks_walk_back_and_then_say_there_is_nothing_earlier():
    reg = promoted("v1", "v2", "v3")
    reg = registry.rollback(reg, reason="first")
    reg = registry.rollback(reg, reason="second")
    assert reg.active == "v1"  # the old rule toggled back to v3 here
    rollbacks = [(e.previous_active, e.version, e.reason) for e in reg.events if e.action == "rollback"]
    assert rollbacks == [("v3", "v2", "first"), ("v2", "v1", "second")]
    assert reg.rolled_away() == {"v2", "v3"}
    with pytest.raises(NothingToRollBackError) as third:
        registry.rollback(reg)
    assert third.value.problem == "There is no earlier version to roll back to: v1 was the first version made active."
    assert third.value.fix.startswith("Name the version to activate: `pricecast registry rollback --to VERSION` "
                                      "(promoted: v2, v3;")
    assert third.value.exit_code == 6


def test_rollback_skips_a_version_rolled_away_from_after_a_new_promotion():
    reg = registry.rollback(promoted("v1", "v2", "v3"))
    reg = registry.register(reg, mv("v4"))
    reg = registry.rollback(reg)
    assert reg.active == "v2"  # not v3: the first rollback left it
    assert registry.rollback(reg).active == "v1"


def test_rolling_forward_by_name_marks_nothing_and_rolling_back_undoes_it():
    # Also the event log two plain rollbacks wrote under the old toggling rule (v3 -> v2 -> v3):
    # it reads as a move forward, and rolling back from there no longer toggles.
    reg = registry.rollback(promoted("v1", "v2", "v3"))  # v3 -> v2 retreats from v3
    reg = registry.rollback(reg, "v3")  # v2 -> v3 is forward: v3 is back, v2 was not retreated from
    assert [e.version for e in reg.events] == ["v1", "v2", "v3", "v2", "v3"]
    assert reg.active == "v3" and reg.rolled_away() == set()
    reg = registry.rollback(reg)
    assert reg.active == "v2"
    assert registry.rollback(reg).active == "v1"


def test_rollback_to_an_earlier_version_skips_the_one_it_left_but_not_those_between():
    reg = registry.rollback(promoted("v1", "v2", "v3", "v4"), "v2")  # v4 -> v2
    assert reg.rolled_away() == {"v4"}
    assert registry.rollback(reg).active == "v1"
    reg = registry.rollback(reg, "v4")  # back to v4 by name
    reg = registry.rollback(reg)
    assert reg.active == "v3"  # never rolled away from, only passed over


def test_rollback_by_name_to_an_earlier_version_rolled_away_from_revives_it():
    reg = registry.rollback(promoted("v1", "v2"))  # v2 -> v1: v2 rolled away from
    reg = registry.register(reg, mv("v3"))
    reg = registry.rollback(reg, "v2")  # v3 -> v2: a retreat from v3, v2 active again
    assert reg.rolled_away() == {"v3"}
    assert registry.rollback(reg).active == "v1"


def test_an_approved_version_is_rolled_back_like_a_promoted_one():
    reg = registry.register(promoted("v1"), mv("v2", "pending"))
    reg = registry.register(reg, mv("v3", "rejected"))
    reg = registry.approve(reg, "v2")
    assert reg.activation_history() == ["v1", "v2"]
    assert registry.rollback(reg).active == "v1"


def test_the_active_version_is_never_one_rolled_away_from():
    reg = registry.Registry()
    steps = [
        lambda r: registry.register(r, mv("v1")), lambda r: registry.register(r, mv("v2")),
        lambda r: registry.register(r, mv("v3", "pending")), lambda r: registry.approve(r, "v3"),
        registry.rollback, lambda r: registry.register(r, mv("v4")), lambda r: registry.rollback(r, "v3"),
        registry.rollback, lambda r: registry.rollback(r, "v4"), registry.rollback, registry.rollback,
    ]
    for step in steps:
        reg = step(reg)
        assert reg.active in reg.activation_history() and reg.active not in reg.rolled_away()
    assert reg.active == "v1"


def test_nothing_to_roll_back_says_why_and_what_to_do():
    with pytest.raises(NothingToRollBackError) as only_one:
        registry.rollback(promoted("v1"))
    assert "v1 was the first version made active" in only_one.value.problem
    assert "--to VERSION" in only_one.value.fix and "pricecast run" in only_one.value.fix
    with pytest.raises(NothingToRollBackError, match="no active model") as none_active:
        registry.rollback(registry.register(registry.Registry(), mv("v1", "rejected")))
    assert "pricecast registry approve" in none_active.value.fix


def test_store_rollbacks_commit_one_revision_each_and_a_refused_one_writes_nothing(tmp_path):
    store = RegistryStore(f"file://{tmp_path}")
    for v in ("v1", "v2"):
        store.update(lambda r, v=v: registry.register(r, mv(v)))
    after = store.update(registry.rollback)
    assert (after.active, after.revision, len(after.events)) == ("v1", 3, 3)
    document = (tmp_path / "registry.json").read_bytes()
    with pytest.raises(NothingToRollBackError):
        store.update(registry.rollback)
    assert (tmp_path / "registry.json").read_bytes() == document


def test_store_round_trip_and_integrity(tmp_path):
    store = RegistryStore(f"file://{tmp_path}")
    data = b"model-bytes"
    m = mv("v1").model_copy(update={"sha256": storage.sha256_bytes(data)})
    store.put_model("v1", data, {"version": "v1"})
    store.update(lambda r: registry.register(r, m))
    loaded = store.load()
    assert loaded.active == "v1" and loaded.revision == 1
    assert store.fetch_verified(loaded.get("v1")) == data
    (tmp_path / "models" / "v1" / "model.skops").write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        store.fetch_verified(loaded.get("v1"))


def test_corrupt_registry_document_is_a_clear_error(tmp_path):
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(RegistryError, match="not a valid registry"):
        RegistryStore(f"file://{tmp_path}").load()


def _register_many(url: str, prefix: str, n: int) -> None:
    store = RegistryStore(url)
    for i in range(n):
        store.update(lambda r, i=i: registry.register(r, mv(f"{prefix}{i}", "rejected")))


def test_concurrent_writers_lose_no_update(tmp_path):
    url = f"file://{tmp_path}"
    procs = [mp.get_context("spawn").Process(target=_register_many, args=(url, p, 15)) for p in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    reg = RegistryStore(url).load()
    assert len(reg.versions) == 30 and reg.revision == 30 and len(reg.events) == 30


def test_after_identical_runs_the_rollback_advice_is_one_that_can_help():
    # Two runs on the same data train the same version; registering it again changes nothing.
    reg = registry.register(promoted("v1"), mv("v1"))
    with pytest.raises(NothingToRollBackError) as only_one:
        registry.rollback(reg)
    assert "new data or with other parameters" in only_one.value.fix
    assert "a rerun on the same data restores the same model and registers nothing new" in only_one.value.fix


def test_a_candidate_is_compared_with_the_active_model_unless_it_is_the_active_model():
    reg = promoted("v1", "v2")  # v2 was gated against v1
    assert reg.reference_for("v3").version == "v2"
    # Rerunning v2's data: compared with v1 again, as when it was gated, never with itself.
    assert reg.reference_for("v2").version == "v1"
    # The first model ever: gated against no model (the naive forecast), and so again on a rerun.
    assert promoted("v1").reference_for("v1") is None
    assert reg.get("v1").compared_against is None and reg.get("v2").compared_against == "v1"


def test_the_gate_reference_is_recorded_even_when_promotion_is_refused():
    rolled_back = registry.rollback(promoted("v1", "v2", "v3"))  # active: v2
    after = registry.approve(registry.register_gated(rolled_back, mv("v4"), "v3"), "v4")
    # Recorded pending (active moved), then approved: a rerun is compared with v3, what its gate saw.
    assert after.get("v4").compared_against == "v3" and after.reference_for("v4").version == "v3"


def test_versions_registered_before_compared_against_read_it_from_their_event():
    document = json.loads(promoted("v1", "v2").model_dump_json())
    for record in document["versions"].values():
        del record["compared_against"]
    reg = registry.Registry.model_validate(document)
    assert reg.get("v1").compared_against is None and reg.get("v2").compared_against == "v1"
    assert reg.reference_for("v2").version == "v1"


def test_servable_refuses_rejected_and_unknown_versions_and_lets_pending_through():
    reg = registry.register(registry.register(promoted("v1"), mv("v2", "rejected")), mv("v3", "pending"))
    assert reg.servable("v1").version == "v1" and reg.servable("v3").version == "v3"
    with pytest.raises(RegistryError, match="was rejected by the gate"):
        reg.servable("v2")
    with pytest.raises(ModelNotFoundError, match="'nope' is not in the registry"):
        reg.servable("nope")


# --------------------------------------------------------------------------- exactly once
def _conditional_write_that_lands_then(monkeypatch, failure: Exception) -> list[int]:
    """storage.compare_and_swap whose first call writes and then fails as a lost reply does."""
    real, calls = storage.compare_and_swap, []

    def lossy(url: str, data: bytes, token: str | None) -> None:
        calls.append(len(calls))
        real(url, data, token)
        if len(calls) == 1:
            raise failure

    monkeypatch.setattr(storage, "compare_and_swap", lossy)
    return calls


@pytest.mark.parametrize("failure", [
    # the client library resent the PUT after the reset: 412, which reads as a concurrent writer
    ConcurrentUpdateError("registry.json changed while we were updating it.", "Retry the operation."),
    # no answer at all
    WriteOutcomeUnknownError("The store did not answer our update of registry.json.", "Read it back."),
])
def test_a_rollback_whose_reply_was_lost_is_not_applied_twice(tmp_path, monkeypatch, failure):
    store = RegistryStore(f"file://{tmp_path}")
    for v in ("v1", "v2", "v3"):
        store.update(lambda r, v=v: registry.register(r, mv(v)))
    calls = _conditional_write_that_lands_then(monkeypatch, failure)

    after = store.update(registry.rollback)

    assert after.active == "v2"  # the old code applied it again: v3 -> v2 -> v1
    assert len(calls) == 1, "nothing was written a second time"
    assert store.load() == after and after.revision == 4
    assert [(e.previous_active, e.version) for e in after.events if e.action == "rollback"] == [("v3", "v2")]


def test_an_approval_whose_reply_was_lost_reports_success(tmp_path, monkeypatch):
    store = RegistryStore(f"file://{tmp_path}")
    store.update(lambda r: registry.register(r, mv("v1")))
    store.update(lambda r: registry.register(r, mv("v2", "pending")))
    _conditional_write_that_lands_then(monkeypatch, ConcurrentUpdateError("changed", "Retry."))

    after = store.update(lambda r: registry.approve(r, "v2"))  # the old code raised "v2 is promoted, not pending"

    assert (after.active, after.versions["v2"].decision, after.revision) == ("v2", "promoted", 3)


def test_every_event_carries_the_id_of_the_operation_that_wrote_it(tmp_path):
    store = RegistryStore(f"file://{tmp_path}")
    store.update(lambda r: registry.register(r, mv("v1")), op_id="run-1:promote")
    store.update(lambda r: registry.register(r, mv("v2")))
    after = store.update(registry.rollback, op_id="operator:rollback:1")
    ids = [e.op_id for e in after.events]
    assert ids[0] == "run-1:promote" and ids[2] == "operator:rollback:1" and len(ids[1]) == 32
    # The same operation again is recognised as done: no second rollback (which would fail here).
    assert store.update(registry.rollback, op_id="operator:rollback:1") == after


def test_a_store_that_never_answers_a_write_ends_in_the_unknown_outcome_error(tmp_path, monkeypatch):
    store = RegistryStore(f"file://{tmp_path}", max_attempts=3)

    def silent(url, data, token):
        raise WriteOutcomeUnknownError("The store did not answer our update.", "Read it back.")

    monkeypatch.setattr(storage, "compare_and_swap", silent)
    with pytest.raises(WriteOutcomeUnknownError):
        store.update(lambda r: registry.register(r, mv("v1")))
    assert store.load().revision == 0


# --------------------------------------------------------------------------- the gate as a precondition
def test_promotion_moves_active_only_from_the_version_the_gate_compared_with():
    reg = promoted("v1", "v2", "v3")
    assert registry.register_gated(reg, mv("v4"), "v3").active == "v4"

    rolled_back = registry.rollback(reg, reason="accuracy alert")  # an operator, during the run
    after = registry.register_gated(rolled_back, mv("v4"), "v3")
    assert after.active == "v2"
    v4 = after.get("v4")
    assert v4.decision == "pending" and after.events[-1].action == "register"
    assert "the gate compared it with v3, but the active model is now v2 (rollback at" in v4.reason
    assert "accuracy alert" in v4.reason and "`pricecast registry approve v4`" in v4.reason


def test_two_runs_gated_against_the_same_model_cannot_both_promote():
    reg = promoted("v1")
    first = registry.register_gated(reg, mv("v2"), "v1")
    second = registry.register_gated(first, mv("v3"), "v1")  # never compared with v2
    assert first.active == second.active == "v2"
    assert second.get("v3").decision == "pending" and "compared it with v1" in second.get("v3").reason


def test_a_first_run_gated_against_the_naive_forecast_needs_an_empty_registry():
    assert registry.register_gated(registry.Registry(), mv("v1"), None).active == "v1"
    other_run_won = registry.register_gated(promoted("v0"), mv("v1"), None)
    assert other_run_won.active == "v0" and "no active model (the naive forecast)" in other_run_won.get("v1").reason


def test_rejections_and_reruns_are_recorded_whatever_the_active_model():
    reg = promoted("v1", "v2")
    assert registry.register_gated(reg, mv("v3", "rejected"), "v1").get("v3").decision == "rejected"
    assert registry.register_gated(reg, mv("v2"), "v1") is reg  # a rerun of a recorded version changes nothing


# --------------------------------------------------------------------------- metadata.json
def test_metadata_is_written_once_and_its_hash_is_what_the_registry_records(tmp_path):
    store = RegistryStore(f"file://{tmp_path}")
    first = store.put_model("v1", b"model", {"features": ["a"], "run": 1})
    metadata = tmp_path / "models" / "v1" / "metadata.json"
    written = metadata.read_bytes()
    again = store.put_model("v1", b"model", {"features": ["a"], "run": 2})  # a rerun: the old code rewrote it
    assert metadata.read_bytes() == written and '"run": 1' in written.decode()
    assert first == again and first.metadata_sha256 == storage.sha256_bytes(written)
    assert first.sha256 == storage.sha256_bytes(b"model") and first.artifact == "models/v1/model.skops"


def test_metadata_is_verified_on_load_like_the_model_bytes(tmp_path):
    store = RegistryStore(f"file://{tmp_path}")
    stored = store.put_model("v1", b"model", {"features": ["a"]})
    record = mv("v1").model_copy(update={"sha256": stored.sha256, "metadata_sha256": stored.metadata_sha256})
    assert store.fetch_verified_metadata(record) == {"features": ["a"]}

    (tmp_path / "models" / "v1" / "metadata.json").write_text('{"features": ["b"]}')
    with pytest.raises(ModelIntegrityError, match="refusing to use it") as tampered:
        store.fetch_verified_metadata(record)
    assert "roll back" in tampered.value.fix
    (tmp_path / "models" / "v1" / "metadata.json").unlink()
    with pytest.raises(ModelIntegrityError, match="is missing"):
        store.fetch_verified_metadata(record)
    # A version registered before the hash was recorded is read as before, unverified.
    assert store.fetch_verified_metadata(record.model_copy(update={"metadata_sha256": ""})) is None
