"""REST request bodies -> protos, element by element as TF Serving's util/json_tensor.cc does.

:func:`parse_predict_body` then :func:`predict_inputs_from_json` turn a
``:predict`` body into typed ``TensorProto`` inputs (row ``instances`` or columnar
``inputs``); :func:`parse_classify_regress_body` turns a ``:classify`` /
``:regress`` body into an ``Input`` of ``tf.Example`` s. This is the exact path:
every failure raises :class:`~tfs_async.testing.status.ServingStatus` with TF
Serving's message. :mod:`~tfs_async.testing.rest_json.dense` reads dense numeric
tensors faster and falls back to this path for everything else.

>>> from tfs_async._proto import types_pb2
>>> body = parse_predict_body(b'{"instances": [[1.0, 2.0], [3.0, NaN]]}')
>>> tensors, fmt = predict_inputs_from_json(body, {"x": types_pb2.DT_FLOAT})
>>> fmt, [d.size for d in tensors["x"].tensor_shape.dim], list(tensors["x"].float_val)[:3]
('row', [2, 2], [1.0, 2.0, 3.0])
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tfs_async._proto import example_pb2, input_pb2, tensor_pb2, types_pb2
from tfs_async.codec import dtypes
from tfs_async.errors import StatusCode
from tfs_async.testing.rest_json.reader import JsonSyntaxError, may_round_differently, parse_json
from tfs_async.testing.rest_json.writer import debug_string
from tfs_async.testing.status import ServingStatus, invalid_argument, unimplemented

__all__ = [
    "PredictBody",
    "PredictFormat",
    "parse_classify_regress_body",
    "parse_predict_body",
    "predict_inputs_from_json",
    "predict_payload",
    "tensor_from_json",
    "tensors_from_instances",
]

PredictFormat = Literal["row", "columnar"]

_DT = types_pb2.DataType
INT32_FAMILY = frozenset({_DT.DT_INT32, _DT.DT_INT16, _DT.DT_INT8, _DT.DT_UINT8})
INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)
UINT32_RANGE = (0, 2**32 - 1)
UINT64_RANGE = (0, 2**64 - 1)


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


def _type_error(value: Any, dtype: dtypes.DataType) -> ServingStatus:
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {_json_type(value)}"
        f" is not of expected type: {dtypes.type_string(dtype)}"
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


def _leaf_converter(dtype: dtypes.DataType) -> Callable[[Any], Any]:  # noqa: C901 -- one case per dtype
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
            f"Conversion of JSON Value: {debug_string(value)} to type: {dtypes.type_string(dtype)}"
        )

    if dtype in (_DT.DT_FLOAT, _DT.DT_DOUBLE):
        return number
    if dtype in INT32_FAMILY:
        return in_range(INT32_RANGE)
    if dtype == _DT.DT_INT64:
        return in_range(INT64_RANGE)
    if dtype == _DT.DT_UINT32:
        return in_range(UINT32_RANGE)
    if dtype == _DT.DT_UINT64:
        return in_range(UINT64_RANGE)
    if dtype == _DT.DT_BOOL:
        return boolean
    if dtype == _DT.DT_STRING:
        return string
    return unsupported


def dense_shape(value: Any) -> list[int]:
    """GetDenseTensorShape(): dims from the first element at each level."""
    dims: list[int] = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return dims


def _tensor_leaves(value: Any, dims: Sequence[int], dtype: dtypes.DataType) -> list[Any]:
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
    elif dtype in INT32_FAMILY:
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


def _make_tensor(
    dtype: dtypes.DataType, dims: Sequence[int], leaves: list[Any]
) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=dtype)
    tensor.tensor_shape.SetInParent()  # a scalar still has a (dimensionless) shape
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    _fill_typed_values(tensor, leaves)
    return tensor


@dataclass
class _Batched:
    """One named input accumulated over the ``instances`` list."""

    size: int
    dims: list[int]
    leaves: list[Any]


def _add_instance_item(
    item: Any, name: str, input_dtypes: Mapping[str, dtypes.DataType], batched: dict[str, _Batched]
) -> None:
    """AddInstanceItem()."""
    if name not in input_dtypes:
        raise invalid_argument(f"JSON object: does not have named input: {name}")
    dims = dense_shape(item)
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


def is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _b64_object(value)


def tensors_from_instances(
    instances: list[Any], input_dtypes: Mapping[str, dtypes.DataType]
) -> dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInstancesList(), element by element."""
    if not isinstance(instances[0], dict) and len(input_dtypes) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input"
            " tensors required as per tensorinfo_map"
        )
    objects = is_element_object(instances[0])
    input_names = set(input_dtypes)
    first_name = next(iter(input_dtypes))
    batched: dict[str, _Batched] = {}
    for index, element in enumerate(instances):
        if objects:
            if not is_element_object(element):
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
            if is_element_object(element):
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


def tensor_from_json(value: Any, dtype: dtypes.DataType) -> tensor_pb2.TensorProto:
    """One JSON value (a nested list or a scalar) as a typed tensor, element by element."""
    dims = dense_shape(value)
    return _make_tensor(dtype, dims, _tensor_leaves(value, dims, dtype))


def predict_payload(
    body: PredictBody, input_dtypes: Mapping[str, dtypes.DataType]
) -> tuple[PredictFormat, Any]:
    """Step 5's checks of a predict body: which format, and the values to read.

    Returns ``("row", instances)`` (a non-empty list) or ``("columnar", inputs)``
    (input name -> JSON value, every signature input present).
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
        return "row", instances
    if "inputs" not in document:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    # FillTensorMapFromInputsMap().
    inputs = document["inputs"]
    if not isinstance(inputs, dict) or _b64_object(inputs):
        if len(input_dtypes) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input"
                " tensors required as per tensorinfo_map"
            )
        return "columnar", {next(iter(input_dtypes)): inputs}
    named = {}
    for name in input_dtypes:
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        named[name] = inputs[name]
    return "columnar", named


def predict_inputs_from_json(
    body: PredictBody, input_dtypes: Mapping[str, dtypes.DataType]
) -> tuple[dict[str, tensor_pb2.TensorProto], PredictFormat]:
    """Step 5 of a REST predict, element by element as TF Serving does: the exact reading.

    ``input_dtypes`` maps the signature's input names to their ``DataType`` (the
    client never sends dtypes). Returns the tensors, in typed ``*_val`` form with
    their shapes, and the request format (``"row"`` or ``"columnar"``), which decides
    the response layout. :func:`tfs_async.testing.rest_json.dense.predict_inputs_from_json`
    gives the same tensors faster for dense numeric inputs.

    >>> body = parse_predict_body(b'{"inputs": {"a": [[1, 2]], "b": "s", "extra": 0}}')
    >>> tensors, fmt = predict_inputs_from_json(body, {"a": 9, "b": 7})  # int64, string
    >>> fmt, list(tensors["a"].int64_val), tensors["b"].string_val[0]
    ('columnar', [1, 2], b's')
    """
    fmt, payload = predict_payload(body, input_dtypes)
    if fmt == "row":
        return tensors_from_instances(payload, input_dtypes), fmt
    return {name: tensor_from_json(v, input_dtypes[name]) for name, v in payload.items()}, fmt


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
        if value > INT64_RANGE[1]:
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
