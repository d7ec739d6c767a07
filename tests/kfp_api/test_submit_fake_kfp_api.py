"""`pricecast submit` against a stand-in KFP API (no KFP API server can run here)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.kfp_api.standin_kfp_api import StandinKfpApi


def test_first_submit_uploads_the_pipeline_and_starts_a_run_with_the_parameters(
    kfp_api: StandinKfpApi, package: Path, invoke
) -> None:
    result = invoke("submit", "--host", kfp_api.url, "--package", str(package),
                    "--param", "tickers=50", "--param", "source=generator", "--param", "max_degradation=0.05")

    assert result.exit_code == 0, result.output
    (upload,) = kfp_api.calls("POST", "/pipelines/upload")
    assert upload.query["name"] == "pricecast"
    assert upload.files["uploadfile"] == package.read_bytes()
    spec, platform = yaml.safe_load_all(upload.files["uploadfile"])  # the IR and its Kubernetes config
    assert spec["pipelineInfo"]["name"] == "pricecast"
    assert "pricecast-s3" in str(platform), "the Secret wiring travels with the package"

    (experiment,) = kfp_api.calls("POST", "/experiments")
    assert experiment.json["display_name"] == "pricecast"
    (run,) = kfp_api.calls("POST", "/runs")
    (pipeline_id,) = kfp_api.pipelines
    (version,) = kfp_api.versions[pipeline_id]
    assert run.json["pipeline_version_reference"] == {
        "pipeline_id": pipeline_id, "pipeline_version_id": version["pipeline_version_id"]}
    assert run.json["experiment_id"] == next(iter(kfp_api.experiments))
    assert run.json["runtime_config"]["parameters"] == {"tickers": 50, "source": "generator", "max_degradation": 0.05}
    assert "pipeline_spec" not in run.json, "the run must reference the uploaded version, not inline a copy"
    (run_id,) = kfp_api.runs
    assert f"#/runs/details/{run_id}" in result.output


def test_a_changed_package_becomes_a_new_version_and_an_unchanged_one_is_reused(
    kfp_api: StandinKfpApi, package: Path, invoke, tmp_path: Path
) -> None:
    assert invoke("submit", "--host", kfp_api.url, "--package", str(package)).exit_code == 0
    changed = tmp_path / "changed.yaml"
    changed.write_text(package.read_text().replace("pricecast:0.1.0", "pricecast:0.2.0"))

    second = invoke("submit", "--host", kfp_api.url, "--package", str(changed), "--run-name", "try-0.2.0")
    third = invoke("submit", "--host", kfp_api.url, "--package", str(changed))

    assert second.exit_code == 0 and third.exit_code == 0, second.output + third.output
    assert len(kfp_api.calls("POST", "/pipelines/upload")) == 1, "the pipeline is created once"
    (new_version,) = kfp_api.calls("POST", "/pipelines/upload_version")
    (pipeline_id,) = kfp_api.pipelines
    assert new_version.query["pipelineid"] == pipeline_id
    assert new_version.query["name"].startswith("pricecast-")
    assert b"pricecast:0.2.0" in new_version.files["uploadfile"]
    assert "reused" in third.output
    first_run, second_run, third_run = (r.json for r in kfp_api.calls("POST", "/runs"))
    newest = kfp_api.versions[pipeline_id][-1]["pipeline_version_id"]
    assert first_run["pipeline_version_reference"]["pipeline_version_id"] != newest
    assert second_run["pipeline_version_reference"]["pipeline_version_id"] == newest
    assert third_run["pipeline_version_reference"] == second_run["pipeline_version_reference"]
    assert second_run["display_name"] == "try-0.2.0"
    assert len(kfp_api.experiments) == 1, "the experiment is found again, not duplicated"


def test_config_file_params_service_account_and_root_reach_the_run(
    kfp_api: StandinKfpApi, package: Path, invoke, tmp_path: Path
) -> None:
    config = tmp_path / "nightly.yaml"
    config.write_text("tickers: 30\nmain_metric: rmse\n")
    result = invoke("submit", "--host", kfp_api.url, "--package", str(package), "--config", str(config),
                    "--param", "tickers=40", "--service-account", "pricecast-pipeline",
                    "--pipeline-root", "minio://mlpipeline/pricecast-runs")
    assert result.exit_code == 0, result.output
    (run,) = kfp_api.calls("POST", "/runs")
    assert run.json["runtime_config"] == {"parameters": {"tickers": 40, "main_metric": "rmse"},
                                          "pipeline_root": "minio://mlpipeline/pricecast-runs"}
    assert run.json["service_account"] == "pricecast-pipeline"


def test_an_unreachable_api_names_the_host_and_the_port_forward(package: Path, invoke) -> None:
    from tests.kfp_api.standin_kfp_api import standin_kfp_api

    with standin_kfp_api() as gone:
        dead = gone.url  # closed as soon as the block ends
    result = invoke("submit", "--host", dead, "--package", str(package))
    assert result.exit_code == 1
    assert dead in result.output and "port-forward" in result.output


def test_a_missing_package_says_how_to_compile(kfp_api: StandinKfpApi, invoke, tmp_path: Path) -> None:
    result = invoke("submit", "--host", kfp_api.url, "--package", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "pricecast compile --image" in result.output
    assert kfp_api.requests == []


def test_a_parameter_that_is_not_a_finite_number_is_refused_before_any_request(
    kfp_api: StandinKfpApi, package: Path, invoke
) -> None:
    result = invoke("submit", "--host", kfp_api.url, "--package", str(package), "--param", "alpha=.nan")
    assert result.exit_code == 2
    assert "alpha=nan are not finite" in result.output
    assert kfp_api.requests == []
