"""The compiled pipeline in real containers (kfp.local.DockerRunner) against a real SeaweedFS.

This is the cluster path minus Kubernetes: the YAML `pricecast compile --image` writes, every
task in the project image as uid 1000, store and registry on S3. The ConfigMap and Secret a
cluster injects (k8s/pipeline/) are replaced by the runner's environment.
"""

# No `from __future__ import annotations`: KFP reads the component signature at run time.

from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp import components, dsl, local
from typer.testing import CliRunner

from cli.app import app
from pricecast.registry import RegistryStore
from pricecast.settings import get_settings
from tests.support.seaweed import SeaweedS3, seaweedfs

pytestmark = [
    pytest.mark.docker, pytest.mark.s3, pytest.mark.slow, pytest.mark.timeout(1800),
    pytest.mark.filterwarnings("ignore:.*no effect in the current local runner:UserWarning"),
]

SMALL = {"tickers": 5, "days": 320, "n_windows": 2}


def _pipeline_root(tmp_path: Path) -> Path:
    # Tasks run as the image's uid 1000 and write their outputs into this bind mount.
    root = tmp_path / "kfp-root"
    root.mkdir()
    root.chmod(0o777)
    return root


@pytest.fixture
def s3(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedS3]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        for key, value in server.env("store").items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        yield server
        get_settings.cache_clear()


def test_a_component_runs_in_the_image_through_docker_runner(image: str, tmp_path: Path) -> None:
    def whoami(x: int, out: dsl.Output[dsl.Dataset]) -> int:
        import os
        import sys

        with open(out.path, "w") as fh:
            fh.write(f"{os.getuid()} {sys.prefix}")
        return x + 1

    op = dsl.component(whoami, base_image=image, install_kfp_package=False)
    local.init(runner=local.DockerRunner(network_mode="host"), pipeline_root=str(_pipeline_root(tmp_path)))
    task = op(x=41)

    assert task.outputs["Output"] == 42
    assert Path(task.outputs["out"].path).read_text() == "1000 /opt/venv"


def test_compiled_pipeline_in_containers_ends_with_an_active_model_on_s3(
    image: str, s3: SeaweedS3, tmp_path: Path
) -> None:
    package = tmp_path / "pricecast.yaml"
    compiled = CliRunner().invoke(app, ["compile", "--image", image, "--output", str(package)])
    assert compiled.exit_code == 0, compiled.output
    pipeline = components.load_component_from_file(str(package))

    root = _pipeline_root(tmp_path)
    local.init(runner=local.DockerRunner(network_mode="host", environment=s3.env("store")),
               pipeline_root=str(root), raise_on_error=True)
    pipeline(**SMALL)

    store = RegistryStore(s3.store_url("store"))
    registry = store.load()
    assert registry.active, "no model became active"
    active = registry.get(registry.active)
    assert active.decision == "promoted"
    assert store.fetch_verified(active)  # bytes on S3 match the registry's sha256
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=s3.bucket, Prefix="store/")["Contents"]}
    [run_dir] = root.iterdir()  # the run's report folder is named after it
    assert f"store/reports/{active.version}/{run_dir.name}/report.html" in keys
    # Every task ran in a container as uid 1000, not as a host process.
    outputs = [p for p in root.rglob("*") if p.is_file()]
    assert outputs and {p.stat().st_uid for p in outputs} == {1000}
