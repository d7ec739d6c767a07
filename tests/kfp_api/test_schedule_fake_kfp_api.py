"""`pricecast schedule` against a stand-in KFP API (no KFP API server can run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.cluster import kfp_cron
from pricecast.errors import ConfigError
from tests.kfp_api.standin_kfp_api import StandinKfpApi


def test_nightly_schedule_sends_kfp_cron_with_seconds_and_no_catchup(
    kfp_api: StandinKfpApi, package: Path, invoke
) -> None:
    result = invoke("schedule", "--host", kfp_api.url, "--package", str(package),
                    "--cron", "0 2 * * *", "--param", "tickers=20")

    assert result.exit_code == 0, result.output
    (job,) = kfp_api.calls("POST", "/recurringruns")
    assert job.json["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}
    assert job.json["display_name"] == "pricecast-nightly"
    assert job.json["mode"] == "ENABLE"
    assert job.json["no_catchup"] is True
    assert int(job.json["max_concurrency"]) == 1
    assert job.json["runtime_config"]["parameters"] == {"tickers": 20}
    (pipeline_id,) = kfp_api.pipelines
    assert job.json["pipeline_version_reference"]["pipeline_id"] == pipeline_id
    assert kfp_api.calls("POST", "/runs") == [], "scheduling must not also start a run"


def test_scheduling_again_replaces_the_previous_schedule(kfp_api: StandinKfpApi, package: Path, invoke) -> None:
    assert invoke("schedule", "--host", kfp_api.url, "--package", str(package)).exit_code == 0
    first = next(iter(kfp_api.recurring_runs))
    again = invoke("schedule", "--host", kfp_api.url, "--package", str(package), "--cron", "30 3 * * 1-5")

    assert again.exit_code == 0, again.output
    assert "replaced" in again.output
    assert [c.path.rsplit("/", 1)[1] for c in kfp_api.calls("DELETE", first)] == [first]
    (remaining,) = kfp_api.recurring_runs.values()
    assert remaining["trigger"]["cron_schedule"]["cron"] == "0 30 3 * * 1-5"


def test_a_bad_cron_is_refused_before_anything_is_sent(kfp_api: StandinKfpApi, package: Path, invoke) -> None:
    result = invoke("schedule", "--host", kfp_api.url, "--package", str(package), "--cron", "every night")
    assert result.exit_code == 2
    assert "5 fields" in result.output
    assert kfp_api.requests == []


@pytest.mark.parametrize(("given", "sent"), [
    ("0 2 * * *", "0 0 2 * * *"),
    ("*/15 * * * *", "0 */15 * * * *"),
    ("0 0 9 ? * 2-6", "0 0 9 ? * 2-6"),
])
def test_kfp_cron_adds_the_seconds_field(given: str, sent: str) -> None:
    assert kfp_cron(given) == sent


def test_kfp_cron_rejects_other_lengths() -> None:
    with pytest.raises(ConfigError):
        kfp_cron("0 2 * *")
