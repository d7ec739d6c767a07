"""Live drift in the server: inputs unlike the training profile raise pricecast_drift_score."""

from __future__ import annotations

import re

import numpy as np

from pricecast.columns import FEATURE_COLUMNS


def _drift_scores(text: str) -> dict[str, float]:
    pattern = re.compile(r'^pricecast_drift_score\{feature="([^"]+)",model_version="v1",track="stable"\} (\S+)$', re.M)
    return {feature: float(value) for feature, value in pattern.findall(text)}


def _send(client, rows: np.ndarray) -> None:
    for start in range(0, len(rows), 50):
        resp = client.post("/v1/models/pricecast:predict", json={"instances": rows[start:start + 50].tolist()})
        assert resp.status_code == 200, resp.text


def test_shifted_inputs_raise_the_drift_score_and_similar_ones_do_not(published, make_client):
    client = make_client(drift_window=400, drift_every=50)
    n = len(FEATURE_COLUMNS)
    # publish_model(seed=1) trains on N(0, 0.01) columns times a per-column scale: draw the same.
    training = np.random.default_rng(1)
    training.normal(0.0, 0.01, size=(400, n))
    scale = training.uniform(0.5, 2.0, size=n)
    rng = np.random.default_rng(0)
    _send(client, rng.normal(0.0, 0.01, size=(400, n)) * scale)
    calm = _drift_scores(client.get("/metrics").text)
    _send(client, rng.normal(0.05, 0.05, size=(400, n)))
    shifted = _drift_scores(client.get("/metrics").text)
    assert set(calm) == set(shifted) == set(FEATURE_COLUMNS)
    # 0.25 is the PricecastDriftHigh alert threshold.
    assert max(calm.values()) < 0.25, calm
    assert min(shifted.values()) > 0.25, shifted


def test_drift_off_exports_no_scores(published, make_client):
    client = make_client(drift_window=0)
    _send(client, np.zeros((100, len(FEATURE_COLUMNS))))
    assert _drift_scores(client.get("/metrics").text) == {}
