"""numpy <-> TF Serving's REST JSON (client side)."""

from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import ml_dtypes
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.arrays import assert_same_array
from tfs_async.codec import dtypes
from tfs_async.codec.json import (
    decode_classify_body,
    decode_predict_body,
    decode_regress_body,
    decode_status_body,
    encode_examples_body,
    encode_predict_body,
    loads,
)
from tfs_async.errors import InvalidArgumentError, InvalidInputError, ResponseDecodeError
from tfs_async.types import SignatureSpec, TensorSpec, VersionState

REST_DTYPES = [
    np.dtype(t)
    for t in (
        np.float32,
        np.float64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.bool_,
    )
]


def signature(**outputs: np.dtype[Any]) -> SignatureSpec:
    return SignatureSpec(
        name="serving_default",
        method_name="tensorflow/serving/predict",
        inputs={},
        outputs={
            name: TensorSpec(
                name,
                dtypes.datatype_name(dtypes.to_datatype(dt)),
                None,
                numpy_dtype=dtypes.to_numpy_dtype(dtypes.to_datatype(dt)),
            )
            for name, dt in outputs.items()
        },
    )


# ---------------------------------------------------------------- encoding


def test_columnar_names_every_input() -> None:
    body = encode_predict_body(
        {"x": np.array([[1.0, 2.0]], np.float32), "k": np.array([3], np.int64)},
        signature_name="sig",
    )
    assert orjson.loads(body) == {
        "signature_name": "sig",
        "inputs": {"x": [[1.0, 2.0]], "k": [3]},
    }
    # A single input is still named: TF accepts that for any signature.
    assert orjson.loads(encode_predict_body({"x": np.float32(2.5)})) == {"inputs": {"x": 2.5}}


def test_row_format_single_and_several_inputs() -> None:
    one = encode_predict_body({"x": np.array([[1, 2], [3, 4]], np.int32)}, row_format=True)
    assert orjson.loads(one) == {"instances": [[1, 2], [3, 4]]}
    several = encode_predict_body(
        {"a": np.array([1.5, 2.5]), "s": np.array(["p", "q"])}, row_format=True
    )
    assert orjson.loads(several) == {"instances": [{"a": 1.5, "s": "p"}, {"a": 2.5, "s": "q"}]}


def test_row_format_needs_a_shared_batch_dimension() -> None:
    with pytest.raises(InvalidInputError, match="same first dimension"):
        encode_predict_body({"a": np.ones(2), "b": np.ones(3)}, row_format=True)
    with pytest.raises(InvalidInputError, match=r"'a'.*scalar") as info:
        encode_predict_body({"a": np.float32(1)}, row_format=True)
    assert info.value.input_name == "a"


def test_int64_extremes_are_exact_and_bools_are_json_bools() -> None:
    body = encode_predict_body(
        {
            "i": np.array([-(2**63), 2**63 - 1, 2**53 + 1], np.int64),
            "u": np.array([2**64 - 1], np.uint64),
            "b": np.array([True, False]),
        }
    )
    assert b"[-9223372036854775808,9223372036854775807,9007199254740993]" in body
    assert b"[18446744073709551615]" in body
    assert b"[true,false]" in body


def test_non_native_and_non_contiguous_arrays() -> None:
    arr = np.arange(6, dtype=">f8").reshape(2, 3)[:, ::2]
    assert orjson.loads(encode_predict_body({"x": arr})) == {"inputs": {"x": [[0, 2], [3, 5]]}}
    fortran = np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))
    assert orjson.loads(encode_predict_body({"x": fortran}))["inputs"]["x"] == [
        [0, 1, 2],
        [3, 4, 5],
    ]


def test_non_finite_floats_use_tfs_tokens() -> None:
    body = encode_predict_body({"x": np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)})
    assert body == b'{"inputs":{"x":[NaN, Infinity, -Infinity, 1.0]}}'
    rows = encode_predict_body(
        {"x": np.array([[np.nan], [1.0]]), "y": np.array([1, 2])}, row_format=True
    )
    assert b'"x":[NaN]' in rows
    assert b'"x":[1.0]' in rows


def test_strings_bytes_as_b64() -> None:
    body = encode_predict_body(
        {
            "s": np.array(["h\u00e9", "x"]),
            "b": np.array([b"\x00\xff", b"ok"]),
            "o": np.array(["t", b"u"], dtype=object),
        }
    )
    assert orjson.loads(body)["inputs"] == {
        "s": ["h\u00e9", "x"],
        "b": [{"b64": "AP8="}, {"b64": "b2s="}],
        "o": ["t", {"b64": "dQ=="}],
    }


