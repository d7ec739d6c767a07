"""The registry: transitions, idempotence, rollback, integrity, concurrent writers (local)."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from pricecast import registry, storage
from pricecast.errors import ModelIntegrityError, ModelNotFoundError, RegistryError
from pricecast.registry import ModelVersion, RegistryStore


def mv(version: str, decision: str = "promoted", sha: str = "s") -> ModelVersion:
    return ModelVersion(version=version, created_at=f"2026-01-01T00:00:0{version[-1]}", sha256=sha + version,
                        data_hash="d", artifact=f"models/{version}/model.skops", decision=decision,
                        metrics={"mape": 1.0})


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
    reg = registry.Registry()
    for v in ("v1", "v2", "v3"):
        reg = registry.register(reg, mv(v))
    reg = registry.rollback(reg)
    assert reg.active == "v2"
    reg = registry.rollback(reg, "v1")
    assert reg.active == "v1"
    reg = registry.register(reg, mv("v4", "rejected"))
    with pytest.raises(RegistryError, match="rejected"):
        registry.rollback(reg, "v4")
    with pytest.raises(ModelNotFoundError):
        registry.rollback(reg, "nope")


def test_rollback_without_history_says_what_to_do():
    with pytest.raises(RegistryError, match="no earlier active"):
        registry.rollback(registry.register(registry.Registry(), mv("v1")))


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
