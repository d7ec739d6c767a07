"""The whole pipeline through kfp.local (SubprocessRunner): train, gate, rerun, resume, alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.local_run import run_local
from pricecast import registry, storage
from pricecast.monitoring import checks
from pricecast.registry import RegistryStore
from tests.monitoring.support import webhook_receiver

from .conftest import SMALL

pytestmark = pytest.mark.slow


def _metrics(settings) -> list[dict]:
    path = settings.log_dir / "stage-metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_first_run_promotes_then_rerun_recomputes_nothing(trained, trained_copy, isolated_store, tmp_path):
    first = trained.outcome
    assert first.decision == "promoted", first.reason
    # Within the default accuracy and run-time thresholds (drift on this small universe may alert).
    assert {a.name for a in first.alerts} <= {checks.FEATURE_DRIFT, checks.FEATURE_SHIFT_KS}
    assert "naive" in first.reason  # the first model is gated against the naive baseline
    reg = RegistryStore().load()
    assert reg.active == first.version
    mv = reg.get(first.version)
    assert {"mape", "mae", "rmse", "directional_accuracy"} <= set(mv.metrics)
    assert first.report_url.startswith(storage.join(trained.store.as_uri(), "reports", first.version, "pricecast-"))
    assert storage.exists(first.report_url)
    assert ("ingest", "running") in trained.events and ("ingest", "succeeded") in trained.events
    assert any(t.startswith("evaluate") for t, _ in trained.events)
    # The model in the store is the one the registry names, byte for byte.
    assert storage.sha256_bytes(RegistryStore().fetch_verified(mv)) == mv.sha256

    events: list[tuple[str, str]] = []
    second = run_local(dict(SMALL), pipeline_root=tmp_path / "kfp", on_event=lambda t, s: events.append((t, s)))
    restored = {m["stage"]: m["restored"] for m in _metrics(isolated_store) if m["stage"] != "promote"}
    # evaluate and report too: the candidate is now the active model, so it is compared with what
    # it was gated against (the naive forecast), not with itself, and those checkpoints match.
    assert len(restored) == 9 and all(restored.values()), restored
    assert second.version == first.version
    assert RegistryStore().load().revision == reg.revision  # nothing new registered
    # This run's verdict: nothing promoted, everything restored; its report has its own folder.
    assert second.decision == "unchanged"
    assert second.reason.startswith(first.reason)
    assert f"Nothing promoted (restored from checkpoints): {first.version} is already the active model." in second.reason
    assert second.report_url != first.report_url and storage.exists(second.report_url)
    assert storage.exists(first.report_url)  # the first run's report is kept
    states = dict(events)
    assert states["ingest"] == states["train"] == "restored" and states["promote"] == "succeeded"


def test_a_rerun_after_a_rollback_says_nothing_was_promoted(trained, trained_copy, isolated_store, tmp_path):
    # A second model (other regularisation) promoted over the first, then rolled back.
    other = {**SMALL, "alpha": 3.0}
    second = run_local(other, pipeline_root=tmp_path / "kfp")
    assert second.decision == "promoted", second.reason
    store = RegistryStore()
    store.update(lambda r: registry.rollback(r, trained.outcome.version, "test"))
    again = run_local(other, pipeline_root=tmp_path / "kfp")
    assert again.version == second.version and again.active == trained.outcome.version
    assert again.decision == "unchanged", again.reason
    assert (f"Nothing promoted (restored from checkpoints): {second.version} was registered before and rolled "
            f"back since; the active model stays {trained.outcome.version}") in again.reason
    assert again.reason.startswith(second.reason)
    assert "report" in again.restored and store.load().active == trained.outcome.version


def test_from_stage_reuses_earlier_checkpoints_and_recomputes_later(trained_copy, isolated_store, tmp_path):
    # A different seed would change the data; --from features must ignore it and reuse ingest..clean.
    run_local({**SMALL, "seed": 7, "force_from": "features"}, pipeline_root=tmp_path / "kfp")
    restored = {m["stage"]: m["restored"] for m in _metrics(isolated_store)}
    assert restored["ingest"] and restored["validate"] and restored["clean"]
    assert not restored["features"] and not restored["train"]


def test_degraded_candidate_is_rejected_and_active_kept(trained, trained_copy, isolated_store, tmp_path):
    # Heavy regularisation makes a much worse model; zero tolerance makes the gate strict.
    second = run_local({**SMALL, "alpha": 1e7, "max_degradation": 0.0}, pipeline_root=tmp_path / "kfp")
    reg = RegistryStore().load()
    assert second.decision == "rejected", second.reason
    assert reg.active == trained.outcome.version
    assert reg.get(second.version).decision == "rejected"
    assert "active" in reg.get(second.version).reason


def test_require_approval_marks_pending_until_approved(isolated_store, tmp_path):
    out = run_local({**SMALL, "require_approval": True}, pipeline_root=tmp_path / "kfp")
    assert out.decision == "pending"
    store = RegistryStore()
    assert store.load().active is None
    store.update(lambda r: registry.approve(r, out.version))
    assert store.load().active == out.version


def test_cli_run_over_its_limits_alerts_the_webhook_and_still_succeeds(trained_copy, tmp_path):
    """`pricecast run` with a 0.001 s run-time limit and an unreachable accuracy minimum: the
    report task (a subprocess) and the CLI process each post their alert; the run exits 0."""
    logs = tmp_path / "logs"
    with webhook_receiver() as receiver:
        env = {**os.environ, "PRICECAST_STORE_URL": f"file://{trained_copy}", "PRICECAST_LOG_DIR": str(logs),
               "PRICECAST_ALERT_WEBHOOK_URL": receiver.url, "COLUMNS": "200"}
        args = ["--tickers", str(SMALL["tickers"]), "--days", str(SMALL["days"]), "--n-windows", str(SMALL["n_windows"]),
                "--max-run-time-s", "0.001", "--min-directional-accuracy", "0.99"]
        proc = subprocess.run([sys.executable, "-m", "cli", "run", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sent = {body["source"]: body["alerts"] for body in receiver.bodies}
    assert {"report", "run"} <= set(sent) <= {"drift", "report", "run"}, receiver.bodies
    [accuracy] = sent["report"]
    assert (accuracy["severity"], accuracy["name"], accuracy["threshold"]) == ("HIGH", checks.ACCURACY_LOW, 0.99)
    [slow] = sent["run"]
    assert (slow["severity"], slow["name"], slow["threshold"]) == ("MEDIUM", checks.PIPELINE_SLOW, 0.001)
    assert slow["value"] > 1 and "over 0.001s" in slow["message"]
    stage = slow["labels"]["slowest_stage"]
    assert (logs / f"{stage}.log").exists() and f"logs/{stage}.log" in slow["suggested_action"]
    output = " ".join(proc.stdout.split())
    assert "alert: ALERT HIGH PricecastDirectionalAccuracyLow" in output
    assert "alert: ALERT MEDIUM PricecastPipelineSlow" in output
    [run_log] = logs.glob("run-*.log")
    assert "ALERT MEDIUM PricecastPipelineSlow" in run_log.read_text()
    assert "ALERT HIGH PricecastDirectionalAccuracyLow" in (logs / "report.log").read_text()


def test_task_processes_inherit_the_task_settings_and_a_users_own_wins(isolated_store, tmp_path, monkeypatch):
    """run_local sets them before any task starts (kfp.local's subprocesses inherit os.environ)."""
    from pipelines.local_run import TASK_ENVIRONMENT
    from pricecast.errors import ConfigError

    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    with pytest.raises(ConfigError):  # refused before any task: only the environment is looked at
        run_local({**SMALL, "alpha": float("nan")}, pipeline_root=tmp_path / "kfp")
    assert os.environ["NUMPY_MADVISE_HUGEPAGE"] == TASK_ENVIRONMENT["NUMPY_MADVISE_HUGEPAGE"] == "0"
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"


def test_the_pipelines_package_imports_kfp_without_its_api_client_and_leaves_no_trace() -> None:
    """`pricecast run` compiles and runs locally: kfp.Client (and the Kubernetes and Google auth
    clients under it) is not imported, the SDK it does use is whole, and no child inherits the
    switch. In a fresh interpreter: this process has kfp imported already."""
    code = (
        "import json, os, sys\n"
        "from pipelines.pricecast_pipeline import build_pipeline\n"
        "from kfp import dsl, local\n"
        "seen = {'kubernetes': 'kubernetes' in sys.modules, 'runtime': os.environ.get('_KFP_RUNTIME'),\n"
        "        'full_dsl': all(hasattr(dsl, n) for n in ('pipeline', 'ParallelFor', 'Collected')),\n"
        "        'built': callable(build_pipeline(cluster=False))}\n"
        "from kfp.client import Client\n"  # cli/cluster.py's import still works afterwards
        "print(json.dumps({**seen, 'client': Client.__name__}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == {"kubernetes": False, "runtime": None, "full_dsl": True, "built": True,
                                      "client": "Client"}
