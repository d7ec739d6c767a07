"""The project image: the CLI as entrypoint, uid 1000, the venv's python3, nothing to build with."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.support.docker import BASE_IMAGE, docker_run, image_excluded_packages, image_size_bytes

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
                       'components.features.core, components.train.component, serving.main, kfp.dsl.executor_main; '
                       'print(sys.prefix)"')
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["/opt/venv/bin/python3", "/opt/venv"]


# Runs in the image: every import statement in the installed project (module level and inside
# functions, where the heavy ones are), tried one by one. ``from M import N`` counts N when it
# is a submodule. Prints {statement: error} for the ones that fail.
_IMPORT_EVERYTHING = r"""
import ast, importlib, json, pathlib
import pricecast, components, serving, pipelines, cli
names = set()
for pkg in (pricecast, components, serving, pipelines, cli):
    for path in pathlib.Path(pkg.__path__[0]).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update((a.name, None) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.update((node.module, a.name) for a in node.names)
failed = {}
for module, name in sorted(names, key=str):
    try:
        parent = importlib.import_module(module)
        if name and name != "*" and not hasattr(parent, name):
            importlib.import_module(f"{module}.{name}")
    except Exception as exc:
        failed[f"{module}.{name}" if name else module] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failed))
"""
# kfp's client half (Dockerfile.base): only `pricecast compile/run/submit/schedule` (and
# `check run-time --host`) import it,
# and those run from the project venv. Anything else failing to import in the image is a bug.
_CLIENT_SIDE = re.compile(r"^(kfp\.(compiler|local|kubernetes|client)|pipelines\.pricecast_pipeline)(\.|$)")


def test_every_import_of_the_project_works_in_the_image_but_the_kfp_client(image: str) -> None:
    probe = docker_run(image, "python3", "-c", _IMPORT_EVERYTHING, timeout=600)
    assert probe.returncode == 0, probe.stderr
    failed = json.loads(probe.stdout.strip().splitlines()[-1])
    assert {k: v for k, v in failed.items() if not _CLIENT_SIDE.match(k)} == {}
    assert "kfp.compiler" in failed  # the client really is absent


def test_the_kfp_client_packages_stay_out_and_the_client_commands_say_where_to_run(image: str) -> None:
    names = image_excluded_packages()
    present = docker_run(image, "python3", "-c", "import importlib.metadata as md, sys\n"
                         "for n in sys.argv[1:]:\n"
                         "    try: md.distribution(n); print(n)\n"
                         "    except md.PackageNotFoundError: pass", *names)
    assert present.returncode == 0, present.stderr
    assert present.stdout.split() == []
    for command in (["compile"], ["run"], ["submit", "--host", "http://127.0.0.1:9"],
                    ["check", "run-time", "--host", "http://127.0.0.1:9"]):
        done = docker_run(image, *command)
        said = " ".join(done.stderr.split())  # rich wraps at 80 columns without a terminal
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "needs the KFP client" in said and "pip install -e ." in said, said


# The pricecast layers (the image minus its base): 409 MB when this budget was set (the venv
# 408 MB after tools/image-deps.sh, the project 1.3 MB); 635 MB before. 450 MB leaves 10 % for
# dependency updates and still fails on a real regression: the KFP client back in (~50 MB),
# unstripped shared objects (~90 MB), pyarrow's Flight and S3 (~40 MB). It also keeps the image
# under the 700 MB target on the real python:3.11-slim (125-150 MB), which needs <= 550 MB.
PRICECAST_LAYERS_BUDGET_MB = 450


def test_the_pricecast_layers_stay_within_their_size_budget(image: str) -> None:
    ours = (image_size_bytes(image) - image_size_bytes(BASE_IMAGE)) / 1e6
    assert ours <= PRICECAST_LAYERS_BUDGET_MB, (
        f"the pricecast layers of {image} are {ours:.0f} MB, over the {PRICECAST_LAYERS_BUDGET_MB} MB budget: "
        "see what grew with `docker run --rm --entrypoint sh IMAGE -c 'du -sm "
        "/opt/venv/lib/python3.11/site-packages/* | sort -n | tail'`")


def test_no_compiler_and_no_installer_or_tests_in_the_venv(image: str) -> None:
    probe = docker_run(image, "sh", "-c", "for t in gcc cc c++ make strip readelf; do command -v $t; done; "
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
    tags = (f"{image}-layers-before", f"{image}-layers-after")  # beside PRICECAST_TEST_IMAGE, not over another run's
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
