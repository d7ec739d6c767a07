"""What `pricecast run` says a run did: this run's gate and the registry's change (issue 13, items 1, 2).

A rerun on the same data trains the same version, which the registry already holds: its record
(and reason) is the first run's, and registering it again changes nothing.
"""

from __future__ import annotations

from rich.console import Console

from pipelines.local_run import what_happened
from pricecast import registry
from cli.pipeline import _Progress, verdict_line
from tests.core.support import mv, promoted

GATE_NOW = "Candidate MAPE 1.300% is within the threshold 1.430% (the active model: 1.300%, 10% degradation allowed): promote."


def summary(verdict: str = "promote", reason: str = GATE_NOW) -> dict:
    return {"verdict": verdict, "gate": {"reason": reason}, "candidate": {"mape": 1.3}}


def test_a_run_that_registers_its_version_says_so_with_this_runs_reason():
    before = promoted("v1")
    after = registry.register(before, mv("v2").model_copy(update={"reason": "an older sentence"}))
    assert what_happened("v2", summary(), before, after) == ("promoted", GATE_NOW)


def test_a_rerun_shows_this_runs_reason_not_the_first_runs():
    reg = registry.register(registry.Registry(), mv("v1").model_copy(update={"reason": "vs the naive forecast"}))
    decision, reason = what_happened("v1", summary(), reg, reg, restored=("train", "evaluate", "report"))
    assert decision == "unchanged"
    assert reason.startswith(GATE_NOW) and "naive" not in reason
    assert "Nothing promoted (restored from checkpoints): v1 is already the active model." in reason


def test_a_rerun_after_a_rollback_says_nothing_was_promoted_and_what_stays_active():
    reg = registry.rollback(promoted("v1", "v2"), "v1")
    decision, reason = what_happened("v2", summary(), reg, reg, restored=("report",))
    assert decision == "unchanged"
    assert ("Nothing promoted (restored from checkpoints): v2 was registered before and rolled back since; "
            "the active model stays v1 (`pricecast registry rollback --to v2` serves it again).") in reason
    assert verdict_line(decision, "v2", ("report",)) == "[yellow]nothing promoted[/] v2 (restored from checkpoints)"


def test_a_rejected_rerun_registers_nothing_and_says_so():
    reg = registry.register(promoted("v1"), mv("v2", "rejected"))
    decision, reason = what_happened("v2", summary("reject", "Candidate MAPE 3.000% exceeds …: reject."), reg, reg)
    assert decision == "unchanged" and "Nothing registered: v2 was already recorded as rejected (recomputed)." in reason


def test_the_progress_table_shows_restored_stages_as_restored():
    progress = _Progress()
    progress.event("ingest", "running")
    progress.event("ingest", "restored")
    progress.event("train", "running")
    progress.event("train", "succeeded")
    console = Console(width=80, record=True)
    console.print(progress.render())
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in text.splitlines()
            if line.startswith("│") and line.split("│")[1].strip() in ("ingest", "train")}
    assert rows == {"ingest": "restored (checkpoint)", "train": "done"}
