"""TF Serving's own test vectors that concern the client-side codecs, reported by case id.

The emulator's tests cover the server-side kinds (request parsing, response
writing); here the client reads what TF Serving writes and maps its errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import reference as tfs_reference
from tests.support.arrays import assert_same_array
from tfs_async.codec import dtypes
from tfs_async.codec.example import encode_example
from tfs_async.codec.json import (
    decode_classify_body,
    decode_metadata_body,
    decode_predict_body,
    decode_regress_body,
    decode_status_body,
    loads,
)
from tfs_async.errors import (
    InvalidInputError,
    StatusCode,
    error_for_code,
    error_from_http,
    http_status_for_code,
)
from tfs_async.types import SignatureSpec, TensorSpec, VersionState

_VALUE_FIELDS = ("float_val", "double_val", "int_val", "int64_val", "bool_val", "string_val")


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


def _number(v: Any) -> Any:
    # vectors.json writes non-finite floats as strings.
    return float(v) if v in ("NaN", "Infinity", "-Infinity") else v


def _tensor(spec: dict[str, Any]) -> np.ndarray[Any, Any]:
    dtype = dtypes.to_numpy_dtype(dtypes.datatype_from_name(spec["dtype"]))
    shape = tuple(spec["shape"] or ())
    values: list[Any] = next((spec[f] for f in _VALUE_FIELDS if f in spec), [])
    if dtype.kind == "O":
        items = np.empty(len(values), dtype=object)
        items[:] = [v.encode("utf-8") for v in values]
        return items.reshape(shape)
    return np.array([_number(v) for v in values], dtype=dtype).reshape(shape)


def _signature(outputs: dict[str, dict[str, Any]]) -> SignatureSpec:
    specs = {}
    for name, spec in outputs.items():
        datatype = dtypes.datatype_from_name(spec["dtype"])
        specs[name] = TensorSpec(
            name, spec["dtype"], None, numpy_dtype=dtypes.to_numpy_dtype(datatype)
        )
    return SignatureSpec("serving_default", "tensorflow/serving/predict", {}, specs)


TENSOR_CASES = tfs_reference.load_vectors("tensors_to_response_json")


@pytest.mark.parametrize("case", TENSOR_CASES, ids=_ids(TENSOR_CASES))
def test_tensors_to_response_json(case: dict[str, Any]) -> None:
    outputs = case["input"]["outputs"]
    body = case["expected"]["json"].encode()
    got = decode_predict_body(body, signature=_signature(outputs))
    assert set(got) == set(outputs)
    for name, spec in outputs.items():
        assert_same_array(got[name], _tensor(spec))
    if len(outputs) > 1:
        # Without a signature the names still come from the body; dtypes are inferred.
        inferred = decode_predict_body(body)
        assert set(inferred) == set(outputs)


RESULT_CASES = tfs_reference.load_vectors("result_to_response_json")


@pytest.mark.parametrize("case", RESULT_CASES, ids=_ids(RESULT_CASES))
def test_result_to_response_json(case: dict[str, Any]) -> None:
    body = case["expected"]["json"].encode()
    result = case["input"]["result"]
    if case["input"]["method"] == "regress":
        want = np.array([_number(v) for v in result], dtype=np.float32)
        assert_same_array(decode_regress_body(body), want)
    else:
        got = decode_classify_body(body)
        want_classes = [[(label, float(np.float32(score))) for label, score in ex] for ex in result]
        assert got == want_classes


STATUS_ERROR_CASES = tfs_reference.load_vectors("status_to_error_json")


@pytest.mark.parametrize("case", STATUS_ERROR_CASES, ids=_ids(STATUS_ERROR_CASES))
def test_status_to_error_json(case: dict[str, Any]) -> None:
    code = StatusCode[case["input"]["code"]]
    status = http_status_for_code(code)
    error = error_from_http(status, case["expected"]["json"].encode())
    assert type(error) is type(error_for_code(code, ""))
    assert error.code == code
    assert error.http_status == status
    assert error.message == case["input"]["message"]


def _error_pairs() -> list[dict[str, Any]]:
    cases = []
    for case in tfs_reference.load_vectors("error", "http_endpoint"):
        expected = case["expected"]
        code = expected.get("code") or expected.get("status_code")
        if code and "http_status" in expected:
            cases.append(case)
    return cases


ERROR_CASES = _error_pairs()


@pytest.mark.parametrize("case", ERROR_CASES, ids=_ids(ERROR_CASES))
def test_error_code_and_http_status_agree(case: dict[str, Any]) -> None:
    expected = case["expected"]
    code = StatusCode[expected.get("code") or expected["status_code"]]
    assert http_status_for_code(code) == expected["http_status"]
    message = expected.get("message_contains") or expected.get("error_contains") or "failed"
    body = json.dumps({"error": message}).encode()
    error = error_from_http(expected["http_status"], body)
    # 400 is shared by several codes; the REST client reads it as INVALID_ARGUMENT.
    assert error.code == code
    assert error.http_status == expected["http_status"]
    assert message in str(error)


_FEATURE_ERROR_CASES = [
    c
    for c in tfs_reference.load_vectors("error")
    if "examples" in c["input"].get("body", "") and "names" in c["expected"]["message_contains"]
]


@pytest.mark.parametrize("case", _FEATURE_ERROR_CASES, ids=_ids(_FEATURE_ERROR_CASES))
def test_feature_values_tfs_rejects_are_rejected_before_sending(case: dict[str, Any]) -> None:
    features = loads(case["input"]["body"].encode())["examples"][0]
    with pytest.raises(InvalidInputError) as info:
        encode_example(features)
    assert info.value.input_name == "names"


def _endpoint_cases(suffix: str) -> list[dict[str, Any]]:
    return [
        c
        for c in tfs_reference.load_vectors("http_endpoint")
        if c["expected"].get("http_status") == 200
        and "body_json" in c["expected"]
        and c["input"]["path"].endswith(suffix)
    ]


def _body(case: dict[str, Any]) -> bytes:
    # The verbatim text where the vector has it, else the parsed document.
    text = case["expected"].get("body_text")
    return text.encode() if text else json.dumps(case["expected"]["body_json"]).encode()


PREDICT_BODIES = _endpoint_cases(":predict")


@pytest.mark.parametrize("case", PREDICT_BODIES, ids=_ids(PREDICT_BODIES))
def test_predict_response_bodies_decode(case: dict[str, Any]) -> None:
    doc = case["expected"]["body_json"]
    key = "predictions" if "predictions" in doc else "outputs"
    sig = SignatureSpec(
        "serving_default",
        "tensorflow/serving/predict",
        {},
        {"y": TensorSpec("y", "DT_FLOAT", (-1, 1), numpy_dtype=np.dtype(np.float32))},
    )
    got = decode_predict_body(_body(case), signature=sig)
    assert_same_array(got["y"], np.array(doc[key], dtype=np.float32))


CLASSIFY_REGRESS_BODIES = _endpoint_cases(":classify") + _endpoint_cases(":regress")


@pytest.mark.parametrize("case", CLASSIFY_REGRESS_BODIES, ids=_ids(CLASSIFY_REGRESS_BODIES))
def test_classify_regress_response_bodies_decode(case: dict[str, Any]) -> None:
    results = case["expected"]["body_json"]["results"]
    if case["input"]["path"].endswith(":regress"):
        assert_same_array(decode_regress_body(_body(case)), np.array(results, np.float32))
    else:
        want = [[(label, float(score)) for label, score in ex] for ex in results]
        assert decode_classify_body(_body(case)) == want


STATUS_BODIES = [
    c
    for c in tfs_reference.load_vectors("http_endpoint")
    if "model_version_status" in (c["expected"].get("body_json") or {})
]


@pytest.mark.parametrize("case", STATUS_BODIES, ids=_ids(STATUS_BODIES))
def test_status_response_bodies_decode(case: dict[str, Any]) -> None:
    got = decode_status_body(_body(case))
    want = case["expected"]["body_json"]["model_version_status"]
    assert [(s.version, s.state.name, StatusCode(s.error_code).name) for s in got] == [
        (int(w["version"]), w["state"], w["status"]["error_code"]) for w in want
    ]
    assert all(s.state is VersionState.AVAILABLE for s in got)


def _check_metadata(doc: dict[str, Any], body: bytes) -> None:
    meta = decode_metadata_body(body)
    assert meta.model.name == doc["model_spec"]["name"]
    assert meta.model.version == int(doc["model_spec"]["version"])
    sig_defs = doc["metadata"]["signature_def"]["signature_def"]
    assert set(meta.signatures) == set(sig_defs)
    for sig_name, sig_def in sig_defs.items():
        sig = meta.signatures[sig_name]
        assert sig.method_name == sig_def.get("method_name", "")
        for side, specs in (("inputs", sig.inputs), ("outputs", sig.outputs)):
            declared = sig_def.get(side, {})
            assert set(specs) == set(declared)
            for alias, info in declared.items():
                shape = info.get("tensor_shape", {})
                want_shape = (
                    None
                    if shape.get("unknown_rank")
                    else tuple(int(d["size"]) for d in shape.get("dim", []))
                )
                assert specs[alias].dtype == info.get("dtype", "DT_INVALID")
                assert specs[alias].shape == want_shape
                assert specs[alias].tensor_name == info.get("name", "")


METADATA_FILES = sorted(tfs_reference.models_dir().glob("*_metadata.json"))


@pytest.mark.parametrize("path", METADATA_FILES, ids=[p.name for p in METADATA_FILES])
def test_metadata_files_decode(path: Path) -> None:
    body = path.read_bytes()
    _check_metadata(json.loads(body), body)


METADATA_BODIES = _endpoint_cases("/metadata")


@pytest.mark.parametrize("case", METADATA_BODIES, ids=_ids(METADATA_BODIES))
def test_metadata_response_bodies_decode(case: dict[str, Any]) -> None:
    _check_metadata(case["expected"]["body_json"], _body(case))
    serving = decode_metadata_body(_body(case)).signature()
    assert serving.inputs["x"].numpy_dtype == np.dtype(np.float32)


ERROR_BODIES = [
    c
    for c in tfs_reference.load_vectors("http_endpoint")
    if "error" in (c["expected"].get("body_json") or {})
]


@pytest.mark.parametrize("case", ERROR_BODIES, ids=_ids(ERROR_BODIES))
def test_error_bodies_map_to_the_same_error_as_grpc(case: dict[str, Any]) -> None:
    status = case["expected"]["http_status"]
    error = error_from_http(status, _body(case))
    assert error.http_status == status
    assert http_status_for_code(error.code) == status
    assert error.message == case["expected"]["body_json"]["error"]
