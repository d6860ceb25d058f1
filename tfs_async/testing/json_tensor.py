"""The emulator's REST JSON conversions, as TF Serving's util/json_tensor.cc does them.

Request side: :func:`parse_predict_body` then :func:`predict_inputs_from_json` turn a
``:predict`` body into typed ``TensorProto`` inputs (row ``instances`` or columnar
``inputs``); :func:`parse_classify_regress_body` turns a ``:classify`` / ``:regress``
body into an ``Input`` of ``tf.Example`` s. Response side: predict outputs, classify and
regress results, errors, model status and metadata as TF Serving writes them. Every
failure raises :class:`~tfs_async.testing.status.ServingStatus` with TF Serving's
exact message.

>>> from tfs_async._proto import types_pb2
>>> body = parse_predict_body(b'{"instances": [[1.0, 2.0], [3.0, NaN]]}')
>>> tensors, fmt = predict_inputs_from_json(body, {"x": types_pb2.DT_FLOAT})
>>> fmt, [d.size for d in tensors["x"].tensor_shape.dim], list(tensors["x"].float_val)[:3]
('row', [2, 2], [1.0, 2.0, 3.0])
>>> predict_outputs_to_json({"y": tensors["x"]}, "row")
b'{\\n    "predictions": [[1.0, 2.0], [3.0, NaN]\\n    ]\\n}'
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from google.protobuf import json_format

from tfs_async._proto import (
    classification_pb2,
    example_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    regression_pb2,
    tensor_pb2,
    types_pb2,
)
from tfs_async.codec.tensor import decode_tensor
from tfs_async.errors import StatusCode, TFServingError
from tfs_async.testing.json_reader import JsonSyntaxError, may_round_differently, parse_json
from tfs_async.testing.json_writer import (
    CHUNK,
    JsonTokens,
    debug_string,
    float_tokens,
    format_float,
    format_floats,
    quote,
)
from tfs_async.testing.status import ServingStatus, invalid_argument, unimplemented

__all__ = [
    "PredictBody",
    "PredictFormat",
    "classification_result_to_json",
    "datatype_string",
    "error_to_json",
    "metadata_to_json",
    "parse_classify_regress_body",
    "parse_predict_body",
    "predict_inputs_from_json",
    "predict_outputs_to_json",
    "regression_result_to_json",
    "status_to_json",
]

PredictFormat = Literal["row", "columnar"]

_SIGNATURE_DEF_MAP_TYPE = "tensorflow.serving.SignatureDefMap"
_DT = types_pb2.DataType
_INT32_FAMILY = frozenset({_DT.DT_INT32, _DT.DT_INT16, _DT.DT_INT8, _DT.DT_UINT8})
_JSON_OUTPUT_DTYPES = frozenset(
    {
        _DT.DT_FLOAT,
        _DT.DT_DOUBLE,
        _DT.DT_INT32,
        _DT.DT_INT16,
        _DT.DT_INT8,
        _DT.DT_UINT8,
        _DT.DT_STRING,
        _DT.DT_INT64,
        _DT.DT_BOOL,
        _DT.DT_UINT32,
        _DT.DT_UINT64,
    }
)
_INT32_RANGE = (-(2**31), 2**31 - 1)
_INT64_RANGE = (-(2**63), 2**63 - 1)
_UINT32_RANGE = (0, 2**32 - 1)
_UINT64_RANGE = (0, 2**64 - 1)


def datatype_string(dtype: int) -> str:
    """TF's ``DataTypeString``: ``DT_HALF`` -> ``"half"``, ``DT_FLOAT_REF`` -> ``"float_ref"``.

    >>> datatype_string(types_pb2.DT_COMPLEX64), datatype_string(types_pb2.DT_BFLOAT16)
    ('complex64', 'bfloat16')
    """
    try:
        name = _DT.Name(dtype)
    except ValueError:
        return f"unknown dtype enum ({dtype})"
    if name == "DT_INVALID":
        return "INVALID"
    if name.endswith("_REF"):
        return name[3:-4].lower() + "_ref"
    return name[3:].lower()


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _format_error(value: Any, message: str) -> ServingStatus:
    return invalid_argument(f"JSON Value: {debug_string(value)} {message}")


def _type_error(value: Any, dtype: int) -> ServingStatus:
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {_json_type(value)}"
        f" is not of expected type: {datatype_string(dtype)}"
    )


def _status_string(status: ServingStatus) -> str:
    # absl::Status::ToString(): "<CODE>: <message>".
    return f"{StatusCode(status.code).name}: {status.message}"


# --------------------------------------------------------------------------- parsing


def _parse_document(body: bytes) -> dict[str, Any]:
    """ParseJson(): RapidJSON parse, then the root must be an object."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = parse_json(body)
    except JsonSyntaxError as exc:
        raise invalid_argument(f"JSON Parse error: {exc.reason} at offset: {exc.offset}") from None
    if not isinstance(document, dict):
        raise _format_error(document, "Is not object")
    return document


