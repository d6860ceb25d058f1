"""The dense REST JSON path gives exactly what the element-by-element one gives.

``rest_json.dense`` reads and writes big numeric tensors with numpy;
``rest_json.request`` / ``rest_json.response`` are the element-by-element reference
(TF Serving's own order of checks). Same tensors, same errors, same bytes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfs_async._proto import tensor_pb2, types_pb2
from tfs_async.codec.tensor import encode_tensor
from tfs_async.errors import StatusCode
from tfs_async.testing.rest_json import dense, request, response
from tfs_async.testing.rest_json.writer import float_tokens, format_float
from tfs_async.testing.status import ServingStatus

DT = types_pb2.DataType

# ---------------------------------------------------------------------------- reading

_INPUT_DTYPES = [
    DT.DT_FLOAT,
    DT.DT_DOUBLE,
    DT.DT_INT32,
    DT.DT_INT8,
    DT.DT_INT64,
    DT.DT_UINT32,
    DT.DT_UINT64,
    DT.DT_BOOL,
    DT.DT_STRING,
    DT.DT_HALF,
]


def read(body: bytes, dtypes: dict[str, int], *, vectorized: bool) -> Any:
    """What a predict body reads to: (tensor bytes by name, format) or (code, message)."""
    try:
        parsed = request.parse_predict_body(body)
        reader = dense if vectorized else request
        tensors, fmt = reader.predict_inputs_from_json(parsed, dtypes)
    except ServingStatus as exc:
        return exc.code, exc.message
    return [(name, t.SerializeToString()) for name, t in tensors.items()], fmt


def assert_same_reading(body: bytes, dtypes: dict[str, int]) -> Any:
    outcome = read(body, dtypes, vectorized=True)
    assert outcome == read(body, dtypes, vectorized=False)
    return outcome


def as_json(value: Any) -> bytes:
    # Python's json writes NaN / Infinity bare, as TF Serving's parser takes them.
    return json.dumps(value, allow_nan=True).encode()


_leaves = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(width=32),
    st.integers(-(2**65), 2**65),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.sampled_from(["", "1.5", "x"]),
    st.just({"b64": "AA=="}),
    st.just({}),
)
_json_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3), max_leaves=12)


@st.composite
def dense_values(draw: st.DrawFn) -> Any:
    """A rectangular nested list of numbers (the fast path's input), maybe spoiled."""
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.bool_]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    array = draw(hnp.arrays(dtype, shape))
    value: Any = array.tolist()
    if draw(st.booleans()):
        # One leaf swapped for something else: a bool, a whole float, a big int...
        flat_index = draw(st.integers(0, array.size - 1))
        index = np.unravel_index(flat_index, shape)
        node = value
        for i in index[:-1]:
            node = node[i]
        node[index[-1]] = draw(_leaves | st.lists(st.integers(), max_size=2))
    return value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.one_of(dense_values(), _json_values),
    dtype=st.sampled_from(_INPUT_DTYPES),
    row=st.booleans(),
)
def test_reading_one_input_matches_the_reference(value: Any, dtype: int, row: bool) -> None:
    key = "instances" if row else "inputs"
    assert_same_reading(as_json({key: value}), {"x": dtype})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(
        st.fixed_dictionaries({"a": dense_values(), "b": dense_values()}), min_size=1, max_size=3
    ),
    dtypes=st.tuples(st.sampled_from(_INPUT_DTYPES), st.sampled_from(_INPUT_DTYPES)),
    extra=st.booleans(),
)
def test_reading_named_instances_matches_the_reference(
    items: list[dict[str, Any]], dtypes: tuple[int, int], extra: bool
) -> None:
    if extra:
        items[-1]["c"] = 1
    signature = {"a": dtypes[0], "b": dtypes[1]}
    assert_same_reading(as_json({"instances": items}), signature)
    columns = {name: [item[name] for item in items] for name in signature}
    assert_same_reading(as_json({"inputs": columns}), signature)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ("[[1.5, 2], [3, 4.25]]", DT.DT_FLOAT),
        ("[[1e39, -1e-50], [16777217, 0.1]]", DT.DT_FLOAT),
        ("[[0.1, 2], [NaN, -Infinity]]", DT.DT_DOUBLE),
        ("[[2147483647, -2147483648]]", DT.DT_INT32),
        ("[[1000, -5]]", DT.DT_INT8),
        ("[9223372036854775807, -9223372036854775808]", DT.DT_INT64),
        ("[18446744073709551615, 0]", DT.DT_UINT64),
        ("[4294967295, 0]", DT.DT_UINT32),
        ("[[true], [false]]", DT.DT_BOOL),
    ],
)
def test_dense_numbers_take_the_vectorized_path(values: str, dtype: types_pb2.DataType) -> None:
    parsed = request.parse_predict_body(f'{{"inputs": {values}}}'.encode())
    assert dense.dense_values(parsed.document["inputs"], dtype) is not None
    assert_same_reading(f'{{"inputs": {values}}}'.encode(), {"x": dtype})
    assert_same_reading(f'{{"instances": {values}}}'.encode(), {"x": dtype})