@pytest.mark.parametrize(
    "arr",
    [
        np.ones(2, np.float16),
        np.ones(2, ml_dtypes.bfloat16),
        np.ones(2, np.complex64),
        np.ones(2, np.complex128),
    ],
    ids=["float16", "bfloat16", "complex64", "complex128"],
)
def test_dtypes_rest_cannot_carry_are_refused(arr: np.ndarray[Any, Any]) -> None:
    with pytest.raises(InvalidInputError, match="cannot be sent over REST") as info:
        encode_predict_body({"ok": np.ones(1), "pixels": arr})
    assert info.value.input_name == "pixels"
    assert "'pixels'" in str(info.value)


def test_bad_inputs_are_refused_before_sending() -> None:
    with pytest.raises(InvalidInputError, match="'x'"):
        encode_predict_body({"x": [[1], [2, 3]]})
    with pytest.raises(InvalidInputError, match="no inputs"):
        encode_predict_body({})


def test_examples_body() -> None:
    body = encode_examples_body(
        [{"x": 2.0, "n": [1, 2], "raw": b"\x01"}, {"x": float("nan"), "n": 3, "raw": b""}],
        context={"user": "u"},
        signature_name="regress_x_to_y",
    )
    assert body.startswith(b'{"signature_name":"regress_x_to_y","context":{"user":"u"},')
    assert b'{"x":2.0,"n":[1,2],"raw":{"b64":"AQ=="}}' in body
    assert b'"x":NaN' in body
    with pytest.raises(InvalidInputError, match="non-empty"):
        encode_examples_body([])


# ---------------------------------------------------------------- decoding


def test_loads_accepts_tfs_tokens_and_refuses_garbage() -> None:
    doc = loads(b'{"a": [NaN, Infinity, -Infinity, 9e+06, 12345678901234567890]}')
    assert np.isnan(doc["a"][0])
    assert doc["a"][1:] == [float("inf"), float("-inf"), 9e6, 12345678901234567890]
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        loads(b"{oops")


def test_single_unnamed_output_is_named_by_the_signature() -> None:
    body = b'{"predictions": [[1.5], [2.5]]}'
    assert list(decode_predict_body(body)) == ["predictions"]
    out = decode_predict_body(body, signature=signature(y=np.dtype(np.float64)))
    assert_same_array(out["y"], np.array([[1.5], [2.5]]))
    cols = decode_predict_body(b'{"outputs": 3}', signature=signature(n=np.dtype(np.int32)))
    assert_same_array(cols["n"], np.array(3, np.int32))
    assert list(decode_predict_body(b'{"outputs": [1]}')) == ["outputs"]


def test_single_unnamed_output_takes_the_one_name_asked_for() -> None:
    # No signature: the one output asked for can only be the answer's only output.
    for body in (b'{"outputs": [1.5]}', b'{"predictions": [1.5]}'):
        out = decode_predict_body(body, output_filter=["y"])
        assert list(out) == ["y"]
        assert out["y"].tolist() == [1.5]
    assert list(decode_predict_body(b'{"predictions": []}', output_filter=["y"])) == ["y"]
    # Two names for one output: the answer lacks one of them.
    with pytest.raises(InvalidArgumentError, match="alias not found in signature: y"):
        decode_predict_body(b'{"outputs": [1.5]}', output_filter=["y", "z"])


def test_inferred_dtypes() -> None:
    out = decode_predict_body(
        b'{"outputs": {"f": [1.0, 2.5], "i": [1, 2], "b": [true], "s": ["a"],'
        b' "u": [18446744073709551615]}}'
    )
    assert out["f"].dtype == np.float32
    assert out["i"].dtype == np.int64
    assert out["b"].dtype == np.bool_
    assert out["s"].tolist() == [b"a"]
    assert out["u"].tolist() == [2**64 - 1]


def test_several_named_outputs_row_format() -> None:
    body = b"""{"predictions": [
        {"score": 0.5, "label_bytes": {"b64": "AP8="}, "id": 9007199254740993},
        {"score": NaN, "label_bytes": {"b64": "YQ=="}, "id": -1}
    ]}"""
    out = decode_predict_body(body)
    assert out["score"].dtype == np.float32
    assert np.isnan(out["score"][1])
    assert out["label_bytes"].tolist() == [b"\x00\xff", b"a"]
    assert out["id"].tolist() == [9007199254740993, -1]  # beyond 2**53, exact


