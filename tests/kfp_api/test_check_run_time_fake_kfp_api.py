"""`pricecast check run-time --host`: a cluster run's wall time from a stand-in KFP API.

No KFP API server can run here; the stand-in answers with KFP 2.x's run shapes, which
kfp.Client parses into its own models exactly as it would from a real API server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from cli.app import app
from pricecast.monitoring.checks import BREACH_EXIT_CODE, kfp_run_time
from tests.kfp_api.standin_kfp_api import StandinKfpApi

runner = CliRunner()
START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _add_run(api: StandinKfpApi, run_id: str, minutes: float | None, started: datetime = START) -> None:
    """A run of the `pricecast` experiment that took ``minutes`` (None: still running)."""
    experiment = next((e for e in api.experiments.values() if e["display_name"] == "pricecast"), None)
    if experiment is None:
        experiment = {"experiment_id": "exp-1", "display_name": "pricecast", "created_at": _iso(START),
                      "storage_state": "AVAILABLE"}
        api.experiments["exp-1"] = experiment
    end = started + timedelta(minutes=minutes) if minutes is not None else None
    tasks = [{"task_id": f"{run_id}-ingest", "display_name": "ingest", "create_time": _iso(started),
              "start_time": _iso(started), "end_time": _iso(started + timedelta(minutes=1)), "state": "SUCCEEDED"},
             {"task_id": f"{run_id}-root", "display_name": "root", "create_time": _iso(started),
              "start_time": _iso(started), "end_time": _iso(end or started), "state": "SUCCEEDED"}]
    if end:
        tasks.append({"task_id": f"{run_id}-train", "display_name": "train", "create_time": _iso(started),
                      "start_time": _iso(started + timedelta(minutes=1)), "end_time": _iso(end), "state": "SUCCEEDED"})
    api.runs[run_id] = {"run_id": run_id, "experiment_id": experiment["experiment_id"], "display_name": run_id,
                        "created_at": _iso(started), "state": "SUCCEEDED" if end else "RUNNING",
                        "finished_at": _iso(end) if end else "1970-01-01T00:00:00Z",
                        "run_details": {"task_details": tasks}}


def _check(api: StandinKfpApi, *args: str):
    return runner.invoke(app, ["check", "run-time", "--host", api.url, "--json", *args])


def test_a_slow_cluster_run_raises_the_run_time_alert_and_exits_7(kfp_api: StandinKfpApi, isolated_store) -> None:
    _add_run(kfp_api, "older-fast", minutes=5, started=START - timedelta(days=1))
    _add_run(kfp_api, "newest-slow", minutes=45)
    result = _check(kfp_api, "--max-seconds", "1800")
    assert result.exit_code == BREACH_EXIT_CODE, result.output
    reported = json.loads(result.stdout.splitlines()[0])
    assert reported["seconds"] == 45 * 60  # the newest run, not the older fast one
    assert reported["stages"] == {"ingest": 60.0, "train": 44 * 60.0}  # KFP's own DAG nodes left out
    # The alert is MEDIUM, names the slowest stage and points at the cluster run, not a local log.
    assert "ALERT MEDIUM PricecastPipelineSlow" in result.output, result.output
    assert "slowest stage train" in result.output and "Open KFP run newest-slow" in result.output


def test_a_named_run_within_the_limit_passes(kfp_api: StandinKfpApi, isolated_store) -> None:
    _add_run(kfp_api, "fast", minutes=10)
    _add_run(kfp_api, "slow", minutes=90, started=START + timedelta(hours=1))
    result = _check(kfp_api, "--run-id", "fast", "--max-seconds", "1800")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["seconds"] == 600


def test_a_run_still_going_counts_until_now_so_a_stuck_run_alerts(kfp_api: StandinKfpApi, isolated_store) -> None:
    _add_run(kfp_api, "stuck", minutes=None, started=datetime.now(UTC) - timedelta(hours=2))
    result = _check(kfp_api, "--max-seconds", "3600")
    assert result.exit_code == BREACH_EXIT_CODE, result.output
    assert json.loads(result.stdout.splitlines()[0])["seconds"] >= 2 * 3600


def test_an_experiment_without_runs_says_what_to_do(kfp_api: StandinKfpApi, isolated_store) -> None:
    kfp_api.experiments["exp-1"] = {"experiment_id": "exp-1", "display_name": "pricecast", "created_at": _iso(START)}
    result = _check(kfp_api, "--max-seconds", "60")
    assert result.exit_code == 2, result.output
    assert "has no run" in result.output and "pricecast submit" in result.output


def test_kfp_zero_time_means_not_finished() -> None:
    now = START + timedelta(minutes=7)
    run = {"run_id": "r", "created_at": START, "finished_at": datetime(1970, 1, 1, tzinfo=UTC)}
    assert kfp_run_time(run, now=now).seconds == 420
    with pytest.raises(Exception, match="no created_at"):
        kfp_run_time({"run_id": "r"})
