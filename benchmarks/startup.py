"""Benchmark: what a pipeline task spends before its work, per stage, and the run it adds up to.

``kfp.local``'s SubprocessRunner starts every task as
``sh -ec 'program_path=$(mktemp -d); printf "%s" "$0" > "$program_path/ephemeral_component.py";
_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main ...'``: a shell, a fresh interpreter, KFP's
executor (with ``_KFP_RUNTIME=true`` only its runtime half), then the component function, whose
body imports the stage's modules. This script measures, in fresh processes:

- **floor**: ``python -c pass``; **executor**: the interpreter plus what the executor and the
  ephemeral module import before the component body runs;
- **per stage**: the executor plus the component body's imports (read from the function's
  ``import`` statements in ``components/<stage>/component.py``): the wall time (best of N), and
  from ``-X importtime`` (each module's self time, best of N) the milliseconds per top-level
  package (pandas, numpy, pyarrow, sklearn, scipy, matplotlib, pandera, pydantic, pricecast...);
  and the wall time of the imports outside the body's nested functions (``compute()``): what a
  task whose checkpoint restores imports;
- **empty task**: a no-op component run through ``kfp.local`` (shell, interpreter, executor, the
  parent's bookkeeping), best of N;
- with ``--run``: ``pricecast run`` at its default size twice on a fresh store (the second run
  restores every stage from its checkpoint, so its tasks are start-up and little else), with each
  task process's wall time and the stage's own compute time from ``stage-metrics.jsonl``.

Prints tables and writes benchmarks/results/startup.{json,md}.

    python benchmarks/startup.py             # imports and the empty task (about a minute)
    python benchmarks/startup.py --run       # and two `pricecast run`s
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STAGES = ("ingest", "validate", "plan", "clean", "features", "train", "drift", "evaluate", "report", "promote")
# What the task process imports before the component body: the executor module and the lines
# KFP writes at the top of ephemeral_component.py.
EXECUTOR = ("import kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n"
            "import kfp.dsl.executor_main\n")
PACKAGES = ("pandas", "numpy", "pyarrow", "sklearn", "scipy", "skops", "matplotlib", "PIL", "pandera",
            "pydantic", "pydantic_core", "pydantic_settings", "fsspec", "requests", "urllib3", "yaml",
            "kfp", "google", "pricecast", "components")
ENV = {**os.environ, "_KFP_RUNTIME": "true"}
_IMPORT_TIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def component_imports(stage: str, outside_compute: bool = False) -> str | None:
    """The ``import`` statements in the body of ``components/<stage>/component.py``'s function.

    With ``outside_compute``, only those outside its nested functions (``compute()``, helpers):
    what a task whose checkpoint restores imports.
    """
    path = ROOT / "components" / stage / "component.py"
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == stage)
    nodes, todo = [], list(function.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            nodes.append(node)
        elif not (outside_compute and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
            todo.extend(ast.iter_child_nodes(node))
    return "\n".join(ast.unparse(n) for n in nodes)


def _wall(argv: list[str], repeats: int, env: dict[str, str] = ENV) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def import_profile(code: str, repeats: int) -> dict[str, float]:
    """Milliseconds per top-level package: each module's self time, best of ``repeats`` runs.

    Best per module, not per run: on a shared machine any one run is slowed somewhere, and a
    module's import does the same work every time.
    """
    best: dict[str, int] = {}
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=ENV,
                             capture_output=True, text=True, check=True)
        seen = collections.Counter()
        for line in out.stderr.splitlines():
            if match := _IMPORT_TIME.match(line):
                seen[match.group(4)] += int(match.group(1))
        for name, us in seen.items():
            best[name] = min(best.get(name, us), us)
    by_package: collections.Counter[str] = collections.Counter()
    for name, us in best.items():
        top = name.partition(".")[0]
        by_package[top if top in PACKAGES else "other"] += us / 1000
    return {k: round(v, 1) for k, v in by_package.most_common()}


def empty_task(repeats: int) -> list[float]:
    """Seconds per no-op component run through kfp.local's SubprocessRunner (in a subprocess)."""
    code = f"""
import json, tempfile, time
from kfp import dsl, local
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=tempfile.mkdtemp())
@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def noop() -> None:
    pass
times = []
for _ in range({repeats}):
    t = time.perf_counter(); noop(); times.append(time.perf_counter() - t)
print(json.dumps(times))
"""
    env = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
    with tempfile.TemporaryDirectory(prefix="pricecast-startup-") as tmp:
        script = Path(tmp) / "noop_task.py"  # KFP reads the component's source from its file
        script.write_text(code)
        out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- pipeline runs
RUNNER = r"""
import json, sys, time
from kfp.local import subprocess_task_handler as handler
records = []
launch = handler.run_local_subprocess
def timed(full_command, env_vars=None):
    task = full_command[full_command.index("--function_to_execute") + 1]
    t = time.time(); code = launch(full_command, env_vars); records.append([task, t, time.time()])
    return code
handler.run_local_subprocess = timed
from pipelines.local_run import run_local
started = time.perf_counter()
outcome = run_local({}, pipeline_root=sys.argv[1])
print(json.dumps({"elapsed_s": outcome.elapsed_s, "decision": outcome.decision, "tasks": records,
                  "script_s": time.perf_counter() - started}))
"""


