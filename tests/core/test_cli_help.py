"""Help a newcomer can read (issue 13, item 7): no `<bool>` after flags, no raw reST, defaults shown."""

from __future__ import annotations

import re

import pytest
import typer
import yaml
from typer.testing import CliRunner

from cli.app import app


def _command_paths(command: typer.core.TyperCommand | typer.core.TyperGroup, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if hasattr(command, "commands"):  # a group (typer 0.29 groups are not click.Group subclasses)
        for name, sub in command.commands.items():
            paths += _command_paths(sub, (*path, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "pricecast")
def test_help_has_no_bool_markers_and_no_raw_rest(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "``" not in result.output


def test_run_help_shows_the_pipelines_generator_defaults() -> None:
    from pipelines.pricecast_pipeline import COMPILED_PATH

    parameters = next(yaml.safe_load_all(COMPILED_PATH.read_text()))["root"]["inputDefinitions"]["parameters"]
    text = " ".join(CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output.split())
    for option in ("tickers", "days", "seed"):
        shown = re.search(rf"--{option} .*?\(default (\d+)\)", text)
        assert shown, f"--{option} shows no default"
        assert int(shown.group(1)) == parameters[option]["defaultValue"]