def _signature_name(document: dict[str, Any]) -> str:
    """FillSignature(): the optional ``signature_name`` must be a string."""
    if "signature_name" not in document:
        return ""
    name = document["signature_name"]
    if not isinstance(name, str):
        raise _format_error(
            document, "not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


@dataclass(frozen=True)
class PredictBody:
    """A ``:predict`` body that passed TF Serving's first checks (JSON, signature name).

    ``signature_name`` is ``""`` when the body has none (TF then uses
    ``serving_default``); ``document`` is the parsed top-level object and ``raw`` the
    body it came from.
    """

    signature_name: str
    document: dict[str, Any] = field(repr=False)
    raw: bytes = field(default=b"", repr=False)


def parse_predict_body(body: bytes) -> PredictBody:
    """Steps 2-3 of a REST predict: parse ``body`` and check ``signature_name``.

    Runs before the servable is looked up, so these errors win over NOT_FOUND.

    >>> parse_predict_body(b'{"signature_name": "sig", "inputs": [1]} ignored').signature_name
    'sig'
    >>> parse_predict_body(b'[1]')
    Traceback (most recent call last):
    ...
    tfs_async.testing.status.ServingStatus: JSON Value: [1] Is not object
    """
    document = _parse_document(body)
    return PredictBody(signature_name=_signature_name(document), document=document, raw=body)


def _b64_object(value: Any) -> bool:
    """IsValBase64Object(): exactly ``{"b64": <string>}``."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_ASCII_SPACE = re.compile(rb"[ \t\n\v\f\r]+")


def _absl_base64_unescape(text: bytes) -> bytes | None:
    """absl::Base64Unescape: standard alphabet, whitespace skipped, padding optional
    but exact when present, ``.`` accepted as a pad character."""
    compact = _ASCII_SPACE.sub(b"", text)
    data = compact.rstrip(b"=.")
    pads = len(compact) - len(data)
    if any(ch not in _B64_ALPHABET for ch in data):
        return None
    remainder = len(data) % 4
    if remainder == 1:
        return None
    expected = {0: 0, 2: 2, 3: 1}[remainder]
    if pads not in (0, expected):
        return None
    try:
        # Non-canonical trailing bits are accepted, as absl does.
        return binascii.a2b_base64(data + b"=" * expected)
    except binascii.Error:
        return None


def _decode_b64_object(value: Any) -> bytes:
    """JsonDecodeBase64Object()."""
    if not _b64_object(value):
        raise invalid_argument(
            f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
        )
    decoded = _absl_base64_unescape(value["b64"].encode("utf-8", "surrogateescape"))
    if decoded is None:
        raise invalid_argument("Unable to base64 decode")
    return decoded


def _leaf_converter(dtype: int) -> Callable[[Any], Any]:
    """AddValueToTensor() for one DataType: JSON leaf -> value for the typed field."""

    def in_range(bounds: tuple[int, int]) -> Callable[[Any], Any]:
        low, high = bounds

        def convert(value: Any) -> Any:
            if type(value) is int and low <= value <= high:
                return value
            raise _type_error(value, dtype)

        return convert

    def number(value: Any) -> Any:
        if type(value) is int or type(value) is float:
            return value
        raise _type_error(value, dtype)

    def boolean(value: Any) -> Any:
        if type(value) is bool:
            return value
        raise _type_error(value, dtype)

    def string(value: Any) -> Any:
        if type(value) is str:
            return value.encode("utf-8", "surrogateescape")
        raise _type_error(value, dtype)

    def unsupported(value: Any) -> Any:
        raise unimplemented(
            f"Conversion of JSON Value: {debug_string(value)} to type: {datatype_string(dtype)}"
        )

    if dtype in (_DT.DT_FLOAT, _DT.DT_DOUBLE):
        return number
    if dtype in _INT32_FAMILY:
        return in_range(_INT32_RANGE)
    if dtype == _DT.DT_INT64:
        return in_range(_INT64_RANGE)
    if dtype == _DT.DT_UINT32:
        return in_range(_UINT32_RANGE)
    if dtype == _DT.DT_UINT64:
        return in_range(_UINT64_RANGE)
    if dtype == _DT.DT_BOOL:
        return boolean
    if dtype == _DT.DT_STRING:
        return string
    return unsupported


def _dense_shape(value: Any) -> list[int]:
    """GetDenseTensorShape(): dims from the first element at each level."""
    dims: list[int] = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return dims


def _tensor_leaves(value: Any, dims: Sequence[int], dtype: int) -> list[Any]:
    """FillTensorProto(): walk ``value`` depth-first against ``dims``, converting leaves.

    Iterative, so nesting deeper than Python's recursion limit is only an error.
    """
    rank = len(dims)
    convert = _leaf_converter(dtype)
    leaves: list[Any] = []

    def leaf(item: Any, level: int) -> None:
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {debug_string(item)} found at incorrect level: {level + 1}"
                f" in the JSON DOM. Expected at level: {rank}"
            )
        if isinstance(item, dict):
            if dtype != _DT.DT_STRING:
                raise _type_error(item, dtype)
            leaves.append(_decode_b64_object(item))
        else:
            leaves.append(convert(item))

    def check_list(item: list[Any], level: int) -> None:
        if level >= rank:
            raise invalid_argument(
                f"Encountered list at unexpected level: {level} expected < {rank}"
            )
        if len(item) != dims[level]:
            raise invalid_argument(
                f"Encountered list at unexpected size: {len(item)} at level: {level}"
                f" expected size: {dims[level]}"
            )

    if not isinstance(value, list):
        leaf(value, 0)
        return leaves
    check_list(value, 0)
    stack: list[tuple[Any, int]] = [(iter(value), 1)]
    while stack:
        items, level = stack[-1]
        for item in items:
            if isinstance(item, list):
                check_list(item, level)
                stack.append((iter(item), level + 1))
                break
            leaf(item, level)
        else:
            stack.pop()
    return leaves


def _fill_typed_values(tensor: tensor_pb2.TensorProto, leaves: list[Any]) -> None:
    dtype = tensor.dtype
    if dtype == _DT.DT_FLOAT:
        # GetFloat(): the double value cast to float (overflow -> inf, underflow -> 0).
        with np.errstate(over="ignore", under="ignore"):
            values = np.array([float(v) for v in leaves], dtype=np.float64).astype(np.float32)
        tensor.float_val.extend(values.tolist())
    elif dtype == _DT.DT_DOUBLE:
        tensor.double_val.extend([float(v) for v in leaves])
    elif dtype in _INT32_FAMILY:
        tensor.int_val.extend(leaves)
    elif dtype == _DT.DT_INT64:
        tensor.int64_val.extend(leaves)
    elif dtype == _DT.DT_UINT32:
        tensor.uint32_val.extend(leaves)
    elif dtype == _DT.DT_UINT64:
        tensor.uint64_val.extend(leaves)
    elif dtype == _DT.DT_BOOL:
        tensor.bool_val.extend(leaves)
    elif dtype == _DT.DT_STRING:
        tensor.string_val.extend(leaves)


def _shape_string(dims: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


def _make_tensor(dtype: int, dims: Sequence[int], leaves: list[Any]) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=dtype)  # type: ignore[arg-type]
    tensor.tensor_shape.SetInParent()  # a scalar still has a (dimensionless) shape
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    _fill_typed_values(tensor, leaves)
    return tensor


@dataclass(frozen=True)
class _DenseRule:
    """Which JSON leaves a numeric DataType accepts, and how numpy holds them exactly."""

    leaf_types: frozenset[type]
    array_dtype: type[np.generic]
    field: str
    bounds: tuple[int, int] | None = None


# Deeper nesting is read element by element (numpy stops at 64 dimensions).
_MAX_DENSE_RANK = 32
_NUMBERS = frozenset({int, float})
_INTEGERS = frozenset({int})
_DENSE_RULES: dict[int, _DenseRule] = {
    _DT.DT_FLOAT: _DenseRule(_NUMBERS, np.float64, "float_val"),
    _DT.DT_DOUBLE: _DenseRule(_NUMBERS, np.float64, "double_val"),
    **{dtype: _DenseRule(_INTEGERS, np.int64, "int_val", _INT32_RANGE) for dtype in _INT32_FAMILY},
    _DT.DT_INT64: _DenseRule(_INTEGERS, np.int64, "int64_val"),
    _DT.DT_UINT32: _DenseRule(_INTEGERS, np.int64, "uint32_val", _UINT32_RANGE),
    _DT.DT_UINT64: _DenseRule(_INTEGERS, np.uint64, "uint64_val"),
    _DT.DT_BOOL: _DenseRule(frozenset({bool}), np.bool_, "bool_val"),
}


def _dense_values(value: Any, dtype: int) -> np.ndarray[Any, Any] | None:
    """``value``'s leaves as one array, when :func:`_tensor_leaves` would accept them.

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
    dims = _dense_shape(value)
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


def _tensor_from_array(dtype: int, array: np.ndarray[Any, Any]) -> tensor_pb2.TensorProto:
    """The tensor :func:`_make_tensor` builds, from :func:`_dense_values`' array."""
    tensor = tensor_pb2.TensorProto(dtype=dtype)  # type: ignore[arg-type]
    tensor.tensor_shape.SetInParent()
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    flat = array.reshape(-1)
    if dtype == _DT.DT_FLOAT:
        # GetFloat(): the double value cast to float (overflow -> inf, underflow -> 0).
        with np.errstate(over="ignore", under="ignore"):
            flat = flat.astype(np.float32)
    field = getattr(tensor, _DENSE_RULES[dtype].field)
    # In slices, so that the Python numbers exist only a slice at a time.
    for start in range(0, flat.size, CHUNK):
        field.extend(flat[start : start + CHUNK].tolist())
    return tensor


def _dense_instances(
    instances: list[Any], input_dtypes: Mapping[str, int]
) -> dict[str, tensor_pb2.TensorProto] | None:
    """:func:`_tensors_from_instances` for well-formed numeric instances, or None."""
    first = instances[0]
    if not isinstance(first, dict):
        if len(input_dtypes) != 1:
            return None
        ((name, dtype),) = input_dtypes.items()
        array = _dense_values(instances, dtype)
        return None if array is None else {name: _tensor_from_array(dtype, array)}
    names = set(input_dtypes)
    if not all(_is_element_object(item) and set(item) == names for item in instances):
        return None
    tensors = {}
    for name in first:  # the element-by-element reading's order
        array = _dense_values([item[name] for item in instances], input_dtypes[name])
        if array is None:
            return None
        tensors[name] = _tensor_from_array(input_dtypes[name], array)
    return tensors


@dataclass
class _Batched:
    """One named input accumulated over the ``instances`` list."""

    size: int
    dims: list[int]
    leaves: list[Any]


def _add_instance_item(
    item: Any, name: str, input_dtypes: Mapping[str, int], batched: dict[str, _Batched]
) -> None:
    """AddInstanceItem()."""
    if name not in input_dtypes:
        raise invalid_argument(f"JSON object: does not have named input: {name}")
    dims = _dense_shape(item)
    leaves = _tensor_leaves(item, dims, input_dtypes[name])
    previous = batched.get(name)
    if previous is None:
        batched[name] = _Batched(size=len(leaves), dims=dims, leaves=leaves)
        return
    if previous.size != len(leaves):
        raise invalid_argument(f"Expecting tensor size: {previous.size} but got: {len(leaves)}")
    if previous.dims != dims:
        raise invalid_argument(
            f"Expecting shape {_shape_string(previous.dims)} but got: {_shape_string(dims)}"
        )
    previous.leaves.extend(leaves)


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _b64_object(value)


def _tensors_from_instances(
    instances: list[Any], input_dtypes: Mapping[str, int], *, vectorized: bool
) -> dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInstancesList()."""
    if vectorized:
        dense = _dense_instances(instances, input_dtypes)
        if dense is not None:
            return dense
    if not isinstance(instances[0], dict) and len(input_dtypes) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input"
            " tensors required as per tensorinfo_map"
        )
    objects = _is_element_object(instances[0])
    input_names = set(input_dtypes)
    first_name = next(iter(input_dtypes))
    batched: dict[str, _Batched] = {}
    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list"
                )
            for name, item in element.items():
                try:
                    _add_instance_item(item, name, input_dtypes, batched)
                except ServingStatus as exc:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {name} of 'instances'"
                        f" list. Error: {_status_string(exc)}"
                    ) from None
            if set(element) != input_names:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object:"
                    f" {debug_string(element)} keys must be equal to:"
                    f" {','.join(sorted(input_names))}"
                )
        else:
            if _is_element_object(element):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            try:
                _add_instance_item(element, first_name, input_dtypes, batched)
            except ServingStatus as exc:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list."
                    f" Error: {_status_string(exc)}"
                ) from None
    count = len(instances)
    return {
        name: _make_tensor(input_dtypes[name], [count, *entry.dims], entry.leaves)
        for name, entry in batched.items()
    }


def _tensors_from_inputs(
    inputs: Any, input_dtypes: Mapping[str, int], *, vectorized: bool
) -> dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInputsMap()."""
    if not isinstance(inputs, dict) or _b64_object(inputs):
        if len(input_dtypes) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input"
                " tensors required as per tensorinfo_map"
            )
        named = {next(iter(input_dtypes)): inputs}
    else:
        named = {}
        for name in input_dtypes:
            if name not in inputs:
                raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
            named[name] = inputs[name]
    tensors = {}
    for name, value in named.items():
        # Inputs are read one after another, so each may take either path.
        array = _dense_values(value, input_dtypes[name]) if vectorized else None
        if array is not None:
            tensors[name] = _tensor_from_array(input_dtypes[name], array)
            continue
        dims = _dense_shape(value)
        leaves = _tensor_leaves(value, dims, input_dtypes[name])
        tensors[name] = _make_tensor(input_dtypes[name], dims, leaves)
    return tensors


