"""The compiled pipeline: committed YAML is fresh, loads with the SDK, uses only the project image."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kfp import components

from pipelines.pricecast_pipeline import COMPILED_PATH, DEFAULT_IMAGE, compile_pipeline


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_committed_yaml_is_not_stale(tmp_path):
    fresh = compile_pipeline(tmp_path / "p.yaml")
    assert COMPILED_PATH.exists(), "run `pricecast compile` and commit pipelines/pricecast_pipeline.yaml"
    assert _docs(fresh) == _docs(COMPILED_PATH), "pipelines/pricecast_pipeline.yaml is stale: run `pricecast compile`"


def test_compiled_ir_loads_and_every_executor_uses_the_image(tmp_path):
    path = compile_pipeline(tmp_path / "p.yaml", image="registry.example/pricecast:1.2.3")
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "pricecast"
    spec = _docs(path)[0]
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) >= 8
    for name, ex in executors.items():
        container = ex["container"]
        assert container["image"] == "registry.example/pricecast:1.2.3", name
        command = " ".join(container.get("command", []) + container.get("args", []))
        assert "pip install" not in command, f"{name} installs packages at run time"


def test_cluster_wiring_secret_configmap_retry_cache_and_gate():
    spec, platform = _docs(COMPILED_PATH)[:2]
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["ingest"]["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["ingest"]["cachingOptions"].get("enableCache", False) is False
    # The fan-outs: validate per shard over ingest's shard list, clean and features per shard
    # over plan's; train, drift and evaluate fan the features back in.
    loops = {name: spec["components"][t["componentRef"]["name"]]["dag"]["tasks"]
             for name, t in tasks.items() if name.startswith("for-loop")}
    assert sorted(map(sorted, loops.values())) == [["clean", "features"], ["validate"]]
    validate = next(loop for loop in loops.values() if "validate" in loop)["validate"]
    assert validate["cachingOptions"]["enableCache"] is True
    for fan_in in ("train", "drift", "evaluate"):
        assert "for-loop" in str(tasks[fan_in]["inputs"]["artifacts"]["features"]), fan_in
    assert set(tasks["plan"]["inputs"]["artifacts"]) == {"profiles", "validated"}
    # The gate: promote under dsl.If, record-rejection under dsl.Else.
    branch = next(name for name in tasks if name.startswith("condition-branches"))
    branches = spec["components"][tasks[branch]["componentRef"]["name"]]["dag"]["tasks"]
    conditions = {name: t["triggerPolicy"]["condition"] for name, t in branches.items()}
    assert len(conditions) == 2
    assert any("report-verdict" in c and "== 'promote'" in c and not c.startswith("!") for c in conditions.values())
    assert any(c.startswith("!(") for c in conditions.values())  # the Else branch
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name, ex in k8s.items():
        assert ex["secretAsEnv"][0]["secretName"] == "pricecast-s3", name
        assert ex["configMapAsEnv"][0]["configMapName"] == "pricecast-config", name
    assert DEFAULT_IMAGE in COMPILED_PATH.read_text()


def test_local_pipeline_leaves_source_retries_to_ingest_itself(tmp_path):
    # kfp.local honours set_retry; replaying a deterministic failure (a bad file) only delays the error.
    from kfp import compiler

    from pipelines.pricecast_pipeline import build_pipeline

    path = tmp_path / "local.yaml"
    compiler.Compiler().compile(build_pipeline(cluster=False), package_path=str(path))
    tasks = _docs(path)[0]["root"]["dag"]["tasks"]
    assert "retryPolicy" not in tasks["ingest"]
    assert "retryPolicy" in _docs(COMPILED_PATH)[0]["root"]["dag"]["tasks"]["ingest"]


def test_a_local_pipeline_sets_no_resources_kfp_local_would_warn_about(tmp_path):
    # kfp.local ignores CPU and memory settings and warns about each one on the user's console.
    from kfp import compiler

    from pipelines.pricecast_pipeline import build_pipeline

    path = tmp_path / "local.yaml"
    compiler.Compiler().compile(build_pipeline(cluster=False), package_path=str(path))
    local = _docs(path)[0]["deploymentSpec"]["executors"]
    assert [name for name, ex in local.items() if ex["container"].get("resources")] == []
    cluster = _docs(COMPILED_PATH)[0]["deploymentSpec"]["executors"]
    sized = {name for name, ex in cluster.items() if ex["container"].get("resources")}
    assert sized == {f"exec-{s}" for s in ("validate", "plan", "clean", "features", "train", "drift", "evaluate")}


def test_the_report_gets_the_drift_report_and_a_run_name_and_evaluate_the_plot_tickers():
    spec = _docs(COMPILED_PATH)[0]
    tasks = spec["root"]["dag"]["tasks"]
    report = tasks["report"]["inputs"]
    assert report["artifacts"]["drift_report"]["taskOutputArtifact"] == {
        "outputArtifactKey": "drift_report", "producerTask": "drift"}
    assert report["parameters"]["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_name}}"
    assert report["artifacts"]["window_results"]["taskOutputArtifact"] == {
        "outputArtifactKey": "window_results", "producerTask": "evaluate"}
    assert tasks["evaluate"]["inputs"]["parameters"]["report_tickers"] == {"componentInputParameter": "report_tickers"}


def test_alert_thresholds_default_to_the_monitoring_ones_and_reach_their_stages():
    from pricecast.monitoring.thresholds import Thresholds

    spec = _docs(COMPILED_PATH)[0]
    limits = Thresholds()
    expected = {"min_directional_accuracy": limits.min_directional_accuracy, "max_mape": limits.max_mape,
                "psi_warn": limits.psi_warn, "psi_alert": limits.psi_alert}
    pipeline_defaults = {k: p["defaultValue"] for k, p in spec["root"]["inputDefinitions"]["parameters"].items()}
    assert {k: pipeline_defaults[k] for k in expected} == expected
    # The components' own defaults (literals: KFP copies their source) agree, and the tasks get
    # the pipeline's parameters rather than falling back to them.
    stage_of = {"min_directional_accuracy": "report", "max_mape": "report", "psi_warn": "drift", "psi_alert": "drift"}
    for name, stage in stage_of.items():
        assert spec["components"][f"comp-{stage}"]["inputDefinitions"]["parameters"][name]["defaultValue"] == \
            expected[name], name
        task_input = spec["root"]["dag"]["tasks"][stage]["inputs"]["parameters"][name]
        assert task_input == {"componentInputParameter": name}, (stage, name)



def test_every_pipeline_parameter_can_come_from_a_run_config_and_validate_ignores_the_rest():
    # One config file serves `pricecast run --config` and `pricecast validate --config`: every
    # pipeline parameter is a run-config key, and each is either an ingest option or a key that
    # ingest knows belongs to a later stage (so validate does not call it a typo).
    from cli.pipeline import RUN_PARAMETERS
    from components.ingest.core import PIPELINE_KEYS, SourceSpec

    parameters = set(_docs(COMPILED_PATH)[0]["root"]["inputDefinitions"]["parameters"]) - {"force_from"}
    assert parameters == set(RUN_PARAMETERS)
    ingest_names = {"source_format" if f == "format" else f for f in SourceSpec.model_fields}
    assert parameters - ingest_names - PIPELINE_KEYS == set()


# kfp warns that a task's image is not a Python base image: here it is the project image, whose
# packages are exactly this venv's, which is why the subprocess run is faithful.
@pytest.mark.filterwarnings("ignore:You may be attemping to run a task that uses custom:RuntimeWarning")
def test_the_committed_yaml_itself_runs_end_to_end_under_kfp_local(isolated_store, tmp_path):
    # The exact file users upload to the KFP UI, not the in-memory pipeline `pricecast run`
    # builds: loaded with the SDK and run task by task as subprocesses (its Kubernetes
    # secret/config-map wiring is ignored locally; the store comes from the environment).
    from kfp import local

    from pricecast.registry import RegistryStore

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"))
    pipeline = components.load_component_from_file(str(COMPILED_PATH))
    pipeline(tickers=4, days=320, n_windows=2)
    registry = RegistryStore().load()
    assert registry.active is not None and registry.get(registry.active).decision == "promoted"
    reports = Path(isolated_store.store_url.removeprefix("file://")) / "reports"
    assert sorted(d.name for d in reports.iterdir()) == sorted([registry.active, "latest"])
    # The run's own folder is named after the run (kfp.local: its output directory's name).
    [run_dir] = (tmp_path / "kfp").iterdir()
    assert (reports / registry.active / run_dir.name / "report.html").stat().st_size > 0
