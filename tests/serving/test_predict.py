"""Predict through v1 and v2 in every accepted layout: same rows, same numbers as the model."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from pricecast import modelio
from pricecast.columns import FEATURE_COLUMNS
from serving.main import create_app
from serving.model import load_model
from serving.settings import ServerSettings
from tests.serving.util import MODEL, V1, V2, metric_value
from tests.support.server import model_file


def _expected(store_url: str, rows: list[list[float]]) -> np.ndarray:
    """What sklearn itself predicts with the served version's bytes."""
    version = load_model(store_url).version
    return modelio.loads(model_file(store_url, version).read_bytes()).predict(np.array(rows))


def test_v1_rows_predict_what_the_sklearn_pipeline_predicts(client: TestClient, store_url: str,
                                                           rows: list[list[float]]) -> None:
    response = client.post(V1, json={"instances": rows})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], _expected(store_url, rows), rtol=1e-12)


def test_objects_keyed_by_feature_name_give_the_same_predictions(client: TestClient, rows: list[list[float]]) -> None:
    named = [dict(zip(reversed(FEATURE_COLUMNS), reversed(row), strict=True)) for row in rows]  # key order is free
    by_row = client.post(V1, json={"instances": rows}).json()["predictions"]
    by_name = client.post(V1, json={"instances": named})
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["predictions"] == by_row


def test_integers_are_numbers_too(client: TestClient) -> None:
    response = client.post(V1, json={"instances": [[0] * len(FEATURE_COLUMNS), [1] * len(FEATURE_COLUMNS)]})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 2


def test_v2_tensor_layouts_agree_with_v1(client: TestClient, rows: list[list[float]], published: Any) -> None:
    expected = client.post(V1, json={"instances": rows}).json()["predictions"]
    n, f = len(rows), len(FEATURE_COLUMNS)
    flat = {"inputs": [{"name": "input-0", "shape": [n, f], "datatype": "FP64",
                        "data": [v for row in rows for v in row]}], "id": "req-1"}
    nested = {"inputs": [{"name": "input-0", "shape": [n, f], "datatype": "FP32", "data": rows}]}
    columns = {"inputs": [{"name": name, "shape": [n], "datatype": "FP64", "data": [row[j] for row in rows]}
                          for j, name in enumerate(FEATURE_COLUMNS)]}
    for body in (flat, nested, columns):
        response = client.post(V2, json=body)
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["model_name"] == MODEL and doc["model_version"] == published.version
        (output,) = doc["outputs"]
        assert output["name"] == "predict" and output["shape"] == [n] and output["datatype"] == "FP64"
        assert output["data"] == expected
    assert client.post(V2, json=flat).json()["id"] == "req-1"
    versioned = client.post(f"/v2/models/{MODEL}/versions/{published.version}/infer", json=flat)
    assert versioned.status_code == 200 and versioned.json()["outputs"][0]["data"] == expected


def test_a_batch_up_to_the_limit_is_served_whole(make_client: Any, published: Any) -> None:
    limited = make_client(max_batch=256)
    batch = np.random.default_rng(2).normal(0, 0.01, size=(256, len(FEATURE_COLUMNS))).tolist()
    response = limited.post(V1, json={"instances": batch})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 256


def test_health_readiness_and_metadata(client: TestClient, published: Any) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready", "model_version": published.version}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}
    assert client.get("/v1/models").json() == {"models": [MODEL]}
    v1 = client.get(f"/v1/models/{MODEL}").json()
    assert v1["version"] == published.version and v1["sha256"] == published.sha256
    assert v1["features"] == FEATURE_COLUMNS and v1["raw_prices"]["supported"] is True
    v2 = client.get(f"/v2/models/{MODEL}").json()
    assert v2["versions"] == [published.version] and v2["inputs"][0]["shape"] == [-1, len(FEATURE_COLUMNS)]


def test_requests_and_predictions_are_counted_by_endpoint_status_version_and_track(
        make_client: Any, published: Any, rows: list[list[float]]) -> None:
    canary = make_client(track="canary")
    canary.post(V1, json={"instances": rows})
    canary.post(V1, content=b"{")
    canary.post(V2, json={"inputs": [{"name": "x", "shape": [1, len(FEATURE_COLUMNS)], "datatype": "FP64",
                                      "data": rows[0]}]})
    canary.get("/readyz")
    text = canary.get("/metrics").text
    labels = {"model_version": published.version, "track": "canary"}
    v1 = {"endpoint": "/v1/models/{name}:predict", **labels}
    assert metric_value(text, "pricecast_requests_total", status_class="2xx", **v1) == 1
    assert metric_value(text, "pricecast_requests_total", status_class="4xx", **v1) == 1
    assert metric_value(text, "pricecast_requests_total", status_class="2xx",
                        endpoint="/v2/models/{name}/infer", **labels) == 1
    assert metric_value(text, "pricecast_requests_total", endpoint="/readyz", **labels) == 1
    assert metric_value(text, "pricecast_request_duration_seconds_count", **v1) == 2
    assert metric_value(text, "pricecast_prediction_value_count", **labels) == len(rows) + 1
    assert metric_value(text, "pricecast_model_info", sha256=published.sha256, **labels) == 1
    assert metric_value(text, "pricecast_requests_in_flight", track="canary") == 1  # this scrape itself


def test_input_observers_see_every_accepted_batch(client: TestClient, rows: list[list[float]]) -> None:
    seen: list[np.ndarray] = []
    client.app.plane.input_observers.append(seen.append)  # type: ignore[attr-defined]
    client.post(V1, json={"instances": rows})
    client.post(V1, json={"instances": [[1, 2]]})  # refused: never observed
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], np.array(rows))


def test_the_documented_fastapi_routes_answer_exactly_like_the_hot_path(
        client: TestClient, store_url: str, rows: list[list[float]]) -> None:
    app = create_app(ServerSettings(load_retry_s=0, max_body_bytes=4096), store_url=store_url)
    tensor = {"inputs": [{"name": "x", "shape": [1, len(FEATURE_COLUMNS)], "datatype": "FP64", "data": rows[0]}]}
    with TestClient(app.api) as direct:  # FastAPI alone, without the ASGI hot path in front
        for path, body in ((V1, {"instances": rows}), (V1, {"instances": [[1]]}), (V2, tensor),
                           (f"/v2/models/{MODEL}/versions/v1/infer", tensor), ("/v1/models/x:predict", {})):
            hot, framework = client.post(path, json=body), direct.post(path, json=body)
            assert (framework.status_code, framework.content) == (hot.status_code, hot.content), path
        too_big = direct.post(V1, content=b" " * 5000, headers={"content-type": "application/json"})
        assert too_big.status_code == 413 and "larger than 4096 bytes" in too_big.json()["error"]
