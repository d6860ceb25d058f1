"""The fast path of REST JSON: dense numeric tensors read and written with numpy.

:func:`predict_inputs_from_json` and :func:`predict_outputs_to_json` are what the
emulator's REST service runs. A big numeric tensor is read in one ``np.array``
call and written with one ``%`` format per output; anything else (strings,
ragged or out-of-range values, empty dimensions, any error) falls back to the
element-by-element path of :mod:`~tfs_async.testing.rest_json.request` and
:mod:`~tfs_async.testing.rest_json.response`, which is the reference: both give
the same tensors and the same bytes, and errors always come from it.

>>> from tfs_async._proto import types_pb2
>>> from tfs_async.testing.rest_json.request import parse_predict_body
>>> body = parse_predict_body(b'{"instances": [[1.0, 2.0], [3.0, NaN]]}')
>>> tensors, fmt = predict_inputs_from_json(body, {"x": types_pb2.DT_FLOAT})
>>> fmt, [d.size for d in tensors["x"].tensor_shape.dim], list(tensors["x"].float_val)[:3]
('row', [2, 2], [1.0, 2.0, 3.0])
>>> predict_outputs_to_json({"y": tensors["x"]}, "row")
b'{\\n    "predictions": [[1.0, 2.0], [3.0, NaN]\\n    ]\\n}'
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfs_async._proto import tensor_pb2, types_pb2
from tfs_async.codec import dtypes
from tfs_async.testing.rest_json import request, response
from tfs_async.testing.rest_json.request import (
    INT32_FAMILY,
    INT32_RANGE,
    UINT32_RANGE,
    PredictBody,
    PredictFormat,
    dense_shape,
    is_element_object,
)
from tfs_async.testing.rest_json.writer import CHUNK, JsonTokens, float_tokens

__all__ = [
    "DensePredictOutputWriter",
    "dense_values",
    "predict_inputs_from_json",
    "predict_outputs_to_json",
]

_DT = types_pb2.DataType


# --------------------------------------------------------------------------- reading


def predict_inputs_from_json(
    body: PredictBody, input_dtypes: Mapping[str, dtypes.DataType]
) -> tuple[dict[str, tensor_pb2.TensorProto], PredictFormat]:
    """Step 5 of a REST predict: ``instances`` / ``inputs`` -> typed input tensors.

    :func:`~tfs_async.testing.rest_json.request.predict_inputs_from_json`'s result,
    with dense numeric inputs read by numpy.
    """
    fmt, payload = request.predict_payload(body, input_dtypes)
    if fmt == "row":
        tensors = _dense_instances(payload, input_dtypes)
        if tensors is None:
            tensors = request.tensors_from_instances(payload, input_dtypes)
        return tensors, fmt
    # Inputs are read one after another, so each may take either path.
    return {name: _dense_tensor(value, input_dtypes[name]) for name, value in payload.items()}, fmt


def _dense_tensor(value: Any, dtype: dtypes.DataType) -> tensor_pb2.TensorProto:
    array = dense_values(value, dtype)
    if array is None:
        return request.tensor_from_json(value, dtype)
    return _tensor_from_array(dtype, array)


@dataclass(frozen=True)
class _DenseRule:
    """Which JSON leaves a numeric DataType accepts, and how numpy holds them exactly."""

    leaf_types: frozenset[type]
    array_dtype: type[np.generic]
    bounds: tuple[int, int] | None = None


# Deeper nesting is read element by element (numpy stops at 64 dimensions).
_MAX_DENSE_RANK = 32
_NUMBERS = frozenset({int, float})
_INTEGERS = frozenset({int})
_DENSE_RULES: dict[dtypes.DataType, _DenseRule] = {
    _DT.DT_FLOAT: _DenseRule(_NUMBERS, np.float64),
    _DT.DT_DOUBLE: _DenseRule(_NUMBERS, np.float64),
    **{dtype: _DenseRule(_INTEGERS, np.int64, INT32_RANGE) for dtype in INT32_FAMILY},
    _DT.DT_INT64: _DenseRule(_INTEGERS, np.int64),
    _DT.DT_UINT32: _DenseRule(_INTEGERS, np.int64, UINT32_RANGE),
    _DT.DT_UINT64: _DenseRule(_INTEGERS, np.uint64),
    _DT.DT_BOOL: _DenseRule(frozenset({bool}), np.bool_),
}


def dense_values(value: Any, dtype: dtypes.DataType) -> np.ndarray[Any, Any] | None:
    """``value``'s leaves as one array, when the element-by-element reading would accept them.

    The vectorized reading of a big numeric tensor: the leaves' Python types are
    collected at C speed (so a ``true`` among floats, or ``1.0`` among ints, is seen:
    numpy itself would turn them into 1.0 and 1), then numpy builds the array with
    the dtype's exact conversion, its shape must be the one TF infers from the first
    elements, and integers must be in range. None means "read it element by
    element": that path is the reference, and has TF's error messages.
    """
    rule = _DENSE_RULES.get(dtype)
    if rule is None or not isinstance(value, list):
        return None
    dims = dense_shape(value)
    if len(dims) > _MAX_DENSE_RANK:
        return None
    leaves: Iterable[Any] = value
    for _ in range(len(dims) - 1):
        leaves = itertools.chain.from_iterable(leaves)
    try:
        leaf_types = set(map(type, leaves))
    except TypeError:  # a number where a list should be
        return None
    if not leaf_types or not leaf_types <= rule.leaf_types:
        return None
    try:
        array = np.array(value, dtype=rule.array_dtype)
    except (ValueError, TypeError, OverflowError):  # ragged, or beyond the dtype
        return None
    if array.shape != tuple(dims):
        return None
    if rule.bounds is not None:
        low, high = rule.bounds
        if array.min() < low or array.max() > high:
            return None
    return array


def _tensor_from_array(
    dtype: dtypes.DataType, array: np.ndarray[Any, Any]
) -> tensor_pb2.TensorProto:
    """The tensor element-by-element reading builds, from :func:`dense_values`' array."""
    tensor = tensor_pb2.TensorProto(dtype=dtype)
    tensor.tensor_shape.SetInParent()
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    flat = array.reshape(-1)
    if dtype == _DT.DT_FLOAT:
        # GetFloat(): the double value cast to float (overflow -> inf, underflow -> 0).
        with np.errstate(over="ignore", under="ignore"):
            flat = flat.astype(np.float32)
    field = getattr(tensor, dtypes.VAL_FIELDS[dtype][0])
    # In slices, so that the Python numbers exist only a slice at a time.
    for start in range(0, flat.size, CHUNK):
        field.extend(flat[start : start + CHUNK].tolist())
    return tensor


