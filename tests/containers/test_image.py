"""The project image: the CLI as entrypoint, uid 1000, the venv's python3, nothing to build with."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.docker import docker_run

# The first test that needs the image may build it from scratch (several minutes here).
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]


def test_cli_is_the_entrypoint_and_runs_as_uid_1000(image: str) -> None:
    helped = docker_run(image, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: pricecast" in helped.stdout and "compile" in helped.stdout

    ident = docker_run(image, "id", "-u")
    assert ident.stdout.strip() == "1000"
    config = json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                                       text=True, check=True).stdout)[0]["Config"]
    assert config["User"] == "1000:1000"


def test_subcommands_go_to_pricecast_and_programs_run_as_given(image: str) -> None:
    registry_help = docker_run(image, "registry", "--help")
    assert registry_help.returncode == 0 and "rollback" in registry_help.stdout
    # This is how kfp.local.DockerRunner starts a task: the command as arguments.
    shell = docker_run(image, "sh", "-ec", 'echo "ran $0 $1"', "a", "b")
    assert shell.stdout.strip() == "ran a b"


def test_python3_is_the_venv_with_the_project_installed(image: str) -> None:
    probe = docker_run(image, "sh", "-c", 'command -v python3; python3 -c "import sys, pricecast, '
                       'components.features.core, pipelines.pricecast_pipeline, kfp.dsl.executor_main; '
                       'print(sys.prefix)"')
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["/opt/venv/bin/python3", "/opt/venv"]


def test_no_compiler_and_no_installer_or_tests_in_the_venv(image: str) -> None:
    probe = docker_run(image, "sh", "-c", "for t in gcc cc c++ make; do command -v $t; done; "
                       "ls /opt/venv/bin/pip* 2>/dev/null; ls -d /opt/venv/lib/python3.11/site-packages/"
                       "components/*/tests /opt/venv/lib/python3.11/site-packages/pandas/tests 2>/dev/null; true")
    assert probe.stdout.strip() == ""


def test_home_is_writable_for_logs_and_the_local_store(image: str) -> None:
    probe = docker_run(image, "sh", "-c", "mkdir -p logs .pricecast && touch logs/x .pricecast/x && pwd")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "/home/pricecast"


def test_a_source_change_rebuilds_only_the_project_layer(image: str, tmp_path) -> None:
    import shutil

    from tests.support.docker import DOCKERFILE, REPO_ROOT, build_image, context_files

    def layers(tag: str) -> list[str]:
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", tag],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    context = tmp_path / "context"
    for rel in [DOCKERFILE, ".dockerignore", *context_files()]:
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, context / rel)
    tags = ("pricecast:test-layers-before", "pricecast:test-layers-after")
    try:
        # Both builds here, so the comparison does not depend on what the cache held before.
        build_image(tags[0], root=context, reuse=False)
        module = context / "pricecast" / "__init__.py"
        module.write_text(module.read_text() + "\n# a source-only change\n")
        build_image(tags[1], root=context, reuse=False)
        before, after = layers(tags[0]), layers(tags[1])
        assert len(before) == len(after)
        # Last layers: venv (deps), project script, project packages, entrypoint. Only the
        # project ones may differ; base, user and the large dependency venv must be reused.
        assert before[:-3] == after[:-3], "a source change rebuilt the dependency layer"
        assert before[-3:] != after[-3:]
    finally:
        subprocess.run(["docker", "image", "rm", "-f", *tags], capture_output=True)