@pytest.mark.parametrize(
    ("values", "dtype", "message_end"),
    [
        # numpy would read these as 1.0 / 1 / 1.5 / nan; TF Serving refuses them.
        ("[[1.5, true]]", DT.DT_FLOAT, "Type: True is not of expected type: float"),
        ("[[1, 2.0]]", DT.DT_INT32, "Type: Number is not of expected type: int32"),
        ("[[1, true]]", DT.DT_INT64, "Type: True is not of expected type: int64"),
        ('[["1.5", 2]]', DT.DT_FLOAT, "Type: String is not of expected type: float"),
        ("[[1.5, null]]", DT.DT_DOUBLE, "Type: Null is not of expected type: double"),
        ("[[1, 0]]", DT.DT_BOOL, "Type: Number is not of expected type: bool"),
        ("[2147483648]", DT.DT_INT32, "Type: Number is not of expected type: int32"),
        ("[-1, 1]", DT.DT_UINT32, "Type: Number is not of expected type: uint32"),
        ("[-1, 1]", DT.DT_UINT64, "Type: Number is not of expected type: uint64"),
        ("[9223372036854775808]", DT.DT_INT64, "Type: Number is not of expected type: int64"),
        ("[[1, 2], [3]]", DT.DT_FLOAT, "expected size: 2"),
        ("[[1, 2], 3]", DT.DT_FLOAT, "Expected at level: 2"),
        ("[1, [2]]", DT.DT_FLOAT, "Encountered list at unexpected level: 1 expected < 1"),
        ('[[1], [{"b64": "AA=="}]]', DT.DT_FLOAT, "Object is not of expected type: float"),
    ],
)
def test_inputs_numpy_would_misread_fall_back(
    values: str, dtype: types_pb2.DataType, message_end: str
) -> None:
    body = f'{{"inputs": {values}}}'.encode()
    parsed = request.parse_predict_body(body)
    assert dense.dense_values(parsed.document["inputs"], dtype) is None
    code, message = assert_same_reading(body, {"x": dtype})
    assert code == StatusCode.INVALID_ARGUMENT
    assert message_end in message
    assert_same_reading(f'{{"instances": {values}}}'.encode(), {"x": dtype})


@pytest.mark.parametrize("depth", [31, 33, 70, 5000])
def test_deep_nesting_reads_like_the_reference(depth: int) -> None:
    # Beyond numpy's 64 dimensions (and Python's recursion limit) it is an error
    # or a tensor exactly as element by element; never a crash.
    body = ("[" * depth + "1.5" + "]" * depth).encode()
    outcome = assert_same_reading(b'{"inputs": ' + body + b"}", {"x": DT.DT_FLOAT})
    tensors, _ = outcome
    assert len(tensors) == 1


