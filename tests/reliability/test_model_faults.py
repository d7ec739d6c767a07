"""Fault 3: bad model bytes and a registry that points nowhere, against the real server process.

Already proven in ``tests/serving``: corrupted bytes are refused before deserializing and the
server is not ready (``test_lifecycle.py``, ``test_server_process.py``); missing bytes and an
unknown pinned version are not ready (in process). Added here, on ``pricecast serve`` itself:

- a registry whose ``active`` names a version it does not hold, or whose model files are gone,
  or whose bytes are corrupted: the server retries the load (every 0.1 s) and never becomes
  ready over many attempts; it stays alive (``/healthz`` 200) and refuses predicts with 503;
- a running server whose model bytes, registry document and even a newer promoted version
  change underneath it keeps serving the model it loaded, with identical answers.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Literal

import pytest

from pricecast.columns import FEATURE_COLUMNS
from tests.serving.util import metric_value
from tests.support.server import model_file, publish_model, running_server

V1 = "/v1/models/pricecast:predict"
ROW = [0.001] * len(FEATURE_COLUMNS)
Fault = Literal["active_names_an_unknown_version", "model_files_deleted", "model_bytes_corrupted"]


def _break(store: Path, fault: Fault) -> tuple[str, str]:
    """Break the store's active model; (words /readyz must say, load failure reason label)."""
    store_url = f"file://{store}"
    if fault == "active_names_an_unknown_version":
        doc = json.loads((store / "registry.json").read_text())
        doc["active"] = "v404"  # e.g. a registry restored from a backup newer than the models
        (store / "registry.json").write_text(json.dumps(doc))
        return "'v404' is not in the registry", "not_found"
    if fault == "model_files_deleted":
        shutil.rmtree(store / "models" / "v1")
        return "is missing", "not_found"
    path = model_file(store_url, "v1")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern in the middle
    path.write_bytes(bytes(data))
    return "refusing to load", "integrity"


@pytest.mark.parametrize("fault", ["active_names_an_unknown_version", "model_files_deleted", "model_bytes_corrupted"])
def test_a_server_never_becomes_ready_on_a_broken_active_model(fault: Fault, tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish_model(f"file://{store}", "v1", seed=2)
    words, reason = _break(store, fault)

    with running_server(f"file://{store}", wait_for="live", env={"PRICECAST_LOAD_RETRY_S": "0.1"}) as srv:
        deadline = time.monotonic() + 30
        while metric_value(srv.metrics(), "pricecast_model_load_failures_total", reason=reason) < 10:
            assert time.monotonic() < deadline, srv.output()
            time.sleep(0.1)
        ready = srv.get("/readyz")
        assert ready.status_code == 503 and words in ready.json()["reason"], ready.text
        assert srv.get("/healthz").status_code == 200
        refused = srv.post(V1, json={"instances": [ROW]})
        assert refused.status_code == 503 and words in refused.json()["error"]
        assert "pricecast_model_info{" not in srv.metrics()
        assert f"model load failed ({reason}" in srv.output()


def test_a_running_server_keeps_its_model_when_the_store_changes_underneath(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    publish_model(store_url, "v1", seed=2)
    with running_server(store_url, env={"PRICECAST_LOAD_RETRY_S": "0.1"}) as srv:
        expected = srv.post(V1, json={"instances": [ROW]}).json()

        path = model_file(store_url, "v1")
        path.write_bytes(b"\x00" * len(path.read_bytes()))  # the bytes it loaded, destroyed
        publish_model(store_url, "v2", seed=9)  # a newer active version: a new rollout, not a swap
        (tmp_path / "store" / "registry.json").write_text("{ torn")  # and the registry torn

        answers = [srv.post(V1, json={"instances": [ROW]}) for _ in range(100)]
        assert [a.status_code for a in answers] == [200] * 100
        assert all(a.json() == expected for a in answers)
        assert srv.get("/readyz").json() == {"status": "ready", "model_version": "v1"}
        assert metric_value(srv.metrics(), "pricecast_model_info", model_version="v1") == 1
        assert metric_value(srv.metrics(), "pricecast_model_load_failures_total") == 0
