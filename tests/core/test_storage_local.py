"""Local atomic writes: what makes them survive a crash, not just a concurrent reader."""

from __future__ import annotations

import os
import stat

from pricecast import storage


def test_a_local_write_fsyncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    """Without the directory fsync the rename can be lost in a crash: the old file comes back."""
    calls: list[tuple[str, bool]] = []  # ("fsync", on a directory?) and ("replace", ...) in order
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        calls.append(("replace", False))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    storage.write_bytes(f"file://{tmp_path}/a/artifact.bin", b"payload")

    assert (tmp_path / "a" / "artifact.bin").read_bytes() == b"payload"
    assert calls == [("fsync", False), ("replace", False), ("fsync", True)]
