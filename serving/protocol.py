"""KServe v1 and Open Inference Protocol v2 bodies <-> numpy, with no HTTP in sight.

Validation is written by hand for the hot path (a pydantic model per request costs more than
the whole prediction): orjson parses; a body of plain rows is proven number-only by a few byte
scans and converted in one ``np.fromiter`` pass; anything else has its value types checked; and
only a request that fails those checks is walked (:func:`_explain_rows`) to name the bad value.
JSON has no NaN or Infinity and orjson refuses them (and overflowing numbers), so every accepted
input value is finite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import numpy as np
import orjson

from serving.errors import InvalidInputError, MalformedRequestError, PayloadTooLargeError

V1_FIX = 'Send {"instances": [[f1, f2, ...], ...]} (numbers in feature order), objects keyed by feature ' \
         'name, or {"ticker": ..., "dates": [...], "prices": [...]} objects.'
V2_FIX = 'Send {"inputs": [{"name": "input-0", "shape": [n, n_features], "datatype": "FP64", "data": [...]}]}.'
V2_NUMERIC = frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
                        "UINT8", "UINT16", "UINT32", "UINT64"})
OUTPUT_NAME = "predict"
_ROWS_PREFIX = re.compile(rb'\s*\{\s*"instances"\s*:\s*\[')
RawRowsFn = Callable[[list[Any], Sequence[str]], np.ndarray]


def parse_json(body: bytes, fix: str) -> Any:
    if not body:
        raise MalformedRequestError("The request body is empty.", fix)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(
            f"The body is not valid JSON ({exc}). NaN and Infinity are not JSON numbers.", fix
        ) from None


def _check_batch_size(n: int, max_batch: int, fix: str) -> None:
    if n == 0:
        raise InvalidInputError("The batch is empty: nothing to predict.", fix)
    if n > max_batch:
        raise PayloadTooLargeError(f"The batch has {n} instances; this server takes at most {max_batch}.",
                                   "Split it into smaller requests (PRICECAST_MAX_BATCH sets the limit).")


_NUMBER_TYPES = frozenset({float, int})


def _is_number(value: Any) -> bool:
    return type(value) is float or type(value) is int  # bool is an int subclass: refuse it here


def _explain_rows(rows: list[Any], features: Sequence[str], where: str) -> InvalidInputError:
    """The precise complaint about the first bad row (the slow path, only for bad input)."""
    n = len(features)
    for i, row in enumerate(rows):
        if type(row) is not list:
            return InvalidInputError(f"{where} {i} is {type(row).__name__}, not a list of {n} numbers.", V1_FIX)
        if len(row) != n:
            return InvalidInputError(
                f"{where} {i} has {len(row)} values; the model takes {n} features in this order: "
                f"{', '.join(features)}.", V1_FIX)
        for j, value in enumerate(row):
            if not _is_number(value):
                shown = orjson.dumps(value).decode()[:40]
                return InvalidInputError(
                    f"{where} {i}, feature {features[j]!r} is {shown}, not a number.", V1_FIX)
    return InvalidInputError(f"The {where}s are not a table of numbers.", V1_FIX)


def numbers_only(body: bytes) -> bool:
    """Whether ``body`` is ``{"instances": [...]}`` with no string, true/false/null or object inside.

    Five ``memchr`` scans after the key (a few microseconds for a 256-row body) prove every leaf
    is a number, so numpy can convert the rows directly: cheaper than checking each value's
    Python type, which costs more than the prediction on a large batch.
    """
    match = _ROWS_PREFIX.match(body)
    if match is None:
        return False
    start = match.end()
    find = body.find
    return (find(b'"', start) < 0 and find(b"{", start) < 0 and find(b"t", start) < 0
            and find(b"f", start) < 0 and find(b"n", start) < 0)  # strings, objects, true, false, null


def rows_to_matrix(rows: list[Any], features: Sequence[str], leaves_are_numbers: bool,
                   where: str = "instance") -> np.ndarray:
    """A float64 (n, n_features) array from rows of numbers, or a 422 naming the bad value.

    Args:
        rows: the decoded rows.
        features: the model's feature names, in order.
        leaves_are_numbers: :func:`numbers_only` held for the body, so no value needs a type check.
        where: what a row is called in error messages.
    """
    n_features = len(features)
    if leaves_are_numbers:
        # fromiter over the flattened rows skips np.array's shape discovery: a third less time
        # on a large batch. Rows of the wrong length, or lists where numbers belong, fail here.
        try:
            if set(map(len, rows)) != {n_features}:
                raise _explain_rows(rows, features, where)
            flat = np.fromiter(chain.from_iterable(rows), np.float64, count=len(rows) * n_features)
        except (TypeError, ValueError):
            raise _explain_rows(rows, features, where) from None
        return flat.reshape(len(rows), n_features)
    try:
        # Without that guarantee numpy infers the dtype: a string, null or object is not numeric.
        matrix = np.array(rows)
    except (ValueError, OverflowError):  # ragged rows, or a list where a number should be
        raise _explain_rows(rows, features, where) from None
    if matrix.dtype.kind not in "fiu" or matrix.ndim != 2 or matrix.shape[1] != n_features:
        raise _explain_rows(rows, features, where)
    # numpy turns true/false next to numbers into 1.0/0.0: check each value's type.
    if not set(map(type, chain.from_iterable(rows))) <= {float, int}:
        raise _explain_rows(rows, features, where)
    return matrix.astype(np.float64, copy=False)


def named_to_rows(instances: list[Any], features: Sequence[str]) -> list[list[Any]]:
    """Objects keyed by feature name -> rows in the model's feature order."""
    rows = []
    wanted = set(features)
    for i, instance in enumerate(instances):
        if type(instance) is not dict:
            raise InvalidInputError(f"instance {i} is {type(instance).__name__}; all instances must be "
                                    "of one kind (the first was an object of features).", V1_FIX)
        try:
            rows.append([instance[name] for name in features])
        except KeyError:
            missing = [f for f in features if f not in instance]
            raise InvalidInputError(f"instance {i} lacks feature(s) {', '.join(missing)}.", V1_FIX) from None
        if len(instance) != len(features):
            extra = sorted(set(instance) - wanted)
            raise InvalidInputError(f"instance {i} has unknown key(s) {', '.join(extra)}; the model takes "
                                    f"{', '.join(features)}.", V1_FIX)
    return rows


