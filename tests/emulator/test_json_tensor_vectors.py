"""TF Serving's own json_tensor / handler test cases (vectors.json) against the emulator's
JSON layer, one test per case id.

Kinds: request_json_to_tensors, tensors_to_response_json, result_to_response_json,
request_json_to_examples, status_to_error_json and error (every stage).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest

from tests.support import reference as tfs_reference
from tfs_async._proto import classification_pb2, example_pb2, regression_pb2, tensor_pb2, types_pb2
from tfs_async.codec import dtypes
from tfs_async.errors import StatusCode, http_status_for_code
from tfs_async.testing import rest_json
from tfs_async.testing.rest_json.reader import parse_json
from tfs_async.testing.status import ServingStatus

# --------------------------------------------------------------------------- helpers

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_FLOAT_FIELDS = ("float_val", "double_val")
# A JSON string, a number token (bare NaN / Infinity included), or any other character.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?(?:NaN|Infinity|Inf|[0-9][0-9.eE+-]*)|.', re.DOTALL)


def _float(value: Any) -> float:
    return _NON_FINITE[value] if isinstance(value, str) else float(value)


def values_equal(a: Any, b: Any) -> bool:
    """Structural equality; numbers by value (3 == 3.0), NaN equal to NaN."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) and a == b)


def _numbers_as_strings(text: str) -> Any:
    """Parse ``text`` keeping each number token's text (CompareJsonAllValuesAsStrings)."""
    out = []
    for m in _TOKEN.finditer(text):
        token = m.group()
        is_number = token[0] == "-" or token[0].isdigit() or token in ("NaN", "Infinity", "Inf")
        out.append(json.dumps("#" + token) if is_number else token)
    return json.loads("".join(out))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_sorted(v) for v in value), key=repr)
    return value


def assert_json_matches(actual: bytes, expected: str, compare: str) -> None:
    """``actual`` equals ``expected`` under the vectors' ``compare`` rule (SPEC §5)."""
    if compare == "tokens":
        got, want = _numbers_as_strings(actual.decode()), _numbers_as_strings(expected)
        assert got == want, f"{actual!r} != {expected!r}"
        return
    got, want = parse_json(actual), parse_json(expected.encode())
    if compare == "sorted_object":
        got, want = _sorted(got), _sorted(want)
    assert values_equal(got, want), f"{actual!r} != {expected!r}"


def tensor_from_vector(spec: dict[str, Any]) -> tensor_pb2.TensorProto:
    """A vectors.json tensor (``{dtype, shape, <field>: [...]}``) as a TensorProto."""
    tensor = tensor_pb2.TensorProto(dtype=dtypes.datatype_from_name(spec["dtype"]))
    if spec["shape"] is not None:
        tensor.tensor_shape.SetInParent()
        for size in spec["shape"]:
            tensor.tensor_shape.dim.add(size=size)
    for key, values in spec.items():
        if key in ("dtype", "shape"):
            continue
        if key in _FLOAT_FIELDS or key == "scomplex_val":
            values = [_float(v) for v in values]
        elif key == "string_val":
            values = [v.encode() for v in values]
        getattr(tensor, key).extend(values)
    return tensor


def assert_tensor_matches(actual: tensor_pb2.TensorProto, spec: dict[str, Any]) -> None:
    assert types_pb2.DataType.Name(actual.dtype) == spec["dtype"]
    assert [d.size for d in actual.tensor_shape.dim] == spec["shape"]
    assert not actual.tensor_content
    fields = [key for key in spec if key not in ("dtype", "shape")]
    for key in fields:
        got = list(getattr(actual, key))
        want: list[Any] = spec[key]
        if key in _FLOAT_FIELDS:
            want = [_float(v) for v in want]
        elif key == "string_val":
            want = [v.encode() for v in want]
        assert values_equal(got, want), f"{key}: {got} != {want}"
    # Nothing leaks into the other value fields.
    for descriptor, _ in actual.ListFields():
        assert descriptor.name in ("dtype", "tensor_shape", *fields), descriptor.name


def predict_body(spec: dict[str, Any]) -> bytes:
    if "body" in spec:
        return str(spec["body"]).encode()
    gen = spec["body_generator"]
    return str(
        gen["prefix"]
        + gen["repeat_char_1"] * gen["repeat_count_1"]
        + gen["repeat_char_2"] * gen["repeat_count_2"]
        + gen["suffix"]
    ).encode()


def dtypes_of(signature_inputs: dict[str, str]) -> dict[str, types_pb2.DataType]:
    return {name: dtypes.datatype_from_name(dt) for name, dt in signature_inputs.items()}


def run_predict_request(spec: dict[str, Any]) -> tuple[rest_json.PredictBody, Any, str]:
    body = rest_json.parse_predict_body(predict_body(spec))
    tensors, fmt = rest_json.predict_inputs_from_json(body, dtypes_of(spec["signature_inputs"]))
    return body, tensors, fmt


def result_proto(method: str, values: list[Any]) -> Any:
    if method == "regress":
        result = regression_pb2.RegressionResult()
        for v in values:
            result.regressions.add(value=_float(v))
        return result
    cls = classification_pb2.ClassificationResult()
    for row in values:
        classes = cls.classifications.add()
        for label, score in row:
            classes.classes.add(label=label, score=_float(score))
    return cls


