"""Property-based API tests: schemathesis against the running server's own OpenAPI document.

Runs schemathesis' CLI the way a user's CI would, against a real server process: every
operation, valid and invalid generated requests (examples, coverage and fuzzing phases), up to
``MAX_EXAMPLES`` cases per operation with a fixed seed, and all default checks: no 5xx,
documented status codes, content types and response schemas, invalid data rejected with a 4xx,
wrong methods answered 405 with ``Allow``. Two justified settings are in ``schemathesis.toml``.

(The schemathesis pytest plugin is not used: its lazy fixture loader does not run on pytest 9.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import publish_model, running_server

MAX_EXAMPLES = 60
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_contract_violation(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path}/store"
    publish_model(store_url, "v1", seed=11)
    # A small batch limit keeps generated batches (and the run) short; the rules are the same.
    with running_server(store_url, env={"PRICECAST_MAX_BATCH": "16"}) as srv:
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
             f"{srv.url}/openapi.json", "--max-examples", str(MAX_EXAMPLES), "--seed", "1",
             "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
             "--request-timeout", "10", "--no-color", "--report", "junit",
             "--report-junit-path", str(tmp_path / "schemathesis.xml")],
            capture_output=True, text=True, timeout=540, cwd=tmp_path,
        )
        server_log = srv.output()
        operations = sum(len(ops) for ops in srv.get("/openapi.json").json()["paths"].values())
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert f"Tested: {operations}" in run.stdout, run.stdout[-3000:]
    assert "Traceback" not in server_log, server_log[-4000:]
    summary = run.stdout[run.stdout.rfind("Test cases:"):]
    assert " passed" in summary and "failure" not in summary, summary