# ---------------------------------------------------------------------------- writing


def write(outputs: dict[str, tensor_pb2.TensorProto], fmt: str, *, vectorized: bool) -> Any:
    try:
        writer = dense if vectorized else response
        return writer.predict_outputs_to_json(outputs, fmt)
    except ServingStatus as exc:
        return exc.code, exc.message


def assert_same_writing(outputs: dict[str, tensor_pb2.TensorProto]) -> None:
    for fmt in ("row", "columnar"):
        assert write(outputs, fmt, vectorized=True) == write(outputs, fmt, vectorized=False)


_SPECIAL_FLOATS = [
    0.0,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    5e-324,
    1.4e-45,
    1.17549435e-38,
    3.4028234663852886e38,
    1.7976931348623157e308,
    999999.5,
    1234565.0,
    16777216.0,
    1e22,
    1e23,
    0.1,
    1 / 3,
]
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.sampled_from(_SPECIAL_FLOATS),
    st.integers(-(10**7), 10**7).map(float),
    st.integers(-(10**7), 10**7).map(lambda n: n / 1000),
)


@st.composite
def output_arrays(draw: st.DrawFn, shape: tuple[int, ...] | None = None) -> np.ndarray[Any, Any]:
    kind = draw(st.sampled_from(["float32", "float64", "int32", "int64", "uint64", "bool", "str"]))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    if kind in ("float32", "float64"):
        # float32 subnormals and extremes too, not only doubles cast down.
        elements = _floats | st.floats(width=32) if kind == "float32" else _floats
        with np.errstate(over="ignore"):
            return draw(hnp.arrays(np.float64, shape, elements=elements)).astype(kind)
    if kind == "str":
        texts = st.text(max_size=4).map(lambda t: t.encode("utf-8", "surrogatepass"))
        return draw(hnp.arrays(object, shape, elements=texts))
    return draw(hnp.arrays(np.dtype(kind), shape))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(array=output_arrays(), content=st.booleans(), name=st.sampled_from(["y", "y_bytes"]))
def test_writing_one_output_matches_the_reference(
    array: np.ndarray[Any, Any], content: bool, name: str
) -> None:
    assert_same_writing({name: encode_tensor(array, as_content=content)})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), batch=st.integers(0, 3))
def test_writing_named_outputs_matches_the_reference(data: st.DataObject, batch: int) -> None:
    outputs = {}
    for name in ("a", "b_bytes", "c"):
        tail = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
        outputs[name] = encode_tensor(data.draw(output_arrays((batch, *tail))), as_content=False)
    assert_same_writing(outputs)


def test_big_float_tensor_bytes_match_the_reference() -> None:
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        array = rng.standard_normal((3, 40, 50)) * 10.0 ** rng.integers(-8, 8, (3, 40, 50))
        array = array.astype(dtype)
        array.flat[::97] = np.round(array.flat[::97])  # whole numbers get ".0"
        array.flat[::101] = np.nan
        assert_same_writing({"y": encode_tensor(array, as_content=False)})


def test_float_tokens_on_hard_values() -> None:
    # Six-digit ties, neighbours of powers of ten, subnormals and the extremes:
    # where the numeric decision of %g's round trip has to hand over to a parse.
    powers = np.array([10.0**k for k in range(-45, 39)])
    ties = np.arange(100000, 100400, dtype=np.float64) * 10 + 5
    candidates = [powers, ties, ties / 1e7, ties * 1e3, np.array(_SPECIAL_FLOATS)]
    for values in candidates:
        for dtype in (np.float32, np.float64):
            with np.errstate(over="ignore"):
                array = values.astype(dtype)
                probes = (array, np.nextafter(array, dtype(0)), np.nextafter(array, dtype(np.inf)))
            for probe in probes:
                double = dtype == np.float64
                expected = [format_float(v, double=double) for v in probe.tolist()]
                assert float_tokens(probe).texts() == expected