def result_json(method: str, result: Any) -> bytes:
    if method == "regress":
        return rest_json.regression_result_to_json(result)
    return rest_json.classification_result_to_json(result)


def feature_as_vector(feature: example_pb2.Feature) -> dict[str, list[Any]]:
    kind = feature.WhichOneof("kind")
    assert kind is not None
    values = list(getattr(feature, kind).value)
    if kind == "bytes_list":
        return {kind: [v.decode() for v in values]}
    return {kind: values}


def assert_features_match(example: example_pb2.Example, expected: dict[str, Any]) -> None:
    got = {name: feature_as_vector(f) for name, f in example.features.feature.items()}
    assert got.keys() == expected.keys()
    for name, want in expected.items():
        ((kind, want_values),) = want.items()
        assert list(got[name]) == [kind], name
        if kind == "float_list":
            # float_list holds float32: compare against the float32 of the expected value.
            want_values = [float(np.float32(_float(v))) for v in want_values]
        assert values_equal(got[name][kind], want_values), (name, got[name], want_values)


def case_params(*kinds: str) -> pytest.MarkDecorator:
    cases = tfs_reference.load_vectors(*kinds)
    return pytest.mark.parametrize("case", cases, ids=[c["id"] for c in cases])


# ----------------------------------------------------------------------------- cases


@case_params("request_json_to_tensors")
def test_request_json_to_tensors(case: dict[str, Any]) -> None:
    spec, expected = case["input"], case["expected"]
    body, tensors, fmt = run_predict_request(spec)
    assert fmt == expected["format"]
    assert body.signature_name == expected.get("signature_name", "")
    assert tensors.keys() == expected["inputs"].keys()
    for name, want in expected["inputs"].items():
        assert_tensor_matches(tensors[name], want)


@case_params("tensors_to_response_json")
def test_tensors_to_response_json(case: dict[str, Any]) -> None:
    spec, expected = case["input"], case["expected"]
    outputs = {name: tensor_from_vector(t) for name, t in spec["outputs"].items()}
    actual = rest_json.predict_outputs_to_json(outputs, spec["format"])
    assert_json_matches(actual, expected["json"], expected["compare"])


@case_params("result_to_response_json")
def test_result_to_response_json(case: dict[str, Any]) -> None:
    spec, expected = case["input"], case["expected"]
    actual = result_json(spec["method"], result_proto(spec["method"], spec["result"]))
    assert_json_matches(actual, expected["json"], expected["compare"])


@case_params("request_json_to_examples")
@pytest.mark.parametrize("method", ["classify", "regress"])
def test_request_json_to_examples(case: dict[str, Any], method: str) -> None:
    spec, expected = case["input"], case["expected"]
    assert method in spec["applies_to"]
    signature_name, model_input = rest_json.parse_classify_regress_body(
        spec["body"].encode(), method
    )
    assert signature_name == expected["signature_name"]
    assert model_input.WhichOneof("kind") == expected["input_kind"]
    examples_holder = getattr(model_input, expected["input_kind"])
    if "context" in expected:
        assert_features_match(examples_holder.context, expected["context"])
    assert len(examples_holder.examples) == len(expected["examples"])
    for example, want in zip(examples_holder.examples, expected["examples"], strict=True):
        assert_features_match(example, want)


@case_params("status_to_error_json")
def test_status_to_error_json(case: dict[str, Any]) -> None:
    spec, expected = case["input"], case["expected"]
    actual = rest_json.error_to_json(spec["message"])
    assert_json_matches(actual, expected["json"], expected["compare"])
    assert json.loads(actual) == {"error": spec["message"]}


def _error_runs(spec: dict[str, Any]) -> list[Any]:
    """The call(s) an ``error`` case exercises, by its stage."""
    stage = spec.get("stage")
    if stage == "tensors_to_response_json":
        outputs = {name: tensor_from_vector(t) for name, t in spec["outputs"].items()}
        return [lambda: rest_json.predict_outputs_to_json(outputs, spec["format"])]
    if stage == "result_to_response_json":
        return [lambda: result_json(spec["method"], result_proto(spec["method"], spec["result"]))]
    if "applies_to" in spec:
        body = spec["body"].encode()
        return [
            lambda m=method: rest_json.parse_classify_regress_body(body, m)
            for method in spec["applies_to"]
        ]
    assert stage is None, stage
    return [lambda: run_predict_request(spec)]


@case_params("error")
def test_error(case: dict[str, Any]) -> None:
    expected = case["expected"]
    runs = _error_runs(case["input"])
    assert runs
    for run in runs:
        with pytest.raises(ServingStatus) as info:
            run()
        assert info.value.code == StatusCode[expected["code"]]
        assert expected["message_contains"] in info.value.message
        if "http_status" in expected:
            assert http_status_for_code(info.value.code) == expected["http_status"]
        # The message travels as a well-formed error body.
        assert json.loads(rest_json.error_to_json(info.value.message)) == {
            "error": info.value.message
        }
