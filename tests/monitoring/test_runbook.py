"""The runbook stays true: every alert it lists exists and every alert that exists is listed;
every ``pricecast`` command it shows is a real command, and every option it uses with one is in
that command's ``--help`` (a renamed option fails here, not during an incident)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pricecast.monitoring import checks

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RUNBOOK = README[README.index("## Runbook"):]
RULES = ROOT / "delivery" / "monitoring" / "alerts" / "pricecast.rules.yaml"
PIPELINE_ALERTS = {checks.ACCURACY_LOW, checks.FORECAST_ERROR_HIGH, checks.FEATURE_DRIFT,
                   checks.FEATURE_SHIFT_KS, checks.PIPELINE_SLOW, checks.DATA_STALE}


def prometheus_alerts() -> set[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_every_alert_is_in_the_runbook_and_every_listed_alert_exists() -> None:
    known = PIPELINE_ALERTS | prometheus_alerts()
    listed = set(re.findall(r"^\| `(Pricecast\w+)`", RUNBOOK, flags=re.MULTILINE))
    assert listed == known, f"missing from the runbook: {known - listed}; unknown: {listed - known}"


def runbook_command_lines() -> list[str]:
    """Every ``pricecast ...`` command line of the runbook: code blocks (continuations joined,
    comments and pipes cut) and inline code."""
    text = RUNBOOK.replace("\\\n", " ")
    lines = re.findall(r"^(pricecast [^\n#|]+)", text, flags=re.MULTILINE)
    lines += re.findall(r"`(pricecast [^`]+)`", text)
    return [line.strip() for line in lines]


def parse_command(line: str) -> tuple[tuple[str, ...], set[str]]:
    """(subcommand path, long options used) of one command line, e.g.
    ``pricecast check run-time --max-seconds 1800`` -> (("check", "run-time"), {"--max-seconds"})."""
    try:
        words = shlex.split(line)[1:]
    except ValueError:  # an unbalanced quote in prose
        words = line.split()[1:]
    path: list[str] = []
    for word in words:
        if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        path.append(word)
    options = {word.split("=", 1)[0] for word in words if word.startswith("--")}
    return tuple(path), options


def runbook_commands() -> dict[tuple[str, ...], set[str]]:
    """Subcommand path -> every long option the runbook uses with it."""
    commands: dict[tuple[str, ...], set[str]] = {}
    for line in runbook_command_lines():
        path, options = parse_command(line)
        if path:
            commands.setdefault(path, set()).update(options)
    return commands


def help_options(help_text: str) -> set[str]:
    """The options a ``--help`` page lists: the leading ``-x`` / ``--name`` words of each row
    (rich's boxed table, ``*`` marking a required one, or click's plain list), not options its
    descriptions mention."""
    options = set()
    for row in help_text.splitlines():
        words = re.split(r"[\s,]+", row.strip(" │|*"))
        for word in words:
            if not word.startswith("-"):
                break
            options.add(word.split("=", 1)[0])
    return {o for o in options if o.startswith("--")}


@pytest.fixture(scope="module")
def helps() -> dict[str, dict]:
    """``--help`` of every runbook command: exit code and page, from a subprocess."""
    commands = [list(path) for path in runbook_commands()]
    # In a subprocess with a wide terminal, so rich never wraps or shortens an option's name.
    script = f"""
import json
from typer.testing import CliRunner
from cli.app import app
results = {{}}
for command in {commands!r}:
    done = CliRunner().invoke(app, [*command, "--help"])
    results[" ".join(command)] = {{"exit_code": done.exit_code, "output": done.output}}
print(json.dumps(results))
"""
    env = {**os.environ, "COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_pricecast_command_in_the_runbook_exists(helps: dict[str, dict]) -> None:
    assert {"check freshness", "registry rollback", "validate", "run"} <= set(helps)
    assert {c: h["exit_code"] for c, h in helps.items() if h["exit_code"] != 0} == {}


def test_every_option_the_runbook_uses_is_in_its_commands_help(helps: dict[str, dict]) -> None:
    used = runbook_commands()
    assert used[("check", "freshness")] >= {"--input", "--date-format", "--max-age-days", "--fail-on"}
    unknown = {" ".join(path): sorted(options - help_options(helps[" ".join(path)]["output"]))
               for path, options in used.items()}
    assert {c: o for c, o in unknown.items() if o} == {}


def test_a_renamed_option_would_fail_the_check(helps: dict[str, dict]) -> None:
    listed = help_options(helps["check run-time"]["output"])
    assert {"--max-seconds", "--log-dir", "--thresholds", "--fail-on", "--json", "--help"} <= listed
    path, options = parse_command('pricecast check run-time --max-secs 1800 --thresholds "my limits.yaml"')
    assert path == ("check", "run-time") and options - listed == {"--max-secs"}
    # Options only mentioned in a description do not count as listed.
    assert help_options("│ *  --input  <str>  Map the column with --date-column. │") == {"--input"}
