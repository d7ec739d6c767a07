"""Run the pipeline on this machine through ``kfp.local`` (the embedded default: no cluster).

``run_local`` calls the same pipeline function a cluster runs, with
``SubprocessRunner(use_venv=False)`` (each task a subprocess of this Python) or, for the image,
``DockerRunner``. KFP's own per-task chatter goes to ``<log_dir>/run-<timestamp>.log``; the
caller gets task events (running / succeeded / failed) to draw progress from.

A finished run's wall time is checked against ``max_run_time_s`` here, where it is known (a
component never sees the whole run): over it, the ``PricecastPipelineSlow`` alert goes to the
log and the webhook like every other alert.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.parameters import check_arguments
from pricecast import storage
from pricecast.errors import PricecastError
from pricecast.monitoring import checks
from pricecast.monitoring.alerts import Alert, emit
from pricecast.monitoring.thresholds import Thresholds, thresholds_from
from pricecast.registry import Registry, RegistryStore
from pricecast.settings import get_settings
from pricecast.stage import base_stage, failure_path

_EXEC = re.compile(r"Executing task '([^']+)'")
_DONE = re.compile(r"Task '([^']+)' finished with status (\w+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

TaskEvent = Callable[[str, str], None]  # (task name, "running" | "succeeded" | "failed")

# How the local task processes allocate memory, and one start-up setting. On VMs where a page a
# process has not touched costs a host fault (this project's CI machines), large stages spent most
# of their time in the kernel; the first two keep that down, and the benchmark's floor runs under
# the same ones.
TASK_ENVIRONMENT = {
    # pyarrow's default mimalloc pool returns freed memory to the system eagerly, so every
    # stage re-faulted it; the system allocator keeps it. Train at 5 M rows: 7.6 s -> 4.9 s.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    # numpy asks for transparent huge pages on every array of 4 MB or more. Where the kernel's
    # THP defrag setting is "madvise" (the usual default), a fault on such memory compacts
    # memory synchronously when no huge page is free (numpy/numpy#31590). At 5 M rows, best
    # of 3: validate 2.6 -> 2.1 s, clean 3.0 -> 2.1 s (system time ~1.5 s -> 0.7 s), features even.
    "NUMPY_MADVISE_HUGEPAGE": "0",
    # Start-up, not memory: pydantic looks for plugins in the entry points of every installed
    # distribution when a task's first model class is built. pricecast uses none; the look cost
    # each of a run's ten tasks about 25 ms (make run 7.2-7.4 s -> 7.0-7.2 s, 3 alternated runs).
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
}


class _TaskEvents(logging.Filter):
    """Root-logger filter: kfp.local swaps root *handlers* per task but keeps logger filters."""

    def __init__(self, on_event: TaskEvent) -> None:
        super().__init__()
        self.on_event = on_event

    def filter(self, record: logging.LogRecord) -> bool:
        message = _ANSI.sub("", record.getMessage())
        if match := _EXEC.search(message):
            self.on_event(match.group(1), "running")
        elif match := _DONE.search(message):
            self.on_event(match.group(1), "succeeded" if match.group(2) == "SUCCESS" else "failed")
        return True


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a finished local run produced."""

    version: str
    decision: str  # what this run did: promoted, pending, rejected, or unchanged (nothing registered)
    reason: str  # this run's gate sentence, and what the registry made of it
    active: str | None
    metrics: dict[str, float]
    report_url: str
    registry_url: str
    run_log: Path
    elapsed_s: float
    alerts: tuple[Alert, ...] = ()  # what drift and report raised, then the run-time alert
    restored: tuple[str, ...] = ()  # stages restored from checkpoints instead of recomputed


class PipelineFailed(PricecastError):
    """A stage failed; ``problem``/``fix`` come from the stage's failure record."""