def pipeline_runs(work: Path) -> list[dict]:
    """Two runs at the default size on a fresh store: computed, then restored from checkpoints."""
    env = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
    env |= {"PRICECAST_STORE_URL": f"file://{work}/store", "PRICECAST_LOG_DIR": str(work / "logs")}
    runs = []
    for label in ("fresh store", "restored"):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", RUNNER, str(work / "kfp")], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        wall = time.perf_counter() - started
        if out.returncode:
            raise RuntimeError(f"pipeline failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        metrics = [json.loads(line) for line in (work / "logs" / "stage-metrics.jsonl").read_text().splitlines()]
        first = min(t[1] for t in result["tasks"])
        tasks = [{"task": name, "start_s": round(t0 - first, 3), "wall_s": round(t1 - t0, 3)}
                 for name, t0, t1 in result["tasks"]]
        runs.append({"run": label, "process_s": round(wall, 2), "pipeline_s": round(result["elapsed_s"], 2),
                     "tasks": tasks, "stage_metrics": metrics[-len(tasks):] if label == "restored" else
                     metrics[:len(metrics)]})
        (work / "logs" / "stage-metrics.jsonl").rename(work / "logs" / f"stage-metrics-{len(runs)}.jsonl")
    return runs


def cli_run(repeats: int) -> list[float]:
    """Seconds of ``pricecast run`` end to end, as ``make run`` starts it, in a fresh copy of nothing:
    the first run on a fresh store, then the restored ones (warm caches)."""
    times = []
    with tempfile.TemporaryDirectory(prefix="pricecast-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
        pricecast = shutil.which("pricecast", path=str(Path(sys.executable).parent)) or "pricecast"
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([pricecast, "run"], cwd=tmp, env=env, check=True, capture_output=True)
            times.append(round(time.perf_counter() - started, 2))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="processes per measurement (best is kept)")
    parser.add_argument("--run", action="store_true", help="also time two pipeline runs and `pricecast run`")
    args = parser.parse_args()
    n = args.repeats

    python = _wall([sys.executable, "-c", "pass"], n)
    executor = _wall([sys.executable, "-c", EXECUTOR], n)
    empty = empty_task(n)
    result: dict = {
        "machine": f"{os.cpu_count()} cores", "repeats": n, "python": sys.version.split()[0],
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "python_ms": round(min(python) * 1000), "executor_ms": round(min(executor) * 1000),
        "empty_task_ms": round(min(empty) * 1000), "empty_task_median_ms": round(statistics.median(empty) * 1000),
        "executor_imports": import_profile(EXECUTOR, n), "stages": {},
    }
    for stage in STAGES:
        imports = component_imports(stage)
        if imports is None:
            continue
        code = EXECUTOR + imports
        wall = _wall([sys.executable, "-c", code], n)
        restored = _wall([sys.executable, "-c", EXECUTOR + component_imports(stage, outside_compute=True)], n)
        result["stages"][stage] = {"imports_ms": round(min(wall) * 1000),
                                   "imports_median_ms": round(statistics.median(wall) * 1000),
                                   "outside_compute_ms": round(min(restored) * 1000),
                                   "by_package_ms": import_profile(code, n)}
        print(stage, result["stages"][stage], flush=True)
    if args.run:
        with tempfile.TemporaryDirectory(prefix="pricecast-startup-") as tmp:
            result["runs"] = pipeline_runs(Path(tmp))
        result["pricecast_run_s"] = cli_run(3)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    table = render(result)
    (RESULTS / "startup.md").write_text(table + "\n")
    print(table)


def render(result: dict) -> str:
    shown = ("pandas", "numpy", "pyarrow", "sklearn", "scipy", "matplotlib", "pandera", "pydantic",
             "fsspec", "requests", "pricecast", "components")
    lines = [
        f"python -c pass: {result['python_ms']} ms; + KFP executor imports: {result['executor_ms']} ms; "
        f"empty task through kfp.local: {result['empty_task_ms']} ms (best of {result['repeats']}, "
        f"median {result['empty_task_median_ms']} ms)",
        "",
        "| stage | start-up ms (best) | median | outside compute ms | " + " | ".join(shown) + " | other |",
        "|---" * (5 + len(shown)) + "|",
    ]
    for stage, s in result["stages"].items():
        pkg = s["by_package_ms"]
        other = sum(v for k, v in pkg.items() if k not in shown)
        lines.append(f"| {stage} | {s['imports_ms']} | {s['imports_median_ms']} | {s.get('outside_compute_ms', '-')} | "
                     + " | ".join(str(round(pkg.get(k, 0))) if pkg.get(k) else "-" for k in shown)
                     + f" | {round(other)} |")
    for run in result.get("runs", []):
        lines += ["", f"**{run['run']}**: pipeline {run['pipeline_s']} s, process {run['process_s']} s", "",
                  "| task | started at s | task wall s |", "|---|---|---|"]
        lines += [f"| {t['task']} | {t['start_s']} | {t['wall_s']} |" for t in run["tasks"]]
    if "pricecast_run_s" in result:
        lines += ["", f"`pricecast run` end to end (fresh store, then restored): {result['pricecast_run_s']} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