def predict_inputs_from_json(
    body: PredictBody, input_dtypes: Mapping[str, int], *, vectorized: bool = True
) -> tuple[dict[str, tensor_pb2.TensorProto], PredictFormat]:
    """Step 5 of a REST predict: ``instances`` / ``inputs`` -> typed input tensors.

    ``input_dtypes`` maps the signature's input names to their ``DataType`` (the
    client never sends dtypes). Returns the tensors, in typed ``*_val`` form with
    their shapes, and the request format (``"row"`` or ``"columnar"``), which decides
    the response layout.

    Dense numeric inputs are read with numpy; anything else (and everything with
    ``vectorized=False``) element by element, as TF Serving does. Both readings give
    the same tensors, and errors always come from the element-by-element one.

    >>> body = parse_predict_body(b'{"inputs": {"a": [[1, 2]], "b": "s", "extra": 0}}')
    >>> tensors, fmt = predict_inputs_from_json(body, {"a": 9, "b": 7})  # int64, string
    >>> fmt, list(tensors["a"].int64_val), tensors["b"].string_val[0]
    ('columnar', [1, 2], b's')
    """
    if not input_dtypes:
        raise invalid_argument(
            "Failed to get input map for signature: " + (body.signature_name or "DEFAULT")
        )
    document = body.document
    if _DT.DT_DOUBLE in input_dtypes.values() and may_round_differently(body.raw):
        # DT_DOUBLE keeps RapidJSON's double exactly: read its literals as RapidJSON does.
        document = parse_json(body.raw, exact_numbers=True)
    if "instances" in document:
        if "inputs" in document:
            raise _format_error(
                document,
                "Not formatted correctly expecting only one of 'inputs' or 'instances'"
                " keys to exist ",
            )
        instances = document["instances"]
        if not isinstance(instances, list):
            raise _format_error(document, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(document, "No values in 'instances' array")
        return _tensors_from_instances(instances, input_dtypes, vectorized=vectorized), "row"
    if "inputs" in document:
        tensors = _tensors_from_inputs(document["inputs"], input_dtypes, vectorized=vectorized)
        return tensors, "columnar"
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# ----------------------------------------------------------------- classify / regress


def _feature_kind_error(name: str, feature: example_pb2.Feature) -> ServingStatus:
    kind = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}.get(
        feature.WhichOneof("kind") or "", "UNKNOWN"
    )
    return invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _add_feature_value(value: Any, name: str, feature: example_pb2.Feature) -> None:
    """AddValueToFeature()."""
    kind = feature.WhichOneof("kind")

    def require(expected: str) -> None:
        if kind is not None and kind != expected:
            raise _feature_kind_error(name, feature)

    if isinstance(value, bool):
        require("int64_list")
        feature.int64_list.value.append(1 if value else 0)
    elif isinstance(value, str) or _b64_object(value):
        require("bytes_list")
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode("utf-8", "surrogateescape"))
        else:
            feature.bytes_list.value.append(_decode_b64_object(value))
    elif isinstance(value, float):
        require("float_list")
        with np.errstate(over="ignore", under="ignore"):
            feature.float_list.value.append(float(np.float32(value)))
    elif isinstance(value, int):
        require("int64_list")
        if value > _INT64_RANGE[1]:
            raise invalid_argument(
                f"Feature: {name} has uint64_t element. Only int64_t is supported."
            )
        feature.int64_list.value.append(value)
    else:  # null, array, non-b64 object
        raise invalid_argument(
            f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}"
        )