@contextlib.contextmanager
def _kfp_output_to(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


def run_local(
    arguments: dict[str, Any],
    *,
    pipeline_root: str | Path | None = None,
    runner: Any = None,
    image: str = "python:3.11-slim",
    on_event: TaskEvent | None = None,
    quiet: bool = True,
    max_run_time_s: float | None = Thresholds().max_run_time_s,
) -> RunOutcome:
    """Run the whole pipeline locally and summarise the registry's answer.

    Args:
        arguments: Pipeline parameters (see ``pipelines.pricecast_pipeline``).
        pipeline_root: Local directory for KFP outputs; default ``<store dir>/../kfp_outputs``.
        runner: A ``kfp.local`` runner; default ``SubprocessRunner(use_venv=False)``.
        image: Image of every task (used by ``DockerRunner``; a subprocess ignores it).
        on_event: Called with (task, state) as tasks start and finish.
        quiet: Send KFP's streamed task output to the run log instead of stdout.
        max_run_time_s: Alert (MEDIUM, ``PricecastPipelineSlow``) when the run's wall time is
            longer; None turns the check off.

    Raises:
        PipelineFailed: a stage failed; the message is the stage's own problem and fix.
    """
    from kfp import local

    from pipelines.pricecast_pipeline import build_pipeline

    settings = get_settings()
    for name, value in TASK_ENVIRONMENT.items():  # task processes inherit it; a user's own setting wins
        os.environ.setdefault(name, value)
    # Checked before the run: a bad limit fails now, not after half a minute of work.
    limits = thresholds_from({"max_run_time_s": max_run_time_s}, " of the run")
    check_arguments(arguments)
    store_url = arguments.get("store_url") or settings.store_url
    pipeline_root = Path(pipeline_root or Path(".pricecast") / "kfp_outputs").absolute()
    run_log = settings.log_dir.absolute() / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
    storage.ensure_bucket(store_url)

    local.init(runner=runner or local.SubprocessRunner(use_venv=False),
               pipeline_root=str(pipeline_root), raise_on_error=True)
    pipeline = build_pipeline(image=image, cluster=False)

    failed: list[str] = []
    started_at = datetime.now(UTC)

    def relay(task: str, state: str) -> None:
        if state == "failed":
            failed.append(task)
        if state == "succeeded" and _restored(task, settings.log_dir, started_at):
            state = "restored"
        if on_event:
            on_event(task, state)

    root = logging.getLogger()
    # kfp.local leaves a root handler bound to the stream it saw (our run log, closed after the
    # run): restore the handlers we found, or the next run's logging hits a closed file.
    handlers_before = root.handlers[:]
    # kfp.local indents a task's output by swapping builtins.print and restoring it afterwards;
    # tasks that overlap restore each other's swap, which can leave print indented for the rest
    # of the process (a later `registry resolve` in the same process printed "    v1").
    print_before = builtins.print
    events = _TaskEvents(relay)
    root.addFilter(events)
    before = _registry(store_url)
    earlier_runs = set(pipeline_root.glob("*"))
    started = time.perf_counter()
    try:
        with _kfp_output_to(run_log) if quiet else contextlib.nullcontext():
            pipeline(**arguments)
    except RuntimeError as exc:
        raise _failure(failed, str(exc), settings.log_dir, run_log) from exc
    finally:
        root.removeFilter(events)
        root.handlers[:] = handlers_before
        builtins.print = print_before
    elapsed = time.perf_counter() - started
    own_outputs = set(pipeline_root.glob("*")) - earlier_runs
    restored = _restored_stages(settings.log_dir, started_at)
    outcome = _outcome(store_url, before, run_log, elapsed, _own_version(own_outputs),
                       _own_summary(own_outputs), restored, _own_run_name(own_outputs))
    slow = _run_time_alerts(limits, started_at, elapsed, settings.log_dir)
    with _alerts_logged_to(run_log):
        emit(slow, settings, source="run")
    return dataclasses.replace(outcome, alerts=(*_stage_alerts(own_outputs), *slow))


def _records_since(log_dir: Path, started_at: datetime) -> list[dict[str, Any]]:
    started_at = started_at.replace(microsecond=0)  # as stage-metrics.jsonl records a start
    return [r for r in checks.read_stage_metrics(log_dir) if datetime.fromisoformat(r["at"]) >= started_at]


def _restored_stages(log_dir: Path, started_at: datetime) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r["stage"] for r in _records_since(log_dir, started_at) if r.get("restored")))


