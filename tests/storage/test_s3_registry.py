"""The model registry on a real SeaweedFS: conditional writes, concurrent writers, crashes."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator

import pytest

from pricecast import registry, storage
from pricecast.errors import ModelIntegrityError
from pricecast.registry import ModelVersion, RegistryStore
from pricecast.settings import get_settings
from tests.storage.flaky_proxy import FlakyProxy, flaky_proxy

pytestmark = pytest.mark.s3


def _version(name: str, payload: bytes, decision: registry.Decision = "promoted") -> ModelVersion:
    return ModelVersion(
        version=name, created_at=registry.now_iso(), sha256=storage.sha256_bytes(payload),
        data_hash="d" * 64, artifact=f"models/{name}/{registry.MODEL_FILE}",
        metrics={"mape": 0.01}, decision=decision, reason="test",
    )


class _CountConflicts(logging.Handler):
    def __init__(self, counter) -> None:
        super().__init__(logging.WARNING)
        self.counter = counter

    def emit(self, record: logging.LogRecord) -> None:
        if "changed concurrently" in record.getMessage():
            with self.counter.get_lock():
                self.counter.value += 1


def _register_many(env: dict[str, str], store_url: str, writer: str, count: int,
                   start=None, conflicts=None) -> None:
    """One writer process: register ``count`` versions, slowly enough that writers interleave."""
    os.environ.update(env)
    if conflicts is not None:
        logging.getLogger("pricecast.registry").addHandler(_CountConflicts(conflicts))
    store = RegistryStore(store_url)
    store.load()  # imports done and the S3 client warm before the start line
    if start is not None:
        start.wait(timeout=60)

    def slow_register(reg: registry.Registry, mv: ModelVersion) -> registry.Registry:
        time.sleep(0.05)  # widen the read-modify-write window: conflicts must happen
        return registry.register(reg, mv)

    for i in range(count):
        mv = _version(f"{writer}-{i:02d}", f"{writer}{i}".encode())
        store.update(lambda reg, mv=mv: slow_register(reg, mv))


_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter, like a second pipeline run


def _spawn(target, *args) -> multiprocessing.Process:
    proc = _SPAWN.Process(target=target, args=args)
    proc.start()
    return proc


def test_model_is_stored_registered_and_verified_on_s3(store_url: str) -> None:
    store = RegistryStore(store_url)
    payload = b"model bytes"
    mv = _version("20250101T000000-abc", payload)

    store.put_model(mv.version, payload, {"features": []})
    after = store.update(lambda reg: registry.register(reg, mv))

    assert after.active == mv.version and after.revision == 1
    assert RegistryStore(store_url).load() == after
    assert store.fetch_verified(after.get(mv.version)) == payload
    assert storage.exists(store.metadata_url(mv.version))


def test_replaced_model_bytes_are_refused_before_loading(store_url: str) -> None:
    store = RegistryStore(store_url)
    mv = _version("v-tampered", b"good bytes")
    store.put_model(mv.version, b"good bytes", {})
    storage.write_bytes(store.model_url(mv.version), b"evil bytes")

    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        store.fetch_verified(mv)


def test_two_writer_processes_lose_no_update(store_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("PRICECAST_")}
    start = _SPAWN.Barrier(2)  # both past their imports, so their updates really overlap
    conflicts = _SPAWN.Value("i", 0)
    writers = [_spawn(_register_many, env, store_url, name, 8, start, conflicts) for name in ("alpha", "beta")]
    for proc in writers:
        proc.join(timeout=180)
        assert proc.exitcode == 0, f"writer {proc.pid} failed with exit code {proc.exitcode}"

    final = RegistryStore(store_url).load()
    expected = {f"{w}-{i:02d}" for w in ("alpha", "beta") for i in range(8)}
    assert set(final.versions) == expected
    assert final.revision == 16, "every committed change bumps the revision exactly once"
    assert len(final.events) == 16
    assert final.active == final.events[-1].version
    assert conflicts.value > 0, "the writers never collided, so this run proved nothing"


def test_a_writer_killed_mid_update_leaves_a_whole_registry(store_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("PRICECAST_")}
    writer = _spawn(_register_many, env, store_url, "doomed", 200)
    deadline = time.monotonic() + 60
    while RegistryStore(store_url).load().revision < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(timeout=30)

    survivor = RegistryStore(store_url).load()  # raises RegistryError on a torn document
    assert 3 <= survivor.revision < 200
    assert len(survivor.versions) == survivor.revision == len(survivor.events)
    # And the next writer carries on from it.
    after = RegistryStore(store_url).update(lambda reg: registry.register(reg, _version("next", b"n")))
    assert after.revision == survivor.revision + 1


# --------------------------------------------------------------------------- lost replies
def _drop_first_registry_write():
    """A drop_reply rule: the first conditional PUT of registry.json is applied, its reply lost."""
    state = {"dropped": False}

    def rule(method: str, path: str, headers: dict[str, str]) -> bool:
        conditional = any(k.lower() in ("if-match", "if-none-match") for k in headers)
        if method == "PUT" and path.split("?")[0].endswith("/registry.json") and conditional and not state["dropped"]:
            state["dropped"] = True
            return True
        return False

    return rule


@contextlib.contextmanager
def _reply_of_one_registry_write_lost(seaweed, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyProxy]:
    """From here on, pricecast reaches SeaweedFS through a proxy that loses one registry write's reply."""
    with flaky_proxy(seaweed.ports["s3"], drop_reply=_drop_first_registry_write()) as proxy:
        monkeypatch.setenv("PRICECAST_S3_ENDPOINT_URL", proxy.endpoint_url)
        get_settings.cache_clear()
        try:
            yield proxy
        finally:
            monkeypatch.setenv("PRICECAST_S3_ENDPOINT_URL", seaweed.endpoint_url)
            get_settings.cache_clear()