def _example_from_json(value: Any, example: example_pb2.Example) -> None:
    """MakeExampleFromJsonObject()."""
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        feature = example_pb2.Feature()
        for item in content if isinstance(content, list) else (content,):
            _add_feature_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)


def parse_classify_regress_body(body: bytes, method: str) -> tuple[str, input_pb2.Input]:
    """A ``:classify`` / ``:regress`` body -> (signature name, ``Input`` of Examples).

    With a ``context`` object the input is ``example_list_with_context``. ``method``
    names the call; TF Serving's "key 'examples' is expected" message says
    ``classify`` for both methods, and so does this one.

    >>> name, model_input = parse_classify_regress_body(b'{"examples": [{"x": 2.0}]}', "regress")
    >>> name, list(model_input.example_list.examples[0].features.feature["x"].float_list.value)
    ('', [2.0])
    """
    del method  # the messages do not depend on it (see docstring)
    document = _parse_document(body)
    signature_name = _signature_name(document)
    model_input = input_pb2.Input()
    has_context = "context" in document
    if has_context:
        _example_from_json(document["context"], model_input.example_list_with_context.context)
    if "examples" not in document:
        raise _format_error(
            document, "When method is classify, key 'examples' is expected and was not found"
        )
    examples = document["examples"]
    if not isinstance(examples, list):
        raise _format_error(document, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(document, "'examples' value is an empty array")
    target = (
        model_input.example_list_with_context.examples
        if has_context
        else model_input.example_list.examples
    )
    for value in examples:
        _example_from_json(value, target.add())
    return signature_name, model_input


# --------------------------------------------------------------------------- writing


def _dims(tensor: tensor_pb2.TensorProto) -> list[int]:
    return [max(int(d.size), 0) for d in tensor.tensor_shape.dim]


def _values(name: str, tensor: tensor_pb2.TensorProto) -> np.ndarray[Any, Any]:
    """``tensor``'s values, flat, for writing; empty when its shape holds none.

    Values are decoded with the codec, so typed ``*_val`` fields (TF Serving's
    default) and ``tensor_content`` both work.
    """
    if math.prod(_dims(tensor)) == 0:
        return np.empty(0)
    if tensor.dtype not in _JSON_OUTPUT_DTYPES:
        raise invalid_argument(
            f"Failed to write JSON value for tensor type: {datatype_string(tensor.dtype)}"
        )
    try:
        return decode_tensor(tensor, name=name, copy=False).reshape(-1)
    except TFServingError as exc:
        raise invalid_argument(exc.message) from None


def _string_texts(name: str, values: np.ndarray[Any, Any]) -> list[str]:
    # TF Serving writes outputs whose name ends in "_bytes" as base64 objects.
    if name.endswith("_bytes"):
        return [
            '{"b64": "' + base64.b64encode(bytes(v)).decode("ascii") + '"}' for v in values.tolist()
        ]
    return [quote(bytes(v).decode("utf-8", "surrogateescape")) for v in values.tolist()]


def _tokens(name: str, tensor: tensor_pb2.TensorProto) -> list[str]:
    """Each value of ``tensor`` as JSON text, one at a time (AddSingleValueAndAdvance())."""
    values = _values(name, tensor)
    if not values.size:
        return []
    dtype = tensor.dtype
    if dtype in (_DT.DT_FLOAT, _DT.DT_DOUBLE):
        double = dtype == _DT.DT_DOUBLE
        return [format_float(v, double=double) for v in values.tolist()]
    if dtype == _DT.DT_BOOL:
        return ["true" if v else "false" for v in values.tolist()]
    if dtype == _DT.DT_STRING:
        return _string_texts(name, values)
    return [str(v) for v in values.tolist()]


def _json_tokens(name: str, tensor: tensor_pb2.TensorProto) -> JsonTokens:
    """:func:`_tokens` as one :class:`JsonTokens`, built with numpy; needs values."""
    values = _values(name, tensor)
    dtype = tensor.dtype
    if dtype in (_DT.DT_FLOAT, _DT.DT_DOUBLE):
        return float_tokens(values)
    if dtype == _DT.DT_BOOL:
        return JsonTokens(("false", "true"), values.astype(np.intp), None)
    zeros = np.zeros(values.size, dtype=np.intp)
    if dtype == _DT.DT_STRING:
        return JsonTokens(("%s",), zeros, _string_texts(name, values))
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


def _nest(tokens: list[str], dims: Sequence[int], depth: int | None = None) -> list[str]:
    """Group flat ``tokens`` into nested JSON arrays, one text per outer index.

    ``depth=None`` writes single-line arrays (``[1, 2]``); otherwise PrettyWriter's
    default layout, one element per line, for an outermost array at nesting ``depth``.
    """
    groups = tokens
    for level in range(len(dims) - 1, -1, -1):
        size = dims[level]
        outer = math.prod(dims[:level])
        if size == 0:
            groups = ["[]"] * outer
            continue
        if depth is None:
            opening, separator, closing = "[", ", ", "]"
        else:
            inner = "\n" + "    " * (depth + level + 1)
            opening, separator = "[" + inner, "," + inner
            closing = "\n" + "    " * (depth + level) + "]"
        groups = [
            opening + separator.join(groups[i : i + size]) + closing
            for i in range(0, len(groups), size)
        ]
    return groups


def _encode(parts: Sequence[str]) -> bytes:
    # Request bytes come back through surrogateescape; any other stray surrogate is
    # not encodable and is replaced (everywhere) rather than failing the response.
    try:
        return b"".join(part.encode("utf-8", "surrogateescape") for part in parts)
    except UnicodeEncodeError:
        return b"".join(part.encode("utf-8", "replace") for part in parts)


def _document(key: str, *value: str) -> bytes:
    """``{"key": value}`` as TF Serving writes it; ``value`` may come in parts."""
    return _encode(["{\n    " + quote(key) + ": ", *value, "\n}"])


def predict_outputs_to_json(
    outputs: Mapping[str, tensor_pb2.TensorProto], fmt: str, *, vectorized: bool = True
) -> bytes:
    """MakeJsonFromTensors(): predict outputs -> ``{"predictions": ...}`` / ``{"outputs": ...}``.

    ``fmt`` is the request's format. One output is written unnamed; several are
    written by name (row: one object per batch item). Row format needs every output
    to have the same leading (batch) dimension.

    Values are laid out with numpy and formatted with one ``%`` per output;
    ``vectorized=False`` writes them one at a time instead. The bytes are the same.
    """
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if fmt == "row":
        return _row_json(outputs, vectorized)
    if fmt == "columnar":
        return _columnar_json(outputs, vectorized)
    raise invalid_argument("Invalid request format")


def _row_items(
    name: str, tensor: tensor_pb2.TensorProto, batch: int, vectorized: bool
) -> list[str]:
    """One single-line JSON text per batch item of ``tensor``."""
    dims = _dims(tensor)
    if vectorized and 0 not in dims:
        levels = [_ITEM_BREAK] + [_SINGLE_LINE] * (len(dims) - 1)
        return "".join(_render(_json_tokens(name, tensor), dims, levels)).split("\x00")
    tokens = _tokens(name, tensor) if batch else []
    if len(dims) == 1:
        return tokens
    return _nest(tokens, dims[1:]) if tokens else _nest([], dims[1:]) * batch


def _row_json(outputs: Mapping[str, tensor_pb2.TensorProto], vectorized: bool) -> bytes:
    batch = -1
    for name, tensor in outputs.items():
        dims = _dims(tensor)
        if not dims:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and dims[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {dims[0]} expecting: {batch}"
            )
        batch = dims[0]
    if vectorized and len(outputs) == 1:
        ((name, tensor),) = outputs.items()
        dims = _dims(tensor)
        if 0 not in dims:
            # Items are written single-line; the closing bracket goes on its own line.
            levels = [_Level("[", ", ", "\n    ]")] + [_SINGLE_LINE] * (len(dims) - 1)
            return _document("predictions", *_render(_json_tokens(name, tensor), dims, levels))
    items = {name: _row_items(name, tensor, batch, vectorized) for name, tensor in outputs.items()}
    if len(outputs) == 1:
        # Items are written single-line; the closing bracket goes on its own line.
        rows = next(iter(items.values()))
        return _document("predictions", "[" + ", ".join(rows) + "\n    ]" if rows else "[]")
    objects = [
        "{\n            "
        + ",\n            ".join(quote(name) + ": " + items[name][i] for name in outputs)
        + "\n        }"
        for i in range(batch)
    ]
    if not objects:
        return _document("predictions", "[]")
    return _document("predictions", "[\n        " + ",\n        ".join(objects) + "\n    ]")


def _columnar_text(
    name: str, tensor: tensor_pb2.TensorProto, depth: int, vectorized: bool
) -> list[str]:
    dims = _dims(tensor)
    if vectorized and 0 not in dims:
        return _render(_json_tokens(name, tensor), dims, _pretty_levels(len(dims), depth))
    tokens = _tokens(name, tensor)
    return [_nest(tokens, dims, depth)[0] if dims else tokens[0]]


def _columnar_json(outputs: Mapping[str, tensor_pb2.TensorProto], vectorized: bool) -> bytes:
    # Columnar output keeps PrettyWriter's default layout: one array element per line.
    if len(outputs) == 1:
        ((name, tensor),) = outputs.items()
        return _document("outputs", *_columnar_text(name, tensor, 1, vectorized))
    parts = ["{"]
    for index, (name, tensor) in enumerate(outputs.items()):
        parts.append(("\n        " if index == 0 else ",\n        ") + quote(name) + ": ")
        parts += _columnar_text(name, tensor, 2, vectorized)
    parts.append("\n    }")
    return _document("outputs", *parts)


def classification_result_to_json(result: classification_pb2.ClassificationResult) -> bytes:
    """MakeJsonFromClassificationResult(): ``{"results": [[[label, score], ...], ...]}``."""
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classifications in result.classifications:
        pairs = [
            "[" + quote(c.label) + ", " + format_float(c.score, double=False) + "]"
            for c in classifications.classes
        ]
        rows.append("[" + ", ".join(pairs) + "]")
    return _document("results", "[" + ", ".join(rows) + "\n    ]")


def regression_result_to_json(result: regression_pb2.RegressionResult) -> bytes:
    """MakeJsonFromRegressionResult(): ``{"results": [value, ...]}``.

    >>> r = regression_pb2.RegressionResult()
    >>> _ = r.regressions.add(value=3.0)
    >>> regression_result_to_json(r)
    b'{\\n    "results": [3.0]\\n}'
    """
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    values = np.array([r.value for r in result.regressions], dtype=np.float32)
    return _document("results", "[" + ", ".join(format_floats(values)) + "]")


def error_to_json(message: str) -> bytes:
    """MakeJsonFromStatus(): ``{"error": "<message>"}``, escaped as RapidJSON does.

    >>> error_to_json('Bad key: "key"')
    b'{\\n    "error": "Bad key: \\\\"key\\\\""\\n}'
    """
    return _document("error", quote(message))


def status_to_json(response: get_model_status_pb2.GetModelStatusResponse) -> bytes:
    """A GetModelStatus response as TF Serving's REST API writes it.

    proto3 JSON with every field printed (int64 as strings, enums by name), versions
    newest first as TF Serving's ``VersionMap`` orders them.
    """
    ordered = get_model_status_pb2.GetModelStatusResponse()
    for version_status in sorted(
        response.model_version_status, key=lambda s: s.version, reverse=True
    ):
        added = ordered.model_version_status.add()
        added.CopyFrom(version_status)
        # TF Serving always fills the status (OK when healthy).
        added.status.SetInParent()
    text = json_format.MessageToJson(ordered, indent=1, always_print_fields_with_no_presence=True)
    return text.encode("utf-8")


def metadata_to_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> bytes:
    """A GetModelMetadata response as TF Serving's REST API writes it.

    ``{"model_spec": ..., "metadata": {"signature_def": <SignatureDefMap>}}`` with
    proto field names and no ``@type``; the ``Any`` is unpacked by hand because its
    type URL names TF's package, not ours.
    """
    if "signature_def" not in response.metadata:
        raise ServingStatus(
            StatusCode.INTERNAL,
            "Failed to find 'signature_def' key in the GetModelMetadataResponse metadata map.",
        )
    packed = response.metadata["signature_def"]
    if packed.type_url.rpartition("/")[2] != _SIGNATURE_DEF_MAP_TYPE:
        raise ServingStatus(
            StatusCode.INTERNAL, "Failed to unpack 'Any' object to 'SignatureDefMap'."
        )
    signature_def_map = get_model_metadata_pb2.SignatureDefMap.FromString(packed.value)
    options: dict[str, Any] = {
        "indent": 1,
        "always_print_fields_with_no_presence": True,
        "preserving_proto_field_name": True,
    }
    model_spec = json_format.MessageToJson(response.model_spec, **options)
    signature_defs = json_format.MessageToJson(signature_def_map, **options)
    text = (
        '{\n"model_spec":'
        + model_spec
        + ',\n"metadata": {"signature_def": '
        + signature_defs
        + "}\n}\n"
    )
    return text.encode("utf-8")