def _dense_instances(
    instances: list[Any], input_dtypes: Mapping[str, dtypes.DataType]
) -> dict[str, tensor_pb2.TensorProto] | None:
    """The ``instances`` tensors, for well-formed numeric instances; None otherwise."""
    first = instances[0]
    if not isinstance(first, dict):
        if len(input_dtypes) != 1:
            return None
        ((name, dtype),) = input_dtypes.items()
        array = dense_values(instances, dtype)
        return None if array is None else {name: _tensor_from_array(dtype, array)}
    names = set(input_dtypes)
    if not all(is_element_object(item) and set(item) == names for item in instances):
        return None
    tensors = {}
    for name in first:  # the element-by-element reading's order
        array = dense_values([item[name] for item in instances], input_dtypes[name])
        if array is None:
            return None
        tensors[name] = _tensor_from_array(input_dtypes[name], array)
    return tensors


# --------------------------------------------------------------------------- writing


class DensePredictOutputWriter(response.PredictOutputWriter):
    """The exact writer's text, laid out with numpy for tensors without empty dimensions."""

    def row_items(self, name: str, tensor: tensor_pb2.TensorProto, batch: int) -> list[str]:
        dims = response.tensor_dims(tensor)
        if 0 in dims:
            return super().row_items(name, tensor, batch)
        levels = [_ITEM_BREAK] + [_SINGLE_LINE] * (len(dims) - 1)
        return "".join(_render(_json_tokens(name, tensor), dims, levels)).split("\x00")

    def predictions_array(self, name: str, tensor: tensor_pb2.TensorProto, batch: int) -> list[str]:
        dims = response.tensor_dims(tensor)
        if 0 in dims:
            return super().predictions_array(name, tensor, batch)
        # Items are written single-line; the closing bracket goes on its own line.
        levels = [_Level("[", ", ", "\n    ]")] + [_SINGLE_LINE] * (len(dims) - 1)
        return _render(_json_tokens(name, tensor), dims, levels)

    def columnar_text(self, name: str, tensor: tensor_pb2.TensorProto, depth: int) -> list[str]:
        dims = response.tensor_dims(tensor)
        if 0 in dims:
            return super().columnar_text(name, tensor, depth)
        return _render(_json_tokens(name, tensor), dims, _pretty_levels(len(dims), depth))


