"""The stage runner: logging, timing, checkpoints and resume for every pipeline stage.

A stage's KFP wrapper hands :func:`run_stage` its parameters, its input and output paths and a
``compute`` callback that calls the pure core. The runner:

1. logs start, parameters, end, elapsed time, rows in/out, and any exception with its traceback;
2. derives a checkpoint key from the stage name, its code (the import closure of its module and
   the versions of the libraries that shape its output: :mod:`pricecast.fingerprint`), its
   parameters and the sha256 of its inputs (remembered on each file a stage writes, see
   :func:`path_digest`), and, when ``<store>/checkpoints/<stage>/<key>/``
   holds a complete checkpoint, restores the outputs from it instead of recomputing (idempotent
   reruns);
3. after a successful compute, uploads the outputs and then, last, a manifest: a checkpoint
   without its manifest is incomplete and ignored, so a crash mid-upload is harmless;
4. moves ``<store>/checkpoints/<stage>/LATEST`` to the key this run used, computed or restored
   (data A, then B, then A again must leave A as LATEST): ``pricecast run --from STAGE``
   restores every earlier stage from its LATEST checkpoint ("reuse" mode). LATEST means "last
   good": a stage whose output is only good once a later stage accepts it (ingest's raw data,
   good once validate passes it) runs with ``advance_latest=False`` and that later stage calls
   :func:`mark_latest`, so a bad file never becomes what ``--from validate`` resumes from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import resource
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pricecast import logs, process_exit, storage
from pricecast.errors import PricecastError
from pricecast.fingerprint import code_fingerprint
from pricecast.settings import get_settings

STAGES: tuple[str, ...] = (
    "ingest", "validate", "plan", "clean", "features", "train", "drift", "evaluate", "report", "promote",
)
Mode = Literal["auto", "force", "reuse", "off"]


def shard_stage(stage: str, shard: int, shards: int) -> str:
    """The name a stage's shard logs and checkpoints under: its own LATEST pointer per shard.

    One shard keeps the plain stage name, so small data logs and resumes as it always did.
    """
    return stage if shards <= 1 else f"{stage}-s{int(shard)}"


def base_stage(name: str) -> str:
    """The stage a shard's name belongs to: ``validate-s3`` is validate (the inverse of :func:`shard_stage`)."""
    base, _, shard = name.rpartition("-s")
    return base if base and shard.isdigit() else name


def mode_for(stage: str, force_from: str) -> Mode:
    """How ``stage`` treats checkpoints when the run starts at ``force_from`` ('' = whole run)."""
    if not force_from:
        return "auto"
    if force_from not in STAGES:
        raise PricecastError(
            f"Unknown stage {force_from!r} for --from.", f"Use one of: {', '.join(STAGES)}."
        )
    return "reuse" if STAGES.index(stage) < STAGES.index(force_from) else "force"


@dataclasses.dataclass
class StageContext:
    """What a compute callback gets: a logger and a place to report rows and extras."""

    stage: str
    params: Mapping[str, Any]
    log: logging.Logger
    rows_in: int | None = None
    rows_out: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def record(self, rows_in: int | None = None, rows_out: int | None = None, **extra: Any) -> None:
        if rows_in is not None:
            self.rows_in = int(rows_in)
        if rows_out is not None:
            self.rows_out = int(rows_out)
        self.extra.update(extra)


@dataclasses.dataclass(frozen=True)
class StageResult:
    stage: str
    key: str
    restored: bool
    rows_in: int | None
    rows_out: int | None
    elapsed_s: float
    extra: dict[str, Any]


# --------------------------------------------------------------------------- hashing
# A checkpoint key names its inputs by their sha256. The stage (or writer) that wrote a file
# keeps its digest on it (storage.remember_sha256), so the next stage reads the digest instead of
# hashing the file again: 5 M rows of features are 500 MB, which train, evaluate and drift each
# hashed (~0.4 s apiece). A file whose size or time changed, one copied elsewhere (a KFP pod
# downloads its inputs) or a file system without extended attributes is hashed as before.
def _file_digest(path: Path) -> str:
    return storage.remembered_sha256(path) or storage.sha256_file(path)


