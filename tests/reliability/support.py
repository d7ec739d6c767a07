"""Shared by the fault tests: pipeline runs in subprocesses, and a store-wide integrity check.

``store_problems(store_url)`` is what "nothing half-written is visible" means here: every
checkpoint that has its ``_MANIFEST.json`` (the marker written last) holds every file the
manifest lists, with the listed sha256; ``registry.json`` parses; every registered model's bytes
and metadata.json match the registry's sha256; no temporary file of an atomic write was left
behind. It reads the store through :mod:`pricecast.storage`, so it checks ``file://`` and ``s3://`` stores alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pricecast import storage
from pricecast.errors import PricecastError
from pricecast.registry import Registry, RegistryStore
from tests.pipeline.conftest import SMALL

REPO = Path(__file__).resolve().parents[2]
__all__ = ["REPO", "SMALL", "PipelineProcess", "assert_both_runs_recorded", "registry", "restored_by_stage",
           "stage_metrics", "store_problems", "wait_for_text"]


# --------------------------------------------------------------------------- integrity
def _checkpoint_problems(store_url: str) -> tuple[list[str], int]:
    problems: list[str] = []
    complete = 0
    root = storage.join(store_url, "checkpoints")
    for stage in storage.listdir(root):
        for key in storage.listdir(storage.join(root, stage)):
            if key == "LATEST":
                continue
            url = storage.join(root, stage, key)
            try:
                manifest = json.loads(storage.read_text(storage.join(url, "_MANIFEST.json")))
            except FileNotFoundError:
                continue  # incomplete: ignored by the stage runner, never restored
            complete += 1
            for name, files in manifest["files"].items():
                for rel, sha in files.items():
                    file_url = storage.join(url, name, rel or "_file")
                    try:
                        actual = storage.sha256_bytes(storage.read_bytes(file_url))
                    except FileNotFoundError:
                        problems.append(f"{stage}/{key}: {name}/{rel or '_file'} is listed but missing")
                        continue
                    if actual != sha:
                        problems.append(f"{stage}/{key}: {name}/{rel or '_file'} has sha256 {actual[:12]}, "
                                        f"the manifest says {sha[:12]}")
    return problems, complete


def store_problems(store_url: str) -> list[str]:
    """Everything half-written or inconsistent a reader of ``store_url`` could see (empty: none)."""
    fs, path = storage.filesystem(store_url)
    fs.invalidate_cache()  # other processes wrote the store; s3fs caches listings
    problems, complete = _checkpoint_problems(store_url)
    if complete == 0:
        problems.append("no complete checkpoint at all: the check proved nothing")
    try:
        reg = RegistryStore(store_url).load()
    except PricecastError as exc:
        return [*problems, f"registry.json: {exc}"]
    store = RegistryStore(store_url)
    for mv in reg.versions.values():
        try:
            store.fetch_verified(mv)
            store.fetch_verified_metadata(mv)
        except PricecastError as exc:
            problems.append(f"model {mv.version}: {exc.problem}")
    leftovers = [p for p in fs.find(path) if p.endswith(".tmp")]
    problems += [f"temporary file left behind: {p}" for p in leftovers]
    return problems


def registry(store_url: str) -> Registry:
    """The registry as it is in the store now (listings re-read)."""
    storage.filesystem(store_url)[0].invalidate_cache()
    return RegistryStore(store_url).load()


# --------------------------------------------------------------------------- runs in subprocesses
def stage_metrics(log_dir: Path) -> list[dict[str, Any]]:
    """The stage runner's ``stage-metrics.jsonl`` lines, oldest first."""
    path = Path(log_dir) / "stage-metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def restored_by_stage(log_dir: Path) -> dict[str, bool]:
    """stage -> whether its last run in ``log_dir`` was restored from a checkpoint."""
    return {m["stage"]: m["restored"] for m in stage_metrics(log_dir)}


def wait_for_text(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> float:
    """Poll ``path`` until it contains ``text``; seconds waited. Fails if ``proc`` ends first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if path.exists() and text in path.read_text(errors="replace"):
            return time.monotonic() - started
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {path.name} said {text!r}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not say {text!r} within {timeout:.0f}s")


@dataclass
class PipelineProcess:
    """``run_local`` in its own Python process (``python -m tests.reliability.run_pipeline``).

    Each run gets its own log directory and pipeline root, as two pipelines on two machines do;
    only the store is shared.
    """

    proc: subprocess.Popen
    workdir: Path

    @classmethod
    def start(cls, workdir: Path, arguments: dict[str, Any], env: dict[str, str] | None = None) -> PipelineProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {}), "PRICECAST_LOG_DIR": str(workdir / "logs"), "PYTHONUNBUFFERED": "1"}
        out = open(workdir / "output.txt", "wb")  # noqa: SIM115 - the child owns it from here on
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.run_pipeline", json.dumps(arguments), str(workdir / "kfp")],
                cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            out.close()
        return cls(proc, workdir)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def wait(self, timeout: float = 240) -> dict[str, Any]:
        """The run's outcome (``run_pipeline``'s last output line); kills the run on timeout."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        output = (self.workdir / "output.txt").read_text(errors="replace")
        # The JSON line may follow KFP's own output on the same terminal line.
        lines = [line[line.index('{"'):] for line in output.splitlines() if '{"' in line]
        if self.proc.returncode != 0 or not lines:
            raise AssertionError(f"run in {self.workdir} exited {self.proc.returncode}:\n{output[-4000:]}")
        return json.loads(lines[-1])

    def trained_version(self) -> str:
        """The version this run's own train task produced (from its KFP outputs, not the registry)."""
        infos = sorted((self.workdir / "kfp").rglob("train/model_info"))
        assert len(infos) == 1, infos
        return json.loads(infos[0].read_text())["version"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


def assert_both_runs_recorded(store_url: str, runs: list[PipelineProcess], outcomes: list[dict[str, Any]]) -> None:
    """Both runs' versions in the registry, two revisions, active = last promotion, no two
    promotions from the same active model, store whole."""
    versions = [run.trained_version() for run in runs]
    assert len(set(versions)) == 2, versions
    reg = registry(store_url)
    assert set(reg.versions) == set(versions), "an update was lost"
    assert reg.revision == 2 and len(reg.events) == 2, reg.events
    promoted = [e.version for e in reg.events if e.action == "promote"]
    assert reg.active == (promoted[-1] if promoted else None)
    # The gate is a precondition: two runs gated against the same active model cannot both be
    # promoted (the later one was never compared with the earlier); it waits as pending instead.
    moved_from = [e.previous_active for e in reg.events if e.action == "promote"]
    assert len(moved_from) == len(set(moved_from)), reg.events
    for run, outcome, version in zip(runs, outcomes, versions, strict=True):
        # Each run reports its own model, not whichever run registered last.
        assert outcome["version"] == version, (run.workdir, outcome["version"], version)
        assert outcome["decision"] == reg.versions[version].decision
    assert store_problems(store_url) == []