_WRITER = DensePredictOutputWriter()


def predict_outputs_to_json(outputs: Mapping[str, tensor_pb2.TensorProto], fmt: str) -> bytes:
    """MakeJsonFromTensors(): the exact writer's bytes, laid out by numpy.

    The same bytes as :func:`tfs_async.testing.rest_json.response.predict_outputs_to_json`,
    with values formatted with one ``%`` per output.
    """
    return _WRITER.write(outputs, fmt)


def _json_tokens(name: str, tensor: tensor_pb2.TensorProto) -> JsonTokens:
    """The exact writer's value texts as one :class:`JsonTokens`, built with numpy; needs values."""
    values = response.tensor_values(name, tensor)
    dtype = tensor.dtype
    if dtype in (_DT.DT_FLOAT, _DT.DT_DOUBLE):
        return float_tokens(values)
    if dtype == _DT.DT_BOOL:
        return JsonTokens(("false", "true"), values.astype(np.intp), None)
    zeros = np.zeros(values.size, dtype=np.intp)
    if dtype == _DT.DT_STRING:
        return JsonTokens(("%s",), zeros, response.string_texts(name, values))
    return JsonTokens(("%d",), zeros, values.tolist())


@dataclass(frozen=True)
class _Level:
    """How one nesting level of an array is written."""

    opening: str
    separator: str
    closing: str


_SINGLE_LINE = _Level("[", ", ", "]")
# Joins row items so that they can be split apart again: no value text holds a NUL
# (string values escape it).
_ITEM_BREAK = _Level("", "\x00", "")


def _pretty_levels(rank: int, depth: int) -> list[_Level]:
    """PrettyWriter's default layout, one element per line, for an array at ``depth``."""
    return [
        _Level(
            "[\n" + "    " * (depth + level + 1),
            ",\n" + "    " * (depth + level + 1),
            "\n" + "    " * (depth + level) + "]",
        )
        for level in range(rank)
    ]


def _render(tokens: JsonTokens, dims: Sequence[int], levels: Sequence[_Level]) -> list[str]:
    """The nested array text of ``tokens`` (shape ``dims``, at least one value), in parts.

    What follows element ``i`` depends only on how many innermost arrays it closes,
    so it is picked from a small table with numpy, and each slice of elements is one
    template formatted with one ``%``: no per-element Python code.
    """
    rank = len(dims)
    # tails[c]: the text after an element that closes c arrays (c == rank: the last).
    tails = [
        "".join(levels[rank - 1 - j].closing for j in range(closed))
        + levels[rank - 1 - closed].separator
        + "".join(levels[j].opening for j in range(rank - closed, rank))
        for closed in range(rank)
    ]
    tails.append("".join(levels[j].closing for j in reversed(range(rank))))
    count = tokens.kinds.size
    closes = np.zeros(count, dtype=np.intp)
    block = 1
    for size in reversed(dims):
        block *= size
        closes[block - 1 :: block] += 1
    table = np.array([spec + tail for spec in tokens.specs for tail in tails], dtype=object)
    parts = ["".join(level.opening for level in levels)]
    # In slices, so that no Python list holds every element's text at once.
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        index = tokens.kinds[start:stop] * len(tails) + closes[start:stop]
        template = "".join(table[index].tolist())
        if tokens.args is not None:
            template %= tokens.arguments(start, stop)
        parts.append(template)
    return parts
