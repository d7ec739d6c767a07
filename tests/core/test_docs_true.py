"""The README and docs a newcomer follows name real commands and say what they do (issue 13, items 6, 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pricecast.canary.analysis import EXIT_CODES
from cli.app import app

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "serving" / "README.md"]
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
# `pricecast X` where a command starts: a line, a code span, after a pipe or `&&`, or a path to the
# venv's script (not `helm install pricecast …` or `-n pricecast create`: a release and a namespace).
COMMAND = re.compile(r"(?:^\s*|^`|(?:&&|\||;)\s*|bin/)pricecast ([a-z][a-z-]*)", re.M)


def _top_level_commands() -> set[str]:
    return set(typer.main.get_command(app).commands)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_pricecast_command_in_the_docs_exists(doc: Path) -> None:
    named = {m.group(1) for code in CODE.findall(doc.read_text(encoding="utf-8"))
             for line in code.strip("`").splitlines() for m in COMMAND.finditer(line)}
    assert named, f"{doc} names no pricecast command"
    assert named - _top_level_commands() == set(), f"{doc} names commands that do not exist"


def test_the_readme_shows_how_to_serve_locally_and_links_the_server_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Serve it locally", 1)[1].split("\n## ", 1)[0]
    for what in ("pricecast serve", "/v1/models/pricecast:predict", "/v2/models/pricecast/infer", "/metrics",
                 "](serving/README.md)"):
        assert what in section, what


def test_the_readme_canary_example_says_what_share_it_really_gets() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [start] = [line for line in readme.splitlines() if line.startswith("pricecast canary start")]
    assert "--stable-replicas 9" in start  # 1 canary pod next to 9 stable: 10 %
    assert "about 33 %" in readme  # what the same command gives on the chart's 2 stable pods


def test_every_canary_analyze_exit_code_is_documented() -> None:
    codes = {*EXIT_CODES.values(), 2, 3}  # verdicts, bad options, Prometheus unreachable
    help_text = " ".join(CliRunner().invoke(app, ["canary", "analyze", "--help"], env={"COLUMNS": "200"}).output.split())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    canary_block = readme.split("pricecast canary analyze --prometheus", 1)[1].split("```", 1)[0]
    for code in codes:
        assert re.search(rf"\b{code} ", help_text.split("Exit codes:", 1)[1]), f"--help lacks exit {code}"
        assert re.search(rf"\b{code}: ", canary_block), f"README lacks exit {code}"
