"""`pricecast registry list | approve | rollback` through typer's CliRunner, on an isolated store."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from cli.app import app
from pricecast import registry
from pricecast.registry import RegistryStore
from tests.core.support import mv


@pytest.fixture
def store(isolated_store, monkeypatch) -> RegistryStore:
    """The isolated store's registry: v1 promoted, v2 rejected, v3 pending (v1 active)."""
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal width; keep rows whole
    store = RegistryStore()
    for record in (mv("v1"), mv("v2", "rejected").model_copy(update={"reason": "MAPE 2.1% above 1.5%"}),
                   mv("v3", "pending")):
        store.update(lambda r, record=record: registry.register(r, record))
    return store


def run(*args: str):
    return CliRunner().invoke(app, ["registry", *args])


def test_list_shows_every_version_its_decision_and_marks_the_active_one(store):
    result = run("list")
    assert result.exit_code == 0, result.output
    rows = {m["version"]: m for m in re.finditer(
        r"^ +(?P<mark>\*?) +(?P<version>v\d) +(?P<decision>\w+) +(?P<metric>\S+) +(?P<reason>.*?) *$",
        result.stdout, flags=re.MULTILINE)}
    assert {v: (m["mark"], m["decision"]) for v, m in rows.items()} == {
        "v1": ("*", "promoted"), "v2": ("", "rejected"), "v3": ("", "pending")}
    assert rows["v2"]["reason"] == "MAPE 2.1% above 1.5%" and rows["v1"]["metric"] == "mape=1"
    assert "registry (revision 3), oldest first" in result.stdout and result.stdout.rstrip().endswith("active: v1")


def test_list_json_is_the_registry_document(store):
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(store.load().model_dump_json())


def test_list_of_a_registry_without_an_active_model_says_none_is_active(isolated_store):
    RegistryStore().update(lambda r: registry.register(r, mv("v1", "rejected")))
    result = run("list")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("active: none")