class _RegistryLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _promoted(store_url: str, *names: str) -> RegistryStore:
    store = RegistryStore(store_url)
    for name in names:
        store.update(lambda reg, name=name: registry.register(reg, _version(name, name.encode())))
    return store


def test_a_rollback_whose_reply_is_lost_is_applied_once(store_url: str, seaweed, monkeypatch) -> None:
    _promoted(store_url, "v1", "v2", "v3")
    seen = _RegistryLog()
    logging.getLogger("pricecast.registry").addHandler(seen)
    try:
        with _reply_of_one_registry_write_lost(seaweed, monkeypatch) as proxy:
            after = RegistryStore(store_url).update(registry.rollback)
    finally:
        logging.getLogger("pricecast.registry").removeHandler(seen)

    assert [(m, s) for m, _, s in proxy.dropped] == [("PUT", 200)], "the store applied a write nobody heard about"
    assert after.active == "v2"  # the old code went on to v1: v3 -> v2 -> v1
    final = RegistryStore(store_url).load()
    assert final == after
    rollbacks = [(e.previous_active, e.version) for e in final.events if e.action == "rollback"]
    assert rollbacks == [("v3", "v2")] and final.revision == 4
    assert any("already landed" in m for m in seen.messages), seen.messages  # found by its operation id


def test_an_approval_whose_reply_is_lost_succeeds_once(store_url: str, seaweed, monkeypatch) -> None:
    store = _promoted(store_url, "v1")
    store.update(lambda reg: registry.register(reg, _version("v2", b"v2", "pending")))
    with _reply_of_one_registry_write_lost(seaweed, monkeypatch) as proxy:
        # The old code re-applied the approval, found v2 no longer pending and raised.
        after = RegistryStore(store_url).update(lambda reg: registry.approve(reg, "v2"))

    assert len(proxy.dropped) == 1
    assert after.active == "v2" and after.versions["v2"].decision == "promoted"
    assert [e.action for e in RegistryStore(store_url).load().events] == ["promote", "register", "approve"]


# --------------------------------------------------------------------------- the gate as a precondition
def test_an_operator_rollback_during_a_run_is_not_undone_by_its_promotion(store_url: str) -> None:
    from components.promote.core import record_candidate

    store = _promoted(store_url, "v1", "v2", "v3")
    # The run's report gated the candidate against v3; then, mid-run, an operator rolls back.
    summary = {"gate": {"passed": True, "reason": "Candidate MAPE 1.0% is within 1.1%: promote.", "metric": "mape"},
               "candidate": {"mape": 1.0}, "compared_against": "v3"}
    store.update(lambda reg: registry.rollback(reg, reason="bad v3"))
    info = {"version": "v4", "sha256": storage.sha256_bytes(b"v4 bytes"), "features": []}

    after = record_candidate(store, b"v4 bytes", info, summary, passed=True)

    assert after.active == "v2", "the rollback stands"
    v4 = after.get("v4")
    assert v4.decision == "pending"
    assert "compared it with v3, but the active model is now v2 (rollback at" in v4.reason and "bad v3" in v4.reason
    assert RegistryStore(store_url).load() == after
