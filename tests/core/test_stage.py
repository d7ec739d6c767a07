"""The stage runner: logging, checkpoints, resume modes, and no half-written outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pricecast import storage
from pricecast.errors import SchemaValidationError
from pricecast.stage import (
    STAGES, checkpoint_key, failure_path, latest_checkpoint, mark_latest, mode_for, run_stage,
)


def _writer(calls: list[int], text: str = "hello"):
    def compute(ctx) -> None:
        calls.append(1)
        Path(ctx.params["out"]).write_text(text)
        ctx.record(rows_in=3, rows_out=2, note="x")
    return compute


def test_rerun_restores_checkpoint_instead_of_recomputing(isolated_store, tmp_path):
    out = tmp_path / "a" / "out.txt"
    inp = tmp_path / "in.txt"
    inp.write_text("input")
    calls: list[int] = []
    kwargs = dict(params={"out": str(out), "k": 1}, inputs={"in": str(inp)}, outputs={"o": str(out)})
    first = run_stage("clean", compute=_writer(calls), **kwargs)
    out.unlink()
    second = run_stage("clean", compute=_writer(calls), **kwargs)
    assert calls == [1]
    assert (first.restored, second.restored) == (False, True)
    assert out.read_text() == "hello"
    assert second.rows_out == 2
    log = (isolated_store.log_dir / "clean.log").read_text()
    assert "START clean" in log and "restored checkpoint" in log and "elapsed=" in log


def test_changed_input_or_params_recompute(isolated_store, tmp_path):
    out, inp = tmp_path / "out.txt", tmp_path / "in.txt"
    inp.write_text("v1")
    calls: list[int] = []
    run_stage("clean", params={"out": str(out)}, inputs={"in": str(inp)}, outputs={"o": str(out)}, compute=_writer(calls))
    inp.write_text("v2")
    run_stage("clean", params={"out": str(out)}, inputs={"in": str(inp)}, outputs={"o": str(out)}, compute=_writer(calls))
    run_stage("clean", params={"out": str(out), "p": 2}, inputs={"in": str(inp)}, outputs={"o": str(out)}, compute=_writer(calls))
    assert len(calls) == 3


def test_force_recomputes_and_reuse_takes_latest(isolated_store, tmp_path):
    out = tmp_path / "out.txt"
    calls: list[int] = []
    run_stage("ingest", params={"out": str(out), "seed": 1}, inputs={}, outputs={"o": str(out)}, compute=_writer(calls, "one"))
    run_stage("ingest", params={"out": str(out), "seed": 1}, inputs={}, outputs={"o": str(out)}, compute=_writer(calls, "one"), mode="force")
    assert len(calls) == 2
    # reuse ignores changed parameters: it restores the stage's last good checkpoint.
    res = run_stage("ingest", params={"out": str(out), "seed": 999}, inputs={}, outputs={"o": str(out)}, compute=_writer(calls, "two"), mode="reuse")
    assert res.restored and out.read_text() == "one" and len(calls) == 2
    assert latest_checkpoint("ingest") == res.key


def test_a_checkpoint_becomes_latest_only_when_marked_good(isolated_store, tmp_path):
    out = tmp_path / "out.txt"
    calls: list[int] = []
    good = run_stage("ingest", params={"out": str(out), "seed": 1}, inputs={}, outputs={"o": str(out)}, compute=_writer(calls, "good"))
    held = run_stage("ingest", params={"out": str(out), "seed": 2}, inputs={}, outputs={"o": str(out)}, compute=_writer(calls, "bad"),
                     advance_latest=False)
    assert held.key != good.key and len(calls) == 2
    assert latest_checkpoint("ingest") == good.key  # written, but not what --from restores
    res = run_stage("ingest", params={"out": str(out), "seed": 3}, inputs={}, outputs={"o": str(out)}, compute=_writer(calls), mode="reuse")
    assert res.restored and out.read_text() == "good"
    mark_latest("ingest", held.key)
    assert latest_checkpoint("ingest") == held.key
    mark_latest("ingest", "")  # no key (checkpoints off): nothing moves
    assert latest_checkpoint("ingest") == held.key


def test_latest_follows_a_restored_checkpoint(isolated_store, tmp_path):
    """Data A, then B, then A again: the third run restores A, and `--from` must resume from A."""
    out, inp = tmp_path / "out.txt", tmp_path / "in.txt"
    calls: list[int] = []

    def run(data: str, mode: str = "auto"):
        inp.write_text(data)
        return run_stage("features", params={"out": str(out)}, inputs={"in": str(inp)}, outputs={"o": str(out)},
                         compute=lambda ctx: (calls.append(1), out.write_text(inp.read_text())), mode=mode)

    first_a, b, second_a = run("A"), run("B"), run("A")
    assert (first_a.restored, b.restored, second_a.restored) == (False, False, True)
    assert second_a.key == first_a.key and len(calls) == 2
    assert latest_checkpoint("features") == first_a.key
    resumed = run("ignored in reuse mode", mode="reuse")
    assert resumed.restored and out.read_text() == "A"


def test_directory_outputs_round_trip(isolated_store, tmp_path):
    out = tmp_path / "report"

    def compute(ctx) -> None:
        (out / "plots").mkdir(parents=True)
        (out / "report.md").write_text("# r")
        (out / "plots" / "a.png").write_bytes(b"\x89PNG")

    run_stage("report", params={}, inputs={}, outputs={"r": str(out)}, compute=compute)
    import shutil
    shutil.rmtree(out)
    res = run_stage("report", params={}, inputs={}, outputs={"r": str(out)}, compute=compute)
    assert res.restored
    assert (out / "plots" / "a.png").read_bytes() == b"\x89PNG"


def test_failure_removes_partial_output_keeps_named_and_leaves_checkpoint(isolated_store, tmp_path):
    out, diff = tmp_path / "out.txt", tmp_path / "diff.json"
    calls: list[int] = []
    run_stage("validate", params={"out": str(out)}, inputs={}, outputs={"o": str(out)}, compute=_writer(calls))
    key = latest_checkpoint("validate")

    def broken(ctx) -> None:
        out.write_text("half")
        diff.write_text("{}")
        raise SchemaValidationError("price has 3 negative values.", "Fix the source.")

    with pytest.raises(SchemaValidationError):
        run_stage("validate", params={"out": str(out), "v": 2}, inputs={}, outputs={"o": str(out), "diff": str(diff)},
                  compute=broken, keep_on_failure=("diff",))
    assert not out.exists() and diff.exists()
    assert latest_checkpoint("validate") == key  # the last good checkpoint is untouched
    record = json.loads(failure_path(isolated_store.log_dir, "validate").read_text())
    assert record["problem"] == "price has 3 negative values." and record["exit_code"] == 4
    assert "Traceback" in (isolated_store.log_dir / "validate.log").read_text()


def test_incomplete_checkpoint_without_manifest_is_ignored(isolated_store, tmp_path):
    out = tmp_path / "out.txt"
    calls: list[int] = []
    kwargs = dict(params={"out": str(out)}, inputs={}, outputs={"o": str(out)})
    res = run_stage("features", compute=_writer(calls), **kwargs)
    storage.remove(storage.join(isolated_store.store_url, "checkpoints", "features", res.key, "_MANIFEST.json"))
    run_stage("features", compute=_writer(calls), **kwargs)
    assert len(calls) == 2


def test_mode_for_orders_stages():
    assert mode_for("ingest", "") == "auto"
    assert mode_for("ingest", "features") == "reuse"
    assert mode_for("features", "features") == "force"
    assert mode_for("promote", "train") == "force"
    assert STAGES[0] == "ingest" and STAGES[-1] == "promote"


def test_checkpoint_key_depends_on_code(tmp_path):
    assert checkpoint_key("s", "a", {"x": 1}, {}) != checkpoint_key("s", "b", {"x": 1}, {})
    assert checkpoint_key("s", "a", {"x": 1, "y": 2}, {}) == checkpoint_key("s", "a", {"y": 2, "x": 1}, {})


def test_the_next_stage_keys_on_the_digest_the_writer_kept_and_rehashes_a_changed_file(
        isolated_store, tmp_path, monkeypatch):
    out = tmp_path / "features.bin"
    run_stage("features", compute=lambda ctx: out.write_bytes(b"x" * 1000), params={},
              inputs={}, outputs={"o": str(out)})
    hashed: list[Path] = []
    real = storage.sha256_file
    monkeypatch.setattr(storage, "sha256_file", lambda path: hashed.append(Path(path)) or real(path))

    key = checkpoint_key("train", "code", {}, {"features": str(out)})
    assert hashed == []  # the writer's digest, read from the file's extended attribute
    before = out.stat().st_mtime_ns
    out.write_bytes(b"y" * 1000)  # same size, new content...
    os.utime(out, ns=(before + 10**9, before + 10**9))  # ...and a later time (the clock may be coarse)
    changed = checkpoint_key("train", "code", {}, {"features": str(out)})
    assert hashed == [out] and changed != key
    copy = tmp_path / "copy.bin"
    copy.write_bytes(out.read_bytes())  # a file no stage wrote (a pod's downloaded input) is hashed
    assert checkpoint_key("train", "code", {}, {"features": str(copy)}) == changed


def test_the_checkpoint_takes_the_digest_a_block_writer_kept_instead_of_reading_the_file_again(
        isolated_store, tmp_path, monkeypatch):
    import hashlib

    import pandas as pd

    from pricecast import frames

    out = tmp_path / "features.parquet"
    hashed: list[Path] = []
    real = storage.sha256_file
    monkeypatch.setattr(storage, "sha256_file", lambda path: hashed.append(Path(path)) or real(path))
    result = run_stage("features", compute=lambda ctx: frames.write_frame(pd.DataFrame({"x": range(1000)}), out),
                       params={}, inputs={}, outputs={"o": str(out)})
    assert hashed == []
    manifest = json.loads(storage.read_text(
        storage.join(isolated_store.store_url, "checkpoints", "features", result.key, "_MANIFEST.json")))
    assert manifest["files"]["o"][""] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_a_local_checkpoint_shares_the_output_file_and_survives_a_recompute_in_place(isolated_store, tmp_path):
    out = tmp_path / "out.txt"
    calls: list[int] = []

    def run(version: int, text: str):
        return run_stage("clean", params={"out": str(out), "v": version}, inputs={}, outputs={"o": str(out)},
                         compute=_writer(calls, text))

    first = run(1, "one")
    saved = storage.local_path(storage.join(isolated_store.store_url, "checkpoints", "clean", first.key, "o", "_file"))
    assert os.path.samefile(out, saved)  # a hard link: no second copy of the bytes
    # A recompute to the same path writes in place (write_text): it must get a new file.
    run(2, "two")
    assert saved.read_text() == "one" and out.read_text() == "two"
    again = run(1, "one")
    assert again.restored and out.read_text() == "one" and len(calls) == 2


def test_put_file_shares_only_where_the_link_gets_a_copys_mode(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    url = f"file://{tmp_path}/store"
    storage.put_file(src, f"{url}/shared", share=True)
    storage.put_file(src, f"{url}/copied")
    assert os.path.samefile(src, tmp_path / "store" / "shared")
    assert not os.path.samefile(src, tmp_path / "store" / "copied")
    fetched = storage.get_file(f"{url}/shared", tmp_path / "back.bin", share=True)
    assert os.path.samefile(fetched, src)
    src.chmod(0o600)  # a link would make the store file private: copy instead
    storage.put_file(src, f"{url}/private", share=True)
    assert not os.path.samefile(src, tmp_path / "store" / "private")
    assert (tmp_path / "store" / "private").read_bytes() == b"data"