def test_list_names_the_store_it_read(store, isolated_store):
    result = run("list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"store: {isolated_store.store_url}"


def test_a_store_without_a_registry_is_said_plainly_and_exits_6(isolated_store):
    result = run("list")
    assert result.exit_code == 6
    assert f"error: There is no registry at {isolated_store.store_url} (no registry.json)." in result.stderr
    assert "--store" in result.stderr and "PRICECAST_STORE_URL" in result.stderr


def test_the_default_store_resolves_against_the_working_directory(tmp_path, monkeypatch):
    # From another directory the relative default names another store: the message says which.
    from pricecast.settings import reload_settings

    monkeypatch.delenv("PRICECAST_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        assert reload_settings().store_url == f"file://{tmp_path}/.pricecast/store"
        result = run("list")
    finally:
        monkeypatch.undo()
        reload_settings()
    assert result.exit_code == 6
    assert f"There is no registry at file://{tmp_path}/.pricecast/store" in result.stderr


def test_a_relative_store_option_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert RegistryStore("file://./elsewhere").store_url == f"file://{tmp_path}/elsewhere"
    assert RegistryStore("elsewhere/").store_url == f"file://{tmp_path}/elsewhere"
    assert RegistryStore("s3://bucket/prefix/").store_url == "s3://bucket/prefix"


def test_list_keeps_version_names_whole_at_80_columns(isolated_store, monkeypatch):
    import cli.registry

    monkeypatch.setattr(cli.registry.console, "width", 80)  # a pipe or a small terminal
    reason = ("Candidate MAPE 1.311% is within the threshold 1.464% (the naive last-value forecast: 1.331%, "
              "10% degradation allowed): promote.")
    for version in ("20261204-230620-bdb95d44", "20261205-090000-0c1d2e3f"):
        RegistryStore().update(lambda r, v=version: registry.register(r, mv(v).model_copy(update={
            "reason": reason, "created_at": "2026-12-04T23:06:20+00:00"})))
    result = run("list")
    assert result.exit_code == 0, result.output
    assert max(map(len, result.stdout.splitlines()[1:])) <= 80  # the store line below the table's width
    for line in ("20261204-230620-bdb95d44 ", "20261205-090000-0c1d2e3f ", "promoted ", "mape=1 "):
        assert line in result.stdout, result.stdout


def test_approve_makes_a_pending_version_active(store):
    result = run("approve", "v3")
    assert result.exit_code == 0, result.output
    assert "approved v3; active is now v3" in result.stdout
    reg = store.load()
    assert reg.active == "v3" and reg.versions["v3"].decision == "promoted" and reg.revision == 4
    assert (reg.events[-1].action, reg.events[-1].previous_active) == ("approve", "v1")


def test_rollback_twice_walks_back_then_names_the_fix(store):
    store.update(lambda r: registry.approve(r, "v3"))
    store.update(lambda r: registry.register(r, mv("v4")))  # active history: v1, v3, v4
    first, second = run("rollback", "--reason", "accuracy alert"), run("rollback")
    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert "active: v4 -> v3" in first.stdout and "active: v3 -> v1" in second.stdout
    reg = store.load()
    assert reg.active == "v1" and reg.revision == 7
    assert [(e.previous_active, e.version, e.reason) for e in reg.events[-2:]] == [
        ("v4", "v3", "accuracy alert"), ("v3", "v1", "operator rollback")]

    third = run("rollback")
    assert third.exit_code == 6
    assert "error: There is no earlier version to roll back to: v1 was the first version made active." in third.stderr
    assert "what to do: Name the version to activate: `pricecast registry rollback --to VERSION` (promoted: v3, v4;" \
        in third.stderr
    assert store.load() == reg


def test_rollback_to_a_named_version_and_back_to_one_rolled_away_from(store):
    store.update(lambda r: registry.register(r, mv("v4")))
    named = run("rollback", "--to", "v1", "--reason", "drift")
    assert named.exit_code == 0, named.output
    assert "active: v4 -> v1" in named.stdout
    assert (store.load().active, store.load().events[-1].reason) == ("v1", "drift")

    forward = run("rollback", "--to", "v4")
    assert forward.exit_code == 0 and "active: v1 -> v4" in forward.stdout
    assert run("rollback").stdout.strip().endswith("active: v4 -> v1")  # undoes the move forward


@pytest.mark.parametrize(("args", "problem"), [
    (("approve", "v1"), "Version 'v1' is promoted, not pending; only pending versions can be approved."),
    (("approve", "v2"), "Version 'v2' is rejected, not pending; only pending versions can be approved."),
    (("approve", "v9"), "Model version 'v9' is not in the registry (known: v1, v2, v3)."),
    (("rollback", "--to", "v2"), "Version 'v2' was rejected; only versions that passed the gate can be active."),
    (("rollback", "--to", "v9"), "Model version 'v9' is not in the registry (known: v1, v2, v3)."),
])
def test_a_refused_change_exits_6_with_problem_and_fix_and_changes_nothing(store, args, problem):
    before = store.load()
    result = run(*args)
    assert result.exit_code == 6
    assert f"error: {problem}" in result.stderr and "what to do:" in result.stderr
    assert store.load() == before


def test_resolve_prints_the_concrete_version_active_names(store):
    result = run("resolve")
    assert result.exit_code == 0, result.output
    assert result.stdout == "v1\n"  # nothing else: it goes into --set stable.modelVersion="$(...)"
    store.update(lambda r: registry.approve(r, "v3"))
    assert run("resolve", "active").stdout == "v3\n"
    assert run("resolve", "v1").stdout == "v1\n"


def test_resolve_without_an_active_model_or_an_unknown_version_exits_6(isolated_store):
    empty = run("resolve")
    assert empty.exit_code == 6 and "The registry has no active model yet." in empty.stderr
    assert empty.stdout == ""
