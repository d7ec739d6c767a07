"""Bad input gets a 4xx and a sentence saying what was wrong; never a 500."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from components.features.core import MIN_HISTORY
from pricecast.columns import FEATURE_COLUMNS
from serving.model import load_model
from tests.serving.util import MODEL, V1, V2

F = len(FEATURE_COLUMNS)
ROW = [0.001] * F
DATES = [f"2024-01-{d:02d}" for d in range(1, 31)]
PRICES = [100.0 + i for i in range(30)]


def _raw(**changes: Any) -> dict[str, Any]:
    return {"instances": [{"ticker": "ACME", "dates": DATES, "prices": PRICES, **changes}]}


def _tensor(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, F], "datatype": "FP64", "data": ROW, **changes}]}


CASES: list[tuple[str, str, bytes, int, str]] = [
    # id, path, body, status, words the message must contain
    ("malformed-json", V1, b'{"instances": [[1,', 400, "not valid JSON"),
    ("empty-body", V1, b"", 400, "empty"),
    ("nan", V1, b'{"instances": [[NaN' + b", 0" * (F - 1) + b"]]}", 400, "NaN"),
    ("infinity", V1, b'{"instances": [[Infinity' + b", 0" * (F - 1) + b"]]}", 400, "NaN and Infinity"),
    ("overflowing-number", V1, b'{"instances": [[1e999' + b", 0" * (F - 1) + b"]]}", 400, "not valid JSON"),
    ("not-an-object", V1, b"[1, 2]", 422, '"instances" list'),
    ("instances-not-a-list", V1, orjson.dumps({"instances": {"a": 1}}), 422, '"instances" list'),
    ("empty-batch", V1, orjson.dumps({"instances": []}), 422, "empty"),
    ("short-row", V1, orjson.dumps({"instances": [ROW[:-1]]}), 422, f"the model takes {F} features"),
    ("ragged-rows", V1, orjson.dumps({"instances": [ROW, ROW[:3]]}), 422, "instance 1 has 3 values"),
    ("string-value", V1, orjson.dumps({"instances": [["0.1"] + ROW[1:]]}), 422, "not a number"),
    ("null-value", V1, orjson.dumps({"instances": [[None] + ROW[1:]]}), 422, "null, not a number"),
    ("bool-value", V1, orjson.dumps({"instances": [ROW[:-1] + [True]]}), 422, "true, not a number"),
    ("nested-too-deep", V1, orjson.dumps({"instances": [[ROW]]}), 422, "instance 0"),
    ("scalar-instances", V1, orjson.dumps({"instances": [1, 2]}), 422, "not a list"),
    ("mixed-kinds", V1, orjson.dumps({"instances": [ROW, dict(zip(FEATURE_COLUMNS, ROW, strict=True))]}), 422,
     "instance 1"),
    ("missing-feature", V1, orjson.dumps({"instances": [dict(zip(FEATURE_COLUMNS[1:], ROW, strict=False))]}), 422,
     f"lacks feature(s) {FEATURE_COLUMNS[0]}"),
    ("unknown-feature", V1, orjson.dumps({"instances": [{**dict(zip(FEATURE_COLUMNS, ROW, strict=True)), "x": 1}]}),
     422, "unknown key(s) x"),
    ("raw-too-short", V1, orjson.dumps(_raw(dates=DATES[:5], prices=PRICES[:5])), 422, f"send {MIN_HISTORY}"),
    ("raw-length-mismatch", V1, orjson.dumps(_raw(prices=PRICES[:-1])), 422, "30 dates but 29 prices"),
    ("raw-bad-date", V1, orjson.dumps(_raw(dates=DATES[:-1] + ["2024-02-30"])), 422, "could not be read"),
    ("raw-not-iso", V1, orjson.dumps(_raw(dates=DATES[:-1] + ["Jan 31"])), 422, "ISO date"),
    ("raw-unsorted", V1, orjson.dumps(_raw(dates=list(reversed(DATES)))), 422, "increasing"),
    ("raw-negative-price", V1, orjson.dumps(_raw(prices=[-1.0] + PRICES[1:])), 422, "above zero"),
    ("raw-string-price", V1, orjson.dumps(_raw(prices=["1"] + PRICES[1:])), 422, "list of numbers"),
    ("raw-extra-key", V1, orjson.dumps({"instances": [{**_raw()["instances"][0], "x": 1}]}), 422, "exactly the keys"),
    ("v2-no-inputs", V2, orjson.dumps({"inputs": []}), 422, '"inputs" list'),
    ("v2-bytes", V2, orjson.dumps(_tensor(datatype="BYTES")), 422, "'BYTES' is not supported"),
    ("v2-shape-mismatch", V2, orjson.dumps(_tensor(shape=[2, F])), 422, "needs"),
    ("v2-wrong-width", V2, orjson.dumps(_tensor(shape=[1, F - 1], data=ROW[:-1])), 422, f"[n, {F}]"),
    ("v2-negative-shape", V2, orjson.dumps(_tensor(shape=[-1, F])), 422, "non-negative"),
    ("v2-one-dimensional", V2, orjson.dumps(_tensor(shape=[F])), 422, f"[n, {F}]"),
    ("v2-datatype-not-a-string", V2, orjson.dumps(_tensor(datatype={})), 422, "is not supported"),
    ("v2-string-data", V2, orjson.dumps(_tensor(data=["a"] * F)), 422, "only numbers"),
    ("v2-id-not-string", V2, orjson.dumps({**_tensor(), "id": 5}), 422, '"id"'),
    ("v2-id-null", V2, orjson.dumps({**_tensor(), "id": None}), 422, '"id"'),
    ("v2-unknown-column", V2, orjson.dumps({"inputs": [{"name": "zz", "shape": [1], "datatype": "FP64", "data": [1]},
                                                       {"name": "yy", "shape": [1], "datatype": "FP64", "data": [1]}]}),
     422, "named 'zz'"),
    ("v2-empty-batch", V2, orjson.dumps(_tensor(shape=[0, F], data=[])), 422, "empty"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_4xx_that_says_what_was_wrong(client: TestClient, path: str, body: bytes, status: int,
                                                      words: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    doc = response.json()
    assert words in doc["error"], doc
    assert doc.get("fix"), "every refusal says what to do"


def test_an_unknown_model_name_or_version_is_404(client: TestClient) -> None:
    body = {"instances": [ROW]}
    assert client.post("/v1/models/other:predict", json=body).status_code == 404
    assert "serves model 'pricecast'" in client.post("/v2/models/other/infer", json=_tensor()).json()["error"]
    assert client.post(f"/v2/models/{MODEL}/versions/v999/infer", json=_tensor()).status_code == 404
    assert client.get("/v1/models/other").status_code == 404
    assert client.get("/v2/models/other/ready").status_code == 404


def test_a_content_type_other_than_json_is_415(client: TestClient) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = client.post(V1, content=orjson.dumps({"instances": [ROW]}), headers={"content-type": content_type})
        assert response.status_code == 415 and "not JSON" in response.json()["error"]
    ok = client.post(V1, content=orjson.dumps({"instances": [ROW]}),
                     headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_oversized_bodies_and_batches_are_413(make_client: Any, published: Any) -> None:
    small = make_client(max_batch=4, max_body_bytes=2048)
    too_many = small.post(V1, json={"instances": [ROW] * 5})
    assert too_many.status_code == 413 and "at most 4" in too_many.json()["error"]
    too_big = small.post(V1, content=b'{"instances": [' + b" " * 4096 + b"]}",
                         headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and "larger than 2048 bytes" in too_big.json()["error"]

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        for _ in range(8):
            yield b" " * 512

    streamed = small.post(V1, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_finite_inputs_whose_prediction_overflows_are_422(client: TestClient, store_url: str) -> None:
    weights = load_model(store_url).weights
    extreme = (np.sign(weights) * 1.5e308).tolist()  # every term pushes the same way
    response = client.post(V1, json={"instances": [extreme]})
    assert response.status_code == 422 and "overflows" in response.json()["error"]


def test_wrong_methods_and_paths_answer_in_the_same_error_shape(client: TestClient) -> None:
    wrong_method = client.get(V2)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]
    assert "error" in wrong_method.json()
    assert client.put("/healthz").status_code == 405
    missing = client.get("/nope")
    assert missing.status_code == 404 and "error" in missing.json()
