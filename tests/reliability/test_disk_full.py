"""Fault 6: the disk fills up while a checkpoint (or the registry) is being written.

The real thing first: the store lives on a 1 MiB tmpfs mounted for the test (needs root, which
this project's CI has; elsewhere that test is skipped and says why). A stage whose checkpoint no
longer fits fails with a StorageError that says "No space left" and what to do; the previous
checkpoint survives byte for byte and stays LATEST; the half-written checkpoint has no manifest,
so nothing ever restores it; after space is freed the same stage completes. With the disk full
to the last byte, a registry update and a new model fail the same way and registry.json is
untouched. A second test injects ENOSPC into the storage layer's chunked writer (the fault a
full disk raises) at the one point a real disk cannot be aimed at: the manifest, written last.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pricecast import registry, storage
from pricecast.errors import StorageError
from pricecast.registry import ModelVersion, RegistryStore
from pricecast.settings import reload_settings
from pricecast.stage import failure_path, latest_checkpoint, run_stage

KIB = 1024


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs at tmp_path/disk, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); "
                    "test_disk_full_injected_enospc_* covers the same contract by injection")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def store_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``store_on(dir)``: PRICECAST_STORE_URL at dir/store, logs in tmp_path; settings re-read."""

    def use(directory: Path) -> Path:
        monkeypatch.setenv("PRICECAST_STORE_URL", f"file://{directory / 'store'}")
        monkeypatch.setenv("PRICECAST_LOG_DIR", str(tmp_path / "logs"))
        reload_settings()
        return directory / "store"

    yield use
    monkeypatch.undo()
    reload_settings()


def _features_stage(out: Path, version: int, size: int):
    """Run a 'features' stage whose output is ``size`` bytes of incompressible data."""

    def compute(ctx) -> None:
        out.write_bytes(os.urandom(size))
        ctx.record(rows_out=size)

    return run_stage("features", params={"version": version}, inputs={}, outputs={"features": str(out)},
                     compute=compute, code="disk-full-test")


def _fill(disk: Path, leave: int) -> Path:
    """Write a new filler file until only about ``leave`` bytes are free."""
    filler = disk / f"filler-{len(list(disk.glob('filler-*')))}"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    try:
        filler.write_bytes(b"\0" * max(free - leave, 0))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    return filler


def _version(name: str, payload: bytes) -> ModelVersion:
    return ModelVersion(version=name, created_at=registry.now_iso(), sha256=storage.sha256_bytes(payload),
                        data_hash="0" * 64, artifact=f"models/{name}/{registry.MODEL_FILE}", decision="promoted")


def test_disk_full_on_a_real_tmpfs_keeps_the_previous_checkpoint_and_registry(
    tiny_disk: Path, store_on, tmp_path: Path
) -> None:
    store = store_on(tiny_disk)
    out = tmp_path / "features.bin"
    first = _features_stage(out, version=1, size=100 * KIB)
    reg_store = RegistryStore()
    reg_store.put_model("v1", b"model one", {})
    reg_store.update(lambda reg: registry.register(reg, _version("v1", b"model one")))
    before = _tree(store)
    _fill(tiny_disk, leave=200 * KIB)

    with pytest.raises(StorageError) as info:
        _features_stage(out, version=2, size=600 * KIB)

    assert "No space left on device" in info.value.problem
    assert f"{store}/checkpoints/features/" in info.value.problem, "the error must name where it wrote"
    assert "Free disk space" in info.value.fix and "previous artifact is intact" in info.value.fix
    after = _tree(store)
    assert {k: v for k, v in after.items() if k in before} == before, "the previous checkpoint changed"
    new_files = set(after) - set(before)
    assert not any(f.endswith("_MANIFEST.json") for f in new_files), "a half checkpoint looks complete"
    assert not [f for f in new_files if f.endswith(".tmp")], "a temporary file was left behind"
    assert latest_checkpoint("features") == first.key
    assert not out.exists(), "the failed stage's partial output was kept"
    record = json.loads(failure_path(tmp_path / "logs", "features").read_text())
    assert record["error"] == "StorageError" and record["exit_code"] == 5

    # Full to the last byte: neither the registry nor a new model can be written, and nothing moves.
    _fill(tiny_disk, leave=0)
    registry_bytes = (store / "registry.json").read_bytes()
    with pytest.raises(StorageError, match="No space left"):
        reg_store.update(lambda reg: registry.register(reg, _version("v2", b"model two")))
    with pytest.raises(StorageError, match="No space left"):
        reg_store.put_model("v2", os.urandom(64 * KIB), {})
    assert (store / "registry.json").read_bytes() == registry_bytes
    assert reg_store.load().active == "v1" and reg_store.fetch_verified(reg_store.load().get("v1")) == b"model one"
    assert not (store / "models" / "v2" / registry.MODEL_FILE).exists()

    for filler in tiny_disk.glob("filler-*"):
        filler.unlink()
    second = _features_stage(out, version=2, size=600 * KIB)
    assert not second.restored and latest_checkpoint("features") == second.key
    assert len(out.read_bytes()) == 600 * KIB


def test_disk_full_injected_enospc_mid_manifest_write_keeps_the_previous_checkpoint(
    store_on, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_on(tmp_path)
    out = tmp_path / "features.bin"
    first = _features_stage(out, version=1, size=10 * KIB)
    before = _tree(store)
    real_write_chunks = storage._write_chunks

    def disk_fills_mid_file(fh, data: bytes) -> None:
        fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storage, "_write_chunks", disk_fills_mid_file)
    with pytest.raises(StorageError) as info:
        _features_stage(out, version=2, size=10 * KIB)

    assert "No space left on device" in info.value.problem and "_MANIFEST.json" in info.value.problem
    assert "Free disk space" in info.value.fix
    after = _tree(store)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not [f for f in set(after) - set(before) if f.endswith(("_MANIFEST.json", ".tmp"))]
    assert latest_checkpoint("features") == first.key

    monkeypatch.setattr(storage, "_write_chunks", real_write_chunks)
    second = _features_stage(out, version=2, size=10 * KIB)
    assert not second.restored, "the checkpoint without a manifest must not be restored"
    assert latest_checkpoint("features") == second.key