def decode_v1(body: bytes, features: Sequence[str], max_batch: int, raw_rows: RawRowsFn) -> np.ndarray:
    """``{"instances": [...]}`` -> float64 rows in feature order.

    Args:
        body: the raw request body.
        features: the model's feature names, in order.
        max_batch: most instances accepted.
        raw_rows: computes feature rows from raw ``{"ticker", "dates", "prices"}`` instances.
    """
    doc = parse_json(body, V1_FIX)
    instances = doc.get("instances") if type(doc) is dict else None
    if type(instances) is not list:
        raise InvalidInputError('The body must be a JSON object with an "instances" list.', V1_FIX)
    _check_batch_size(len(instances), max_batch, V1_FIX)
    first = instances[0]
    if type(first) is dict:
        if "prices" in first:
            return raw_rows(instances, features)
        instances = named_to_rows(instances, features)
    return rows_to_matrix(instances, features, numbers_only(body))


def encode_v1(predictions: np.ndarray) -> bytes:
    return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)


# --------------------------------------------------------------------------- v2 (Open Inference Protocol)
def _tensor(tensor: Any, index: int) -> tuple[str, list[int], list[Any]]:
    """Check one v2 input tensor's fields; return its name, shape and flat data."""
    if type(tensor) is not dict:
        raise InvalidInputError(f"inputs[{index}] is not an object.", V2_FIX)
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if type(name) is not str:
        raise InvalidInputError(f"inputs[{index}].name must be a string.", V2_FIX)
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape) or not 1 <= len(shape) <= 2:
        raise InvalidInputError(f"inputs[{index}].shape must be [n] or [n, m] with non-negative integers.", V2_FIX)
    if type(datatype) is not str or datatype not in V2_NUMERIC:
        raise InvalidInputError(f"inputs[{index}].datatype {datatype!r} is not supported; use one of "
                                f"{', '.join(sorted(V2_NUMERIC))}.", V2_FIX)
    if type(data) is not list:
        raise InvalidInputError(f"inputs[{index}].data must be a list of numbers.", V2_FIX)
    if data and type(data[0]) is list:  # row-major nested form (one row per list)
        if not all(type(part) is list for part in data):
            raise InvalidInputError(f"inputs[{index}].data mixes lists and numbers.", V2_FIX)
        data = list(chain.from_iterable(data))
    if not set(map(type, data)) <= _NUMBER_TYPES:  # C-speed type scan; bool is not in the set
        raise InvalidInputError(f"inputs[{index}].data must hold only numbers.", V2_FIX)
    size = math.prod(shape)
    if len(data) != size:
        raise InvalidInputError(f"inputs[{index}] has {len(data)} values but shape {shape} needs {size}.", V2_FIX)
    return name, shape, data


