"""The runbook stays true: every alert it lists exists and every alert that exists is listed;
every ``pricecast`` command it shows is a real command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from pricecast import monitoring

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RUNBOOK = README[README.index("## Runbook"):]
RULES = ROOT / "monitoring" / "alerts" / "pricecast.rules.yaml"
PIPELINE_ALERTS = {monitoring.ACCURACY_LOW, monitoring.FORECAST_ERROR_HIGH, monitoring.FEATURE_DRIFT,
                   monitoring.FEATURE_SHIFT_KS, monitoring.PIPELINE_SLOW, monitoring.DATA_STALE}
# Command modules the CLI assembles (pricecast/cli.py's _COMMAND_MODULES once wired).
COMMAND_MODULES = ("pricecast.cli_pipeline", "pricecast.cli_data", "pricecast.cli_monitor", "pricecast.cli_canary")


def prometheus_alerts() -> set[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_every_alert_is_in_the_runbook_and_every_listed_alert_exists() -> None:
    known = PIPELINE_ALERTS | prometheus_alerts()
    listed = set(re.findall(r"^\| `(Pricecast\w+)`", RUNBOOK, flags=re.MULTILINE))
    assert listed == known, f"missing from the runbook: {known - listed}; unknown: {listed - known}"


def runbook_commands() -> list[list[str]]:
    """``pricecast`` subcommand paths from code blocks and inline code, without options."""
    text = RUNBOOK.replace("\\\n", " ")
    lines = re.findall(r"^(pricecast [^\n#|]+)", text, flags=re.MULTILINE)
    lines += re.findall(r"`(pricecast [^`]+)`", text)
    paths = set()
    for line in lines:
        words = []
        for word in line.split()[1:]:
            if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        paths.add(tuple(words))
    return sorted(list(p) for p in paths if p)


def test_every_pricecast_command_in_the_runbook_exists() -> None:
    commands = runbook_commands()
    assert ["check", "freshness"] in commands and ["registry", "rollback"] in commands and ["validate"] in commands
    # In a subprocess: registering command groups must not change the app other tests import.
    script = f"""
import importlib, json, sys
from typer.testing import CliRunner
from pricecast import cli
for name in {COMMAND_MODULES!r}:
    if name not in cli._COMMAND_MODULES:
        importlib.import_module(name).register(cli.app)
results = {{" ".join(c): CliRunner().invoke(cli.app, [*c, "--help"]).exit_code for c in {commands!r}}}
print(json.dumps(results))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert {c: code for c, code in results.items() if code != 0} == {}