def test_empty_batch_uses_the_signature() -> None:
    out = decode_predict_body(
        b'{"predictions": []}', signature=signature(a=np.dtype(np.float32), b=np.dtype(object))
    )
    assert out["a"].shape == (0,)
    assert out["a"].dtype == np.float32
    assert out["b"].dtype == object


def test_output_filter_keeps_asked_outputs() -> None:
    body = b'{"outputs": {"a": [1], "b": [2]}}'
    assert list(decode_predict_body(body, output_filter=["b"])) == ["b"]
    with pytest.raises(InvalidArgumentError, match=r"alias not found in signature: c .*\{a,b\}"):
        decode_predict_body(body, output_filter=["c"])


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"[1]", "not a JSON object"),
        (b'{"result": 1}', "neither 'predictions' nor 'outputs'"),
        (b'{"predictions": 1}', "not a list"),
        (b'{"predictions": [[1, 2], [3]]}', "rectangular"),
        (b'{"predictions": [{"a": 1}, {"b": 2}]}', "row 1"),
        (b'{"outputs": {"x_bytes": [{"b64": "!!"}]}}', "bad base64"),
        (b'{"outputs": [null]}', "no tensor type"),
        (b"", "not JSON"),
    ],
    ids=["array", "no-key", "not-list", "ragged", "row-keys", "bad-b64", "null", "empty"],
)
def test_malformed_predict_bodies(body: bytes, match: str) -> None:
    with pytest.raises(ResponseDecodeError, match=match):
        decode_predict_body(body)


def test_classify_and_regress_bodies() -> None:
    assert decode_classify_body(b'{"results": [[["", 0.5]], [["a", NaN]]]}')[0] == [("", 0.5)]
    regress = decode_regress_body(b'{"results": [0.2, -Infinity, 1]}')
    assert regress.dtype == np.float32
    assert regress.tolist() == [np.float32(0.2), float("-inf"), 1.0]
    with pytest.raises(ResponseDecodeError, match="results"):
        decode_regress_body(b'{"result": [1.0]}')
    with pytest.raises(ResponseDecodeError, match="label, score"):
        decode_classify_body(b'{"results": [[[1, 0.5]]]}')


def test_status_body() -> None:
    body = b"""{
     "model_version_status": [
      {"version": "124", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
      {"version": "123", "state": "END",
       "status": {"error_code": "FAILED_PRECONDITION", "error_message": "bad model"}}
     ]
    }"""
    first, second = decode_status_body(body)
    assert (first.version, first.state, first.error_code) == (124, VersionState.AVAILABLE, 0)
    assert (second.version, second.state, second.error_code) == (123, VersionState.END, 9)
    assert second.error_message == "bad model"
    with pytest.raises(ResponseDecodeError):
        decode_status_body(b'{"model_version_status": [{"version": "x"}]}')


@settings(max_examples=150, deadline=None)
@given(
    arr=st.sampled_from(REST_DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    ),
    row=st.booleans(),
)
def test_property_rest_dtypes_round_trip(arr: np.ndarray[Any, Any], row: bool) -> None:
    if row and arr.ndim == 0:
        arr = arr.reshape(1)
    body = encode_predict_body({"x": arr}, row_format=row)
    # Answer as TF Serving would: the same JSON text under the response key.
    if row:
        response = body.replace(b'{"instances":', b'{"predictions":', 1)
    else:
        response = body.replace(b'{"inputs":{"x":', b'{"outputs":{"x":', 1)
    got = decode_predict_body(response, signature=signature(x=arr.dtype))
    assert_same_array(got["x"], arr)


@settings(max_examples=80, deadline=None)
@given(
    arr=hnp.arrays(
        object,
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3),
        elements=st.binary(max_size=6) | st.text(max_size=6),
    ),
)
def test_property_strings_round_trip(arr: np.ndarray[Any, Any]) -> None:
    body = encode_predict_body({"x": arr})
    response = body.replace(b'{"inputs":{"x":', b'{"outputs":{"x":', 1)
    got = decode_predict_body(response, signature=signature(x=np.dtype(object)))
    want = [v.encode("utf-8") if isinstance(v, str) else v for v in arr.ravel().tolist()]
    assert got["x"].shape == arr.shape
    assert got["x"].ravel().tolist() == want


def test_raw_non_utf8_string_outputs_keep_their_bytes() -> None:
    # TF Serving writes a non-`_bytes` string output's bytes as they are.
    body = b'{"outputs": {"s": ["ok", "\xff\xfe"], "f": [NaN]}}'
    got = decode_predict_body(body)
    assert got["s"].tolist() == [b"ok", b"\xff\xfe"]