def decode_v2(body: bytes, features: Sequence[str], max_batch: int) -> tuple[np.ndarray, str | None]:
    """An inference request -> (float64 rows in feature order, request id).

    Two layouts are accepted: one tensor of shape ``[n, n_features]``, or one tensor per feature,
    named after it, of shape ``[n]`` or ``[n, 1]``.
    """
    doc = parse_json(body, V2_FIX)
    inputs = doc.get("inputs") if type(doc) is dict else None
    if type(inputs) is not list or not inputs:
        raise InvalidInputError('The body must be a JSON object with a non-empty "inputs" list.', V2_FIX)
    request_id = doc.get("id")
    if "id" in doc and type(request_id) is not str:
        raise InvalidInputError('"id" must be a string when given.', V2_FIX)
    n_features = len(features)
    one_column = n_features == 1 and type(inputs[0]) is dict and inputs[0].get("name") == features[0]
    if len(inputs) == 1 and not one_column:
        _, shape, data = _tensor(inputs[0], 0)
        if len(shape) != 2 or shape[1] != n_features:
            raise InvalidInputError(f"inputs[0] has shape {shape}; the model takes [n, {n_features}] "
                                    f"({', '.join(features)}).", V2_FIX)
        _check_batch_size(shape[0], max_batch, V2_FIX)
        return np.fromiter(data, np.float64, count=len(data)).reshape(shape), request_id
    columns: dict[str, list[Any]] = {}
    for index, tensor in enumerate(inputs):
        name, shape, data = _tensor(tensor, index)
        if name not in features or name in columns:
            raise InvalidInputError(f"inputs[{index}] is named {name!r}: with several inputs, each must be one "
                                    f"feature, once ({', '.join(features)}).", V2_FIX)
        if len(shape) == 2 and shape[1] != 1:
            raise InvalidInputError(f"inputs[{index}] ({name}) must have shape [n] or [n, 1].", V2_FIX)
        columns[name] = data
    missing = [f for f in features if f not in columns]
    if missing:
        raise InvalidInputError(f"Missing input(s) for feature(s) {', '.join(missing)}.", V2_FIX)
    lengths = {len(col) for col in columns.values()}
    if len(lengths) != 1:
        raise InvalidInputError("The feature inputs have different lengths.", V2_FIX)
    _check_batch_size(lengths.pop(), max_batch, V2_FIX)
    return np.array([columns[f] for f in features], dtype=np.float64).T.copy(), request_id


def encode_v2(predictions: np.ndarray, model_name: str, model_version: str, request_id: str | None) -> bytes:
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = [{"name": OUTPUT_NAME, "shape": [int(predictions.size)], "datatype": "FP64",
                       "data": predictions}]
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def v2_model_metadata(model_name: str, model_version: str, features: Sequence[str]) -> dict[str, Any]:
    """``GET /v2/models/{name}``: the tensors this model takes and returns."""
    return {
        "name": model_name,
        "versions": [model_version],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(features)],
                    "parameters": {"features": list(features)}}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP64", "shape": [-1]}],
    }