def _restored(task: str, log_dir: Path, started_at: datetime) -> bool:
    """Whether the task that just finished restored its checkpoint (its stage's newest record says).

    Task names are KFP's (``clean-2``, ``promote``); stage records are pricecast's, one per
    shard for a sharded stage (``clean-s1``): both start with the stage name.
    """
    stage = re.sub(r"-\d+$", "", task)
    records = [r for r in _records_since(log_dir, started_at)
               if base_stage(r["stage"]) == stage]
    return bool(records and records[-1].get("restored"))


def _run_time_alerts(limits: Thresholds, started_at: datetime, elapsed: float,
                     log_dir: Path) -> list[Alert]:
    """The run-time check on this run's wall time; the stages' own times name the slowest one."""
    records = _records_since(log_dir, started_at)
    stages = checks.last_run(records)
    run = checks.RunTime(started_at, started_at + timedelta(seconds=elapsed),
                         stages.stages if stages else {}, stages.restored if stages else ())
    return checks.run_time_alerts(limits, run)


@contextlib.contextmanager
def _alerts_logged_to(run_log: Path) -> Iterator[None]:
    """Alert lines into the run log too: this process has no stage log of its own."""
    logger = logging.getLogger("pricecast.alerts")
    handler = logging.FileHandler(run_log, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # LOW alerts are INFO; an unconfigured process would drop them
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def _registry(store_url: str) -> Registry:
    return RegistryStore(store_url).load()


def _failure(failed: list[str], message: str, log_dir: Path, run_log: Path) -> PipelineFailed:
    """Turn KFP's 'task X failed' into the stage's own problem and fix."""
    stage = re.sub(r"-\d+$", "", failed[-1]) if failed else ""
    match = re.search(r"Inner task failed: '([^']+)'", _ANSI.sub("", message))
    if not stage and match:
        stage = re.sub(r"-\d+$", "", match.group(1))
    record_path = _failure_record(log_dir, stage) if stage else None
    if record_path and record_path.exists():
        record = json.loads(record_path.read_text())
        err = PipelineFailed(f"Stage '{stage}' failed: {record['problem']}", record["fix"])
        err.exit_code = int(record.get("exit_code", 1))
    else:
        err = PipelineFailed(
            f"Stage '{stage or '?'}' failed: {_ANSI.sub('', message)}",
            f"See {run_log} and {log_dir}/{stage or '<stage>'}.log for the stack trace.",
        )
    err.stage = stage  # type: ignore[attr-defined]
    return err


def _failure_record(log_dir: Path, stage: str) -> Path:
    """The stage's failure record; a sharded stage writes one per shard (``clean-s3``): the newest."""
    shards = sorted(Path(log_dir).glob(f"{stage}-s*.failure.json"), key=lambda p: p.stat().st_mtime)
    return shards[-1] if shards else failure_path(log_dir, stage)


def _own_version(own_outputs: set[Path]) -> str | None:
    """The version this run's train task produced, read from this run's own KFP outputs.

    Another run sharing the store may register between our start and end, so the registry's
    newest event is not necessarily ours.
    """
    infos = [info for run in own_outputs for info in run.glob("train/model_info")]
    if len(infos) != 1:
        return None
    return json.loads(infos[0].read_text()).get("version")


def _outcome(store_url: str, before: Registry, run_log: Path, elapsed: float, own: str | None = None,
             summary: dict[str, Any] | None = None, restored: tuple[str, ...] = (),
             run_name: str | None = None) -> RunOutcome:
    after = _registry(store_url)
    new_events = after.events[len(before.events):]
    # A rerun on identical data registers nothing new: report the version it would have been.
    version = own or (new_events[-1].version if new_events else _latest_version(after))
    mv = after.versions.get(version) if version else None
    decision, reason = what_happened(version or "", summary, before, after, restored)
    candidate = (summary or {}).get("candidate") or {}
    metrics = {k: float(v) for k, v in candidate.items() if isinstance(v, (int, float))} if candidate else (
        dict(mv.metrics) if mv else {})
    return RunOutcome(
        version=version or "",
        decision=decision,
        reason=reason,
        active=after.active,
        metrics=metrics,
        # The report stage writes each run's report under reports/<version>/<run name>/.
        report_url=storage.join(store_url, "reports", *((version, run_name) if version and run_name else ("latest",)),
                                "report.html"),
        registry_url=storage.join(store_url, "registry.json"),
        run_log=run_log,
        elapsed_s=elapsed,
        restored=restored,
    )


def what_happened(version: str, summary: dict[str, Any] | None, before: Registry, after: Registry,
                  restored: tuple[str, ...] = ()) -> tuple[str, str]:
    """This run's decision and the sentence for it, from its own report and the registry's change.

    The registry's record of a version is from the run that first registered it; a rerun (same
    data, same version) registers nothing, so its verdict is this run's gate and what came of it:
    ``promoted``, ``pending`` or ``rejected`` when this run registered the version, ``unchanged``
    when the version was registered before and the registry did not move.
    """
    gate = ((summary or {}).get("gate") or {}).get("reason", "")
    registered = [e for e in after.events[len(before.events):] if e.version == version]
    mv = after.versions.get(version)
    if registered or mv is None:
        decision = mv.decision if mv else "unknown"
        return decision, (mv.reason if mv and not gate else gate) + (
            f" Waiting for `pricecast registry approve {version}`." if decision == "pending" and gate else "")
    how = "restored from checkpoints" if "report" in restored else "recomputed"
    if (summary or {}).get("verdict") == "reject":
        return "unchanged", f"{gate} Nothing registered: {version} was already recorded as {mv.decision} ({how})."
    if after.active == version:
        where = f"{version} is already the active model"
    elif version in after.rolled_away():
        where = (f"{version} was registered before and rolled back since; the active model stays "
                 f"{after.active or 'none'} (`pricecast registry rollback --to {version}` serves it again)")
    else:
        where = (f"{version} was registered before as {mv.decision}; the active model stays "
                 f"{after.active or 'none'}")
    return "unchanged", f"{gate} Nothing promoted ({how}): {where}."


def _own_run_name(own_outputs: set[Path]) -> str | None:
    """kfp.local's name of this run (``pricecast-<timestamp>``): its output directory's name."""
    return next(iter(own_outputs)).name if len(own_outputs) == 1 else None


def _own_summary(own_outputs: set[Path]) -> dict[str, Any] | None:
    """This run's report summary (verdict, gate, candidate metrics), from its own KFP outputs."""
    found = [path for run in own_outputs for path in run.glob("report/summary")]
    return json.loads(found[0].read_text(encoding="utf-8")) if len(found) == 1 else None


def _stage_alerts(own_outputs: set[Path]) -> list[Alert]:
    """The alerts drift and report raised (and sent) in this run, from their output artifacts."""
    documents = [path for run in own_outputs for output in ("drift/drift_report", "report/summary")
                 for path in sorted(run.glob(output))]
    return [Alert.model_validate(record) for path in documents
            for record in json.loads(path.read_text(encoding="utf-8")).get("alerts", [])]


def _latest_version(reg: Registry) -> str | None:
    if not reg.versions:
        return None
    return max(reg.versions.values(), key=lambda v: v.created_at).version