def path_digest(path: str | Path) -> str:
    """sha256 of a file, or of a directory's relative names and file digests."""
    path = Path(path)
    if path.is_file():
        return _file_digest(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(_file_digest(file).encode())
    return digest.hexdigest()


def checkpoint_key(stage: str, code: str, params: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    material = {
        "stage": stage,
        "code": code,
        "params": dict(sorted(params.items())),
        "inputs": {name: path_digest(p) for name, p in sorted(inputs.items())},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- checkpoints
def _files_of(path: Path) -> list[tuple[str, Path]]:
    if path.is_file():
        return [("", path)]
    return [(str(p.relative_to(path)), p) for p in sorted(path.rglob("*")) if p.is_file()]


def _save_checkpoint(url: str, outputs: Mapping[str, str], manifest: dict[str, Any]) -> None:
    files: dict[str, dict[str, str]] = {}
    for name, out in outputs.items():
        out_path = Path(out)
        entries: dict[str, str] = {}
        for rel, file in _files_of(out_path):
            # Shared, not copied, on a local store: outputs are written once (by rename), and
            # a restore checks every file's sha256 against the manifest.
            storage.put_file(file, storage.join(url, name, rel or "_file"), share=True)
            # The writer's own digest when it kept one (frames.BlockWriter hashes as it writes):
            # the bytes are not read twice. A restore always reads them.
            entries[rel] = storage.remembered_sha256(file) or storage.sha256_file(file)
            storage.remember_sha256(file, entries[rel])
        files[name] = entries
    manifest = {**manifest, "files": files}
    # The manifest goes last: its presence is what makes the checkpoint complete.
    storage.write_text(storage.join(url, "_MANIFEST.json"), json.dumps(manifest, indent=2))


def _load_manifest(url: str) -> dict[str, Any] | None:
    try:
        return json.loads(storage.read_text(storage.join(url, "_MANIFEST.json")))
    except FileNotFoundError:
        return None


def _restore_checkpoint(url: str, outputs: Mapping[str, str], manifest: Mapping[str, Any]) -> bool:
    """Copy the checkpoint's files to the output paths; False if anything is missing or corrupt."""
    files = manifest.get("files", {})
    if set(files) != set(outputs):
        return False
    for name, out in outputs.items():
        out_path = Path(out)
        for rel, sha in files[name].items():
            dest = out_path if rel == "" else out_path / rel
            try:
                storage.get_file(storage.join(url, name, rel or "_file"), dest, share=True)
            except FileNotFoundError:
                return False
            if storage.sha256_file(dest) != sha:
                return False
            storage.remember_sha256(dest, sha)
    return True


def mark_latest(stage: str, key: str, store_url: str | None = None) -> None:
    """Make ``key`` the checkpoint ``--from`` restores ``stage`` from (a no-op without a key)."""
    if key:
        storage.write_text(storage.join(store_url or get_settings().store_url, "checkpoints", stage, "LATEST"), key)


def latest_checkpoint(stage: str, store_url: str | None = None) -> str | None:
    store_url = store_url or get_settings().store_url
    try:
        return storage.read_text(storage.join(store_url, "checkpoints", stage, "LATEST")).strip() or None
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- runner
def run_stage(
    stage: str,
    *,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    compute: Callable[[StageContext], None],
    code: str = "",
    mode: Mode = "auto",
    store_url: str | None = None,
    keep_on_failure: tuple[str, ...] = (),
    advance_latest: bool = True,
) -> StageResult:
    """Run one stage with logging and checkpoints. See the module docstring for the contract."""
    if os.environ.get("_KFP_RUNTIME") == "true":  # a KFP task: its process ends with this stage
        process_exit.skip_final_collection()
    settings = get_settings()
    store_url = store_url or settings.store_url
    log = logs.configure(stage, settings)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    failure_path(settings.log_dir, stage).unlink(missing_ok=True)
    log.info("START %s at %s mode=%s params=%s", stage, started_at, mode, json.dumps(dict(params), default=str))
    ctx = StageContext(stage=stage, params=params, log=log)
    key = ""
    try:
        key = checkpoint_key(stage, code, params, inputs) if mode != "off" else ""
        if mode == "reuse":
            key = latest_checkpoint(stage, store_url) or key
        ckpt_url = storage.join(store_url, "checkpoints", stage, key) if key else ""

        if mode in ("auto", "reuse") and key:
            manifest = _load_manifest(ckpt_url)
            if manifest and _restore_checkpoint(ckpt_url, outputs, manifest):
                # A restore is this run's output as much as a compute is: LATEST must follow it,
                # or data A, then B, then A again leaves `--from` resuming from B.
                if advance_latest and mode == "auto":
                    mark_latest(stage, key, store_url)
                elapsed = time.perf_counter() - started
                log.info(
                    "END %s: restored checkpoint %s (nothing recomputed) rows_in=%s rows_out=%s elapsed=%.3fs",
                    stage, key, manifest.get("rows_in"), manifest.get("rows_out"), elapsed,
                )
                _append_metrics(settings.log_dir, {
                    "stage": stage, "at": started_at, "restored": True, "elapsed_s": round(elapsed, 3),
                    "rows_in": manifest.get("rows_in"), "rows_out": manifest.get("rows_out"),
                    "peak_rss_mb": round(peak_rss_mb(), 1)})
                return StageResult(stage, key, True, manifest.get("rows_in"), manifest.get("rows_out"),
                                   elapsed, manifest.get("extra", {}))
            if mode == "reuse":
                log.warning("No usable checkpoint for %s; computing it.", stage)

        for out in outputs.values():
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            _release(Path(out))
        compute(ctx)
        elapsed = time.perf_counter() - started
        if key:
            manifest = {
                "stage": stage, "key": key, "params": dict(params), "created_at": started_at,
                "rows_in": ctx.rows_in, "rows_out": ctx.rows_out, "extra": ctx.extra,
                "elapsed_s": round(elapsed, 3),
            }
            _save_checkpoint(ckpt_url, outputs, manifest)
            if advance_latest:
                mark_latest(stage, key, store_url)
        log.info(
            "END %s: rows_in=%s rows_out=%s elapsed=%.3fs peak_rss=%.0fMB checkpoint=%s extra=%s",
            stage, ctx.rows_in, ctx.rows_out, elapsed, peak_rss_mb(), key or "-",
            json.dumps(ctx.extra, default=str),
        )
        _append_metrics(settings.log_dir, {
            "stage": stage, "at": started_at, "restored": False, "elapsed_s": round(elapsed, 3),
            "rows_in": ctx.rows_in, "rows_out": ctx.rows_out, "peak_rss_mb": round(peak_rss_mb(), 1)})
        return StageResult(stage, key, False, ctx.rows_in, ctx.rows_out, elapsed, ctx.extra)
    except PricecastError as exc:
        log.error("FAILED %s after %.3fs: %s\n%s", stage, time.perf_counter() - started, exc,
                  traceback.format_exc())
        _discard_partial_outputs(outputs, keep_on_failure)
        _write_failure(settings.log_dir, stage, exc)
        raise
    except Exception as exc:
        log.exception("FAILED %s after %.3fs with an unexpected error: %s", stage,
                      time.perf_counter() - started, exc)
        _discard_partial_outputs(outputs, keep_on_failure)
        _write_failure(settings.log_dir, stage, exc)
        raise


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _append_metrics(log_dir: Path, record: dict[str, Any]) -> None:
    """One JSON line per stage run: what benchmarks and run-time monitoring read."""
    try:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(log_dir) / "stage-metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
    except OSError:
        pass


def failure_path(log_dir: Path, stage: str) -> Path:
    return Path(log_dir) / f"{stage}.failure.json"


def _write_failure(log_dir: Path, stage: str, exc: BaseException) -> None:
    """Leave the failure where ``pricecast run`` can show it: the stage runs in another process."""
    record = {
        "stage": stage,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "error": type(exc).__name__,
        "problem": getattr(exc, "problem", str(exc)),
        "fix": getattr(exc, "fix", "See the stage log for the stack trace."),
        "exit_code": getattr(exc, "exit_code", 1),
    }
    try:
        failure_path(log_dir, stage).parent.mkdir(parents=True, exist_ok=True)
        failure_path(log_dir, stage).write_text(json.dumps(record, indent=2))
    except OSError:
        pass


def _release(path: Path) -> None:
    """Unlink what a recompute will rewrite: an output file (or a file of an output directory)
    may be a hard link shared with a checkpoint (``storage.put_file``'s share), and a compute
    that writes in place (``Path.write_text``) must make a new file, not change the checkpoint."""
    for _, file in _files_of(path) if path.exists() else []:
        file.unlink(missing_ok=True)


def _discard_partial_outputs(outputs: Mapping[str, str], keep: tuple[str, ...]) -> None:
    """A failed stage leaves no half-written output behind for KFP to upload or a reader to see.

    ``keep`` names outputs that explain the failure (validate's schema diff) and must survive.
    """
    for name, out in outputs.items():
        if name in keep:
            continue
        path = Path(out)
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass


__all__ = [
    "STAGES", "StageContext", "StageResult", "checkpoint_key", "code_fingerprint",
    "base_stage", "latest_checkpoint", "mark_latest", "mode_for", "path_digest", "run_stage", "shard_stage",
]
