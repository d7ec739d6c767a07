"""`pricecast canary start|promote|rollback`: the values they write, rendered by the real Helm
engine as `helm upgrade --reuse-values -f` would merge them; `helm` itself is a fake here (no
cluster can run on this machine), recording the command it was given."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from pricecast import registry
from pricecast.registry import RegistryStore
from tests.core.support import mv
from tests.delivery.chart import by_kind_name, container_env, deep_merge, manifests, scenario_values

STABLE, CANARY = ("Deployment", "pricecast-stable"), ("Deployment", "pricecast-canary")


def _invoke(*args: str) -> object:
    return CliRunner().invoke(app, ["canary", *args])


@pytest.fixture(autouse=True)
def known_versions(isolated_store) -> RegistryStore:
    """The registry `canary start` checks: v2 and v3 promoted, v4 rejected."""
    store = RegistryStore()
    for record in (mv("v2"), mv("v3"), mv("v4", "rejected").model_copy(update={"reason": "MAPE 2.1% above 1.5%"})):
        store.update(lambda r, record=record: registry.register(r, record))
    return store


@pytest.mark.parametrize("command", ["start", "promote"])  # promote may be named a version, too
@pytest.mark.parametrize(("version", "problem"), [
    ("nope", "Model version 'nope' is not in the registry (known: v2, v3, v4)."),
    ("v4", "Version 'v4' was rejected by the gate (MAPE 2.1% above 1.5%); it must not serve traffic."),
])
def test_start_and_promote_refuse_an_unknown_or_rejected_version_before_writing_values(
        tmp_path: Path, command: str, version: str, problem: str) -> None:
    values_file = tmp_path / "canary.yaml"
    result = _invoke(command, "--version", version, "--values-file", str(values_file), "--apply", "always")
    assert result.exit_code == 6, result.output
    assert problem in " ".join(result.output.split())
    assert not values_file.exists()


def test_start_without_a_registry_names_the_store(tmp_path: Path) -> None:
    values_file = tmp_path / "canary.yaml"
    result = _invoke("start", "--version", "v2", "--store", f"file://{tmp_path}/empty",
                     "--values-file", str(values_file), "--apply", "never")
    assert result.exit_code == 6 and f"no registry at file://{tmp_path}/empty" in result.output
    assert not values_file.exists()


def test_start_promote_rollback_drive_the_chart(tmp_path: Path) -> None:
    values_file = tmp_path / "canary.yaml"
    release = scenario_values("stable-only")  # what is installed: v-stable on 2 pods
    stable_version = release["stable"]["modelVersion"]

    started = _invoke("start", "--version", "v2", "--weight", "10", "--stable-replicas", "9",
                      "--values-file", str(values_file), "--apply", "never")
    assert started.exit_code == 0, started.output
    assert "apply with: helm upgrade pricecast helm/pricecast --namespace pricecast --reuse-values" in started.output
    release = deep_merge(release, yaml.safe_load(values_file.read_text()))
    docs = by_kind_name(manifests(release))
    assert (docs[STABLE]["spec"]["replicas"], docs[CANARY]["spec"]["replicas"]) == (9, 1)
    assert container_env(docs[STABLE])["PRICECAST_MODEL_VERSION"] == stable_version
    assert container_env(docs[CANARY])["PRICECAST_MODEL_VERSION"] == "v2"

    # The analysis said rollback: the canary goes, stable is untouched.
    rolled_back = _invoke("rollback", "--values-file", str(values_file), "--apply", "never")
    assert rolled_back.exit_code == 0, rolled_back.output
    after_rollback = by_kind_name(manifests(deep_merge(release, yaml.safe_load(values_file.read_text()))))
    assert CANARY not in after_rollback
    assert after_rollback[STABLE]["spec"]["template"] == docs[STABLE]["spec"]["template"]

    # A new canary that passes: promote makes its version stable, reading it from the values file.
    restarted = _invoke("start", "--version", "v3", "--values-file", str(values_file), "--apply", "never")
    assert "(stable pods from the chart default)" in restarted.output  # no helm here to ask
    assert "stable" not in yaml.safe_load(values_file.read_text())  # without --stable-replicas, stable is left alone
    release = deep_merge(release, yaml.safe_load(values_file.read_text()))
    assert release["stable"]["replicaCount"] == 9
    promoted = _invoke("promote", "--values-file", str(values_file), "--apply", "never")
    assert promoted.exit_code == 0, promoted.output
    assert "stable now serves v3" in promoted.output
    final = by_kind_name(manifests(deep_merge(release, yaml.safe_load(values_file.read_text()))))
    assert CANARY not in final
    assert container_env(final[STABLE])["PRICECAST_MODEL_VERSION"] == "v3"


def test_promote_without_a_known_version_is_a_clean_error(tmp_path: Path) -> None:
    result = _invoke("promote", "--values-file", str(tmp_path / "none.yaml"), "--apply", "never")
    assert result.exit_code == 2
    assert "needs the canary's model version" in result.output and "Traceback" not in result.output


def test_start_and_promote_pin_active_to_the_version_it_names_now(tmp_path: Path) -> None:
    values_file, store_url = str(tmp_path / "v.yaml"), f"file://{tmp_path}/pin-store"  # not known_versions' store
    store = RegistryStore(store_url)
    store.update(lambda reg: registry.register(reg, mv("v6", "pending")))
    nothing_active = _invoke("start", "--version", "active", "--store", store_url, "--values-file", values_file,
                             "--apply", "never")
    assert nothing_active.exit_code == 6 and "no active model" in nothing_active.output, nothing_active.output
    store.update(lambda reg: registry.register(reg, mv("v7")))

    started = _invoke("start", "--version", "active", "--store", store_url, "--values-file", values_file,
                      "--apply", "never")
    assert started.exit_code == 0, started.output
    assert "active is v7: pinning it" in started.output
    assert yaml.safe_load(Path(values_file).read_text())["canary"]["modelVersion"] == "v7"

    store.update(lambda reg: registry.register(reg, mv("v8")))
    promoted = _invoke("promote", "--version", "active", "--store", store_url, "--values-file", values_file,
                       "--apply", "never")
    assert promoted.exit_code == 0, promoted.output
    assert yaml.safe_load(Path(values_file).read_text())["stable"]["modelVersion"] == "v8"


def test_start_refuses_bad_weights(tmp_path: Path) -> None:
    bad = _invoke("start", "--version", "v2", "--weight", "0", "--values-file", str(tmp_path / "v.yaml"))
    assert bad.exit_code == 2 and "not between 1 and 99" in bad.output


def _fake_helm(bin_dir: Path, status_rc: int, upgrade_rc: int = 0, values_json: str = "") -> Path:
    """A `helm` on PATH that records its arguments; `helm status` answers ``status_rc`` and
    `helm get values` prints ``values_json`` (failing when it is empty, as without a cluster)."""
    log = bin_dir / "helm.log"
    script = bin_dir / "helm"
    get_values = f"echo '{values_json}'; exit 0" if values_json else "exit 1"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
case "$1" in status) exit {status_rc};; upgrade) exit {upgrade_rc};; get) {get_values};; esac
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def test_fake_helm_apply_auto_upgrades_when_the_release_is_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_helm(tmp_path, status_rc=0)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    values_file = tmp_path / "c.yaml"
    result = _invoke("start", "--version", "v2", "--values-file", str(values_file), "-n", "ml", "--release", "pc")
    assert result.exit_code == 0, result.output
    calls = log.read_text().splitlines()
    assert calls[0] == "get values pc --namespace ml --all --output json"
    assert calls[1] == "status pc --namespace ml"
    assert calls[2] == (f"upgrade pc helm/pricecast --namespace ml --reuse-values --values {values_file} "
                        "--wait --timeout 5m")


def test_fake_helm_sizes_the_canary_for_the_releases_stable_pods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_helm(tmp_path, status_rc=1, values_json='{"stable": {"replicaCount": 18}}')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    values_file = tmp_path / "c.yaml"
    result = _invoke("start", "--version", "v2", "--weight", "10", "--values-file", str(values_file))
    assert result.exit_code == 0, result.output
    assert "2 pod(s) next to 18 stable (~10 % by replica ratio)" in result.output
    assert "(stable pods from helm get values)" in result.output
    assert yaml.safe_load(values_file.read_text())["canary"]["replicaCount"] == 2
    assert log.read_text().splitlines()[0] == "get values pricecast --namespace pricecast --all --output json"


def test_fake_helm_apply_auto_only_prints_without_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_helm(tmp_path, status_rc=1)  # helm is there, the cluster/release is not
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = _invoke("rollback", "--values-file", str(tmp_path / "c.yaml"))
    assert result.exit_code == 0 and "apply with: helm upgrade" in result.output
    assert [c.split()[0] for c in log.read_text().splitlines()] == ["status"]


def test_fake_helm_failed_upgrade_fails_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_helm(tmp_path, status_rc=0, upgrade_rc=1)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = _invoke("rollback", "--values-file", str(tmp_path / "c.yaml"), "--apply", "always")
    assert result.exit_code == 1 and "helm upgrade failed" in result.output


def test_apply_always_without_helm_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no helm anywhere
    result = _invoke("rollback", "--values-file", str(tmp_path / "c.yaml"), "--apply", "always")
    assert result.exit_code == 2 and "needs a helm binary" in result.output
