"""A store one user writes is readable by a server running as another (issue 13, item 3).

The kind quick-start mounts the user's store into the chart's pod (uid 1000) through a hostPath;
files written 0600 answered ``/readyz`` with 503 "Permission denied".
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pricecast import storage
from tests.support.server import publish_model, running_server

NOBODY = 65534  # a numeric uid: no system user is created for the test


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_store_files_honour_the_umask(tmp_path: Path, umask_022: None) -> None:
    url = f"file://{tmp_path}/store/registry.json"
    storage.write_text(url, "{}")
    storage.put_file(storage.local_path(url), f"file://{tmp_path}/store/copy.json")
    for name in ("registry.json", "copy.json"):
        assert stat.S_IMODE((tmp_path / "store" / name).stat().st_mode) == 0o644


def interpreter_for_anyone() -> str | None:
    """A Python of this version that any user may run: this venv's, or the system's when the
    venv's base lives under a private home (pyenv under /root); the venv's packages ride along
    on PYTHONPATH."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), shutil.which(version, path="/usr/local/bin:/usr/bin")):
        if candidate and all(os.stat(p).st_mode & 0o001 for p in (*Path(candidate).parents, candidate)):
            return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another uid needs root")
def test_a_server_running_as_another_user_reads_the_store(umask_022: None) -> None:
    python = interpreter_for_anyone()
    if python is None:
        pytest.fail("No Python interpreter that uid 65534 may execute: install python3 system-wide.")
    # Not under pytest's tmp_path: its root is 0700, so no other user could reach the store at all.
    root = Path(tempfile.mkdtemp(prefix="pricecast-shared-store-"))
    try:
        root.chmod(0o755)
        store_url = f"file://{root}/store"
        publish_model(store_url, "v1", seed=1)
        env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p.endswith("site-packages"))}
        with running_server(store_url, user=NOBODY, python=python, env=env, timeout=30) as srv:
            assert srv.get("/readyz").json() == {"status": "ready", "model_version": "v1"}
    finally:
        shutil.rmtree(root, ignore_errors=True)
