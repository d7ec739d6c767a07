"""``python -m tests.reliability.run_pipeline ARGUMENTS_JSON PIPELINE_ROOT``: one pipeline run.

The fault tests start pipelines as separate processes (two at once on one store, or one to
interrupt): this calls :func:`pipelines.local_run.run_local` and prints the outcome as one JSON
line, or the stage's problem and fix with the error's exit code.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from pipelines.local_run import run_local
from pricecast.errors import PricecastError


def main(argv: list[str]) -> int:
    arguments, pipeline_root = json.loads(argv[0]), argv[1]
    try:
        outcome = run_local(arguments, pipeline_root=pipeline_root)
    except PricecastError as exc:
        print(json.dumps({"error": type(exc).__name__, "problem": exc.problem, "fix": exc.fix,
                          "exit_code": exc.exit_code}), flush=True)
        return exc.exit_code
    print(json.dumps(dataclasses.asdict(outcome), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
