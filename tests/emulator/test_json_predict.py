"""REST predict/classify/regress JSON conversions beyond TF Serving's own cases (SPEC §2.4-2.6)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tfs_async._proto import classification_pb2, tensor_pb2, types_pb2
from tfs_async.codec.tensor import encode_tensor
from tfs_async.errors import StatusCode
from tfs_async.testing import rest_json
from tfs_async.testing.rest_json.reader import parse_json
from tfs_async.testing.status import ServingStatus

DT = types_pb2.DataType


def inputs(
    body: str, **dtypes: types_pb2.DataType
) -> tuple[dict[str, tensor_pb2.TensorProto], str]:
    return rest_json.predict_inputs_from_json(rest_json.parse_predict_body(body.encode()), dtypes)


def failure(body: str, **dtypes: types_pb2.DataType) -> ServingStatus:
    with pytest.raises(ServingStatus) as info:
        inputs(body, **dtypes)
    return info.value


def dims(tensor: tensor_pb2.TensorProto) -> list[int]:
    return [d.size for d in tensor.tensor_shape.dim]


# ------------------------------------------------------------------ request values


def test_b64_strings_follow_absl_rules() -> None:
    tensors, _ = inputs(
        '{"inputs": [{"b64": "aGVsbG8="}, {"b64": "aGVsbG8"}, {"b64": "aGVsbG8."},'
        ' {"b64": "aGVs\\nbG8="}, "raw"]}',
        x=DT.DT_STRING,
    )
    assert list(tensors["x"].string_val) == [b"hello"] * 4 + [b"raw"]
    for bad in ('"aGVsbG8=="', '"aGVsbG-_"', '"a"'):
        error = failure(f'{{"inputs": [{{"b64": {bad}}}]}}', x=DT.DT_STRING)
        assert error.message == "Unable to base64 decode"
    error = failure('{"inputs": [{"b64": "aGk=", "x": 1}]}', x=DT.DT_STRING)
    assert error.message.endswith("not formatted correctly for base64 data")


@pytest.mark.parametrize(
    ("dtype", "field", "body_values", "values"),
    [
        (
            DT.DT_INT64,
            "int64_val",
            "[9223372036854775807, -9223372036854775808]",
            [2**63 - 1, -(2**63)],
        ),
        (DT.DT_UINT64, "uint64_val", "[18446744073709551615, 0]", [2**64 - 1, 0]),
        (DT.DT_UINT32, "uint32_val", "[4294967295]", [2**32 - 1]),
        (DT.DT_INT8, "int_val", "[1000, -5]", [1000, -5]),  # no narrow-range check
        (DT.DT_BOOL, "bool_val", "[true, false]", [True, False]),
        (DT.DT_DOUBLE, "double_val", "[0.1, 1, -Infinity]", [0.1, 1.0, -np.inf]),
        (DT.DT_FLOAT, "float_val", "[16777217, 1e39, -1e-50]", [16777216.0, np.inf, -0.0]),
    ],
)
def test_value_conversion(
    dtype: types_pb2.DataType, field: str, body_values: str, values: list[Any]
) -> None:
    tensors, fmt = inputs(f'{{"instances": {body_values}}}', x=dtype)
    assert fmt == "row"
    assert list(getattr(tensors["x"], field)) == values
    assert tensors["x"].dtype == dtype


@pytest.mark.parametrize(
    ("dtype", "value", "json_type", "type_name"),
    [
        (DT.DT_INT32, "1.0", "Number", "int32"),
        (DT.DT_INT32, "2147483648", "Number", "int32"),
        (DT.DT_INT64, "9223372036854775808", "Number", "int64"),
        (DT.DT_UINT32, "-1", "Number", "uint32"),
        (DT.DT_BOOL, "1", "Number", "bool"),
        (DT.DT_FLOAT, "true", "True", "float"),
        (DT.DT_FLOAT, "null", "Null", "float"),
        (DT.DT_STRING, "5", "Number", "string"),
        (DT.DT_INT32, '{"a": 1}', "Object", "int32"),
    ],
)
def test_type_mismatch_messages(
    dtype: types_pb2.DataType, value: str, json_type: str, type_name: str
) -> None:
    error = failure(f'{{"inputs": [{value}]}}', x=dtype)
    assert error.code == StatusCode.INVALID_ARGUMENT
    assert error.message.endswith(f"Type: {json_type} is not of expected type: {type_name}")
    assert error.message.startswith("JSON Value: ")


def test_double_inputs_get_rapidjsons_doubles() -> None:
    # RapidJSON (no full-precision flag) reads these to doubles that are not the
    # correctly rounded ones; DT_DOUBLE keeps them, so the emulator must too.
    body = '{"inputs": [123456789012345678901234567890, 3.4028234663852886e+38, 0.5]}'
    expected = [float.fromhex("0x1.8ee90ff6c373dp+96"), float.fromhex("0x1.fffffe0000001p+127")]
    tensors, _ = inputs(body, x=DT.DT_DOUBLE)
    assert list(tensors["x"].double_val) == [*expected, 0.5]
    tensors, _ = inputs(body, x=DT.DT_FLOAT)
    assert list(tensors["x"].float_val) == [float(np.float32(v)) for v in (*expected, 0.5)]


def test_unsupported_dtypes_are_unimplemented_in_columnar_and_wrapped_in_row() -> None:
    columnar = failure('{"inputs": [1.5]}', x=DT.DT_HALF)
    assert columnar.code == StatusCode.UNIMPLEMENTED
    assert columnar.message == "Conversion of JSON Value: 1.5 to type: half"
    # FillTensorMapFromInstancesList wraps the status text in an INVALID_ARGUMENT.
    row = failure('{"instances": [1.5]}', x=DT.DT_BFLOAT16)
    assert row.code == StatusCode.INVALID_ARGUMENT
    assert row.message == (
        "Failed to process element: 0 of 'instances' list. Error: UNIMPLEMENTED:"
        " Conversion of JSON Value: 1.5 to type: bfloat16"
    )


# ------------------------------------------------------------------ request shapes


def test_columnar_shapes_follow_the_json_nesting() -> None:
    tensors, fmt = inputs(
        '{"inputs": {"a": 3, "b": [[]], "unused": "x"}}', a=DT.DT_INT32, b=DT.DT_FLOAT
    )
    assert fmt == "columnar"
    assert dims(tensors["a"]) == []
    assert tensors["a"].HasField("tensor_shape")
    assert list(tensors["a"].int_val) == [3]
    assert dims(tensors["b"]) == [1, 0]


def test_row_objects_batch_each_input() -> None:
    tensors, _ = inputs(
        '{"instances": [{"a": [1, 2], "b": "p"}, {"a": [3, 4], "b": "q"}]}',
        a=DT.DT_INT64,
        b=DT.DT_STRING,
    )
    assert dims(tensors["a"]) == [2, 2]
    assert list(tensors["a"].int64_val) == [1, 2, 3, 4]
    assert dims(tensors["b"]) == [2]
    assert list(tensors["b"].string_val) == [b"p", b"q"]


@pytest.mark.parametrize(
    ("body", "dtypes", "message"),
    [
        ('{"x": 1}', {"a": DT.DT_INT32}, "Missing 'inputs' or 'instances' key"),
        (
            '{"instances": 1}',
            {"a": DT.DT_INT32},
            "JSON Value: {\n    \"instances\": 1\n} Expecting 'instances' to be an list/array",
        ),
        (
            '{"instances": []}',
            {"a": DT.DT_INT32},
            "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        ),
        ('{"instances": [1]}', {}, "Failed to get input map for signature: DEFAULT"),
        (
            '{"instances": [1], "signature_name": "s"}',
            {},
            "Failed to get input map for signature: s",
        ),
        (
            '{"instances": [1, 2]}',
            {"a": DT.DT_INT32, "b": DT.DT_INT32},
            "instances is a plain list, but expecting list of objects as multiple input tensors"
            " required as per tensorinfo_map",
        ),
        (
            '{"inputs": [1]}',
            {"a": DT.DT_INT32, "b": DT.DT_INT32},
            "inputs is a plain value/list, but expecting an object as multiple input tensors"
            " required as per tensorinfo_map",
        ),
        (
            '{"inputs": {"a": 1}}',
            {"a": DT.DT_INT32, "b": DT.DT_INT32},
            "Missing named input: b in 'inputs' object.",
        ),
        (
            '{"instances": [{"a": 1, "c": 2}]}',
            {"a": DT.DT_INT32, "b": DT.DT_INT32},
            "Failed to process element: 0 key: c of 'instances' list. Error: INVALID_ARGUMENT:"
            " JSON object: does not have named input: c",
        ),
        (
            '{"instances": [{"a": 1}]}',
            {"a": DT.DT_INT32, "b": DT.DT_INT32},
            "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": 1\n}"
            " keys must be equal to: a,b",
        ),
        (
            '{"instances": [[1, 2], [3]]}',
            {"a": DT.DT_INT32},
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT:"
            " Expecting tensor size: 2 but got: 1",
        ),
        (
            '{"instances": [[1, 2], [[3], [4]]]}',
            {"a": DT.DT_INT32},
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT:"
            " Expecting shape [2] but got: [2,1]",
        ),
        (
            '{"inputs": [[1, 2], 3]}',
            {"a": DT.DT_INT32},
            "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
        ),
        (
            '{"inputs": [[1, 2], [3, [4]]]}',
            {"a": DT.DT_INT32},
            "Encountered list at unexpected level: 2 expected < 2",
        ),
        (
            '{"inputs": [[1, 2], [3]]}',
            {"a": DT.DT_INT32},
            "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        ),
    ],
)
def test_request_errors(body: str, dtypes: dict[str, types_pb2.DataType], message: str) -> None:
    error = failure(body, **dtypes)
    assert error.code == StatusCode.INVALID_ARGUMENT
    assert error.message == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b" ", "JSON Parse error: The document is empty. at offset: 1"),
        (b"{", "JSON Parse error: Missing a name for object member. at offset: 1"),
        (b"7", "JSON Value: 7 Is not object"),
        (
            b'{"signature_name": 1}',
            'JSON Value: {\n    "signature_name": 1\n} not formatted correctly.'
            " 'signature_name' key must be a string value.",
        ),
    ],
)
def test_body_errors(body: bytes, message: str) -> None:
    with pytest.raises(ServingStatus) as info:
        rest_json.parse_predict_body(body)
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    assert info.value.message == message


# ------------------------------------------------------------------------ responses


def outputs_json(outputs: dict[str, tensor_pb2.TensorProto], fmt: str) -> Any:
    return parse_json(rest_json.predict_outputs_to_json(outputs, fmt))


def test_round_trip_row_and_columnar() -> None:
    body = '{"instances": [{"f": [0.5, NaN], "s": "a\\"b", "n": 9007199254740993}]}'
    tensors, fmt = inputs(body, f=DT.DT_FLOAT, s=DT.DT_STRING, n=DT.DT_INT64)
    text = rest_json.predict_outputs_to_json(tensors, fmt)
    assert b"9007199254740993" in text  # int64 written exactly, unquoted
    (row,) = parse_json(text)["predictions"]
    assert row["s"] == 'a"b'
    assert row["n"] == 9007199254740993
    assert row["f"][0] == 0.5
    assert np.isnan(row["f"][1])
    columnar = outputs_json(tensors, "columnar")["outputs"]
    assert columnar["n"] == [9007199254740993]
    assert columnar["s"] == ['a"b']


def test_output_layout_is_rapidjsons_pretty_writer() -> None:
    # Same bytes as TF Serving's writer calls (checked against RapidJSON): row items
    # single-line, columnar arrays one element per line.
    y = encode_tensor(np.array([[1, 2], [3, 4]], dtype=np.int32), as_content=False)
    b = encode_tensor(np.array([5, 6], dtype=np.int64), as_content=False)
    assert rest_json.predict_outputs_to_json({"y": y}, "row") == (
        b'{\n    "predictions": [[1, 2], [3, 4]\n    ]\n}'
    )
    assert rest_json.predict_outputs_to_json({"y": y, "b": b}, "row") == (
        b'{\n    "predictions": [\n        {\n            "y": [1, 2],\n            "b": 5\n'
        b'        },\n        {\n            "y": [3, 4],\n            "b": 6\n        }\n    ]\n}'
    )
    assert rest_json.predict_outputs_to_json({"y": y}, "columnar") == (
        b'{\n    "outputs": [\n        [\n            1,\n            2\n        ],\n'
        b"        [\n            3,\n            4\n        ]\n    ]\n}"
    )
    assert rest_json.predict_outputs_to_json({"y": y, "b": b}, "columnar") == (
        b'{\n    "outputs": {\n        "y": [\n            [\n                1,\n'
        b"                2\n            ],\n            [\n                3,\n"
        b'                4\n            ]\n        ],\n        "b": [\n            5,\n'
        b"            6\n        ]\n    }\n}"
    )


def test_scalar_and_empty_outputs() -> None:
    scalar = tensor_pb2.TensorProto(dtype=DT.DT_DOUBLE, double_val=[2.0])
    scalar.tensor_shape.SetInParent()
    assert outputs_json({"y": scalar}, "columnar") == {"outputs": 2.0}
    empty = encode_tensor(np.zeros((0, 3), dtype=np.float32), as_content=False)
    assert outputs_json({"y": empty}, "row") == {"predictions": []}
    assert outputs_json({"y": empty, "z": empty}, "row") == {"predictions": []}
    assert outputs_json({"y": empty}, "columnar") == {"outputs": []}
    hollow = encode_tensor(np.zeros((2, 0), dtype=np.int32), as_content=False)
    assert outputs_json({"y": hollow}, "row") == {"predictions": [[], []]}


def test_outputs_from_tensor_content_and_typed_fields_agree() -> None:
    array = np.array([[1.5, -2.25], [3.0, 1e-8]], dtype=np.float32)
    typed = rest_json.predict_outputs_to_json({"y": encode_tensor(array, as_content=False)}, "row")
    packed = rest_json.predict_outputs_to_json({"y": encode_tensor(array)}, "row")
    assert typed == packed
    assert parse_json(typed) == {"predictions": [[1.5, -2.25], [3.0, 1e-08]]}


def test_output_value_encodings() -> None:
    outputs = {
        "flags": encode_tensor(np.array([True, False]), as_content=False),
        "big": encode_tensor(np.array([2**64 - 1, 0], dtype=np.uint64), as_content=False),
        "raw": encode_tensor(np.array([b"\x00\xff", b"tab\t"], dtype=object), as_content=False),
        "raw_bytes": encode_tensor(np.array([b"\x00\xff", b""], dtype=object), as_content=False),
    }
    text = rest_json.predict_outputs_to_json(outputs, "columnar")
    assert b'"\\u0000\xff"' in text  # raw bytes, control characters escaped
    document = parse_json(text)["outputs"]
    assert document["flags"] == [True, False]
    assert document["big"] == [2**64 - 1, 0]
    assert document["raw_bytes"] == [{"b64": "AP8="}, {"b64": ""}]
    assert document["raw"][1] == "tab\t"


def test_error_json_escapes_and_survives_stray_surrogates() -> None:
    assert json.loads(rest_json.error_to_json('a "b" \\ \x01')) == {"error": 'a "b" \\ \x01'}
    assert json.loads(rest_json.error_to_json("bad \ud800")) == {"error": "bad ?"}


def test_unwritable_output_dtype() -> None:
    half = tensor_pb2.TensorProto(dtype=DT.DT_HALF, half_val=[0])
    half.tensor_shape.dim.add(size=1)
    with pytest.raises(ServingStatus) as info:
        rest_json.predict_outputs_to_json({"y": half}, "columnar")
    assert info.value.message == "Failed to write JSON value for tensor type: half"
    with pytest.raises(ServingStatus) as info:
        rest_json.predict_outputs_to_json({"y": half}, "bogus")
    assert info.value.message == "Invalid request format"


# ------------------------------------------------------------------ classify / regress


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"context": {}}',
            "JSON Value: {\n    \"context\": {}\n} When method is classify, key 'examples' is"
            " expected and was not found",
        ),
        (
            b'{"examples": []}',
            "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array",
        ),
        (b'{"examples": [1]}', "Example must be JSON object but got JSON Number"),
        (
            b'{"examples": [{"f": 18446744073709551615}]}',
            "Feature: f has uint64_t element. Only int64_t is supported.",
        ),
        (
            b'{"examples": [{"f": ["a", 1]}]}',
            "Unexpected element type in feature: f expecting type: bytes",
        ),
        (
            b'{"examples": [{"f": [1.5, true]}]}',
            "Unexpected element type in feature: f expecting type: float",
        ),
        (
            b'{"examples": [{"f": {"x": 1}}]}',
            "Feature: f has element with unexpected JSON type: Object",
        ),
    ],
)
@pytest.mark.parametrize("method", ["classify", "regress"])
def test_examples_errors(body: bytes, message: str, method: str) -> None:
    with pytest.raises(ServingStatus) as info:
        rest_json.parse_classify_regress_body(body, method)
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    assert info.value.message == message


def test_examples_without_context_and_empty_features() -> None:
    name, model_input = rest_json.parse_classify_regress_body(
        b'{"examples": [{"e": [], "big": 1e300, "n": -5}]}', "regress"
    )
    assert name == ""
    assert model_input.WhichOneof("kind") == "example_list"
    features = model_input.example_list.examples[0].features.feature
    assert features["e"].WhichOneof("kind") is None
    assert list(features["big"].float_list.value) == [np.inf]  # GetFloat() of 1e300
    assert list(features["n"].int64_list.value) == [-5]


def test_classification_result_json() -> None:
    result = classification_pb2.ClassificationResult()
    first = result.classifications.add()
    first.classes.add(label="cat", score=0.25)
    first.classes.add(label='"dog"', score=0.1)
    result.classifications.add().classes.add(score=3.0)
    text = rest_json.classification_result_to_json(result)
    assert json.loads(text) == {"results": [[["cat", 0.25], ['"dog"', 0.1]], [["", 3.0]]]}
    assert b"0.1]" in text
    assert b"3.0]" in text
