"""Hostile input: the response decoders fuzzed, and awkward tensors and names end to end.

Decoders (REST JSON, the Predict wire fast path, protobuf + tensor decode) get
arbitrary and mutated bytes: they return arrays or raise a typed
:class:`~tfs_async.errors.TFServingError`, never anything else, never hang, and
never return a result the reference decoder disagrees with. A shape claiming
2**40 elements is refused before anything is allocated. Then NaN/Inf,
zero-size batches, invalid UTF-8, mismatched batch sizes and names with
``/ : %``, spaces and unicode go through both transports against the emulator:
each round-trips or fails before sending.
"""

from __future__ import annotations

import contextlib
import json
import math
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.client import STEP, target_of, within
from tfs_async._proto import predict_pb2, tensor_pb2, types_pb2
from tfs_async.client import Client
from tfs_async.codec.json import decode_predict_body
from tfs_async.codec.predict_wire import decode_predict_response, decode_predict_response_proto
from tfs_async.codec.tensor import decode_string_list, decode_tensor
from tfs_async.errors import InvalidInputError, ResponseDecodeError, TFServingError
from tfs_async.testing import Fault, FaultPlan, ModelServer, PythonModel, signature
from tfs_async.types import SignatureSpec, TensorSpec

FUZZ = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])

# -- REST JSON ---------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.builds(lambda b: {"b64": b}, st.text(max_size=8)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.builds(lambda v: {"outputs": v}, json_values),
    st.builds(lambda v: {"predictions": v}, json_values),
    json_values,
)
SIGNATURE = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    inputs={"x": TensorSpec("x", "DT_FLOAT", (-1,))},
    outputs={"y": TensorSpec("y", "DT_FLOAT", (-1,))},
)


def _json_text(value: Any) -> bytes:
    # TF Serving writes bare NaN / Infinity tokens, as the standard library does.
    return json.dumps(value).encode()


@FUZZ
@given(body=bodies, with_signature=st.booleans())
def test_rest_decode_of_arbitrary_json_is_arrays_or_typed(body: Any, with_signature: bool) -> None:
    try:
        outputs = decode_predict_body(
            _json_text(body), signature=SIGNATURE if with_signature else None
        )
    except ResponseDecodeError:
        return
    assert all(isinstance(v, np.ndarray) for v in outputs.values())


@FUZZ
@given(data=st.binary(max_size=64) | st.text(max_size=32).map(str.encode))
def test_rest_decode_of_arbitrary_bytes_is_typed(data: bytes) -> None:
    with contextlib.suppress(ResponseDecodeError):
        decode_predict_body(data)


@FUZZ
@given(
    array=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    )
)
def test_rest_decode_reads_back_what_was_written(array: np.ndarray[Any, Any]) -> None:
    """No wrong silent result: values, NaN and infinities included, come back as sent."""
    body = _json_text({"outputs": {"y": array.tolist()}})
    decoded = decode_predict_body(body, signature=SIGNATURE)["y"]
    if array.size == 0:
        # JSON's [] cannot say (0, 3) from (0,): TF Serving's answer loses it too.
        assert decoded.size == 0
        return
    assert decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


def test_a_rest_number_beyond_float32_is_typed_not_inf() -> None:
    for spec in (None, SIGNATURE):
        with pytest.raises(ResponseDecodeError, match="out of float32's range"):
            decode_predict_body(b'{"outputs": [1.0, 1e300]}', signature=spec)
    # Infinity itself (TF Serving's bare token) is a value, not an overflow.
    decoded = decode_predict_body(b'{"outputs": [1.0, Infinity]}', signature=SIGNATURE)
    assert decoded["y"].tolist() == [1.0, float("inf")]


def test_invalid_utf8_in_a_rest_answer() -> None:
    # TF Serving writes a string output's raw bytes: they come back unchanged.
    assert decode_predict_body(b'{"outputs": ["\xff\xfe"]}')["outputs"].tolist() == [b"\xff\xfe"]
    # Anywhere else, bytes that are not UTF-8 are not JSON.
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        decode_predict_body(b'{"outputs": [1.0]}\xff')


# -- gRPC wire ---------------------------------------------------------------------

DTYPES = [
    types_pb2.DT_FLOAT,
    types_pb2.DT_DOUBLE,
    types_pb2.DT_INT32,
    types_pb2.DT_INT64,
    types_pb2.DT_UINT8,
    types_pb2.DT_BOOL,
    types_pb2.DT_STRING,
    types_pb2.DT_HALF,
    types_pb2.DT_INVALID,
    types_pb2.DT_FLOAT_REF,
    77,
]
dims = st.lists(
    st.integers(min_value=0, max_value=5) | st.sampled_from([-1, 2**31, 2**40, 2**62, 2**63 - 1]),
    max_size=4,
)


@st.composite
def tensors(draw: st.DrawFn) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto()
    proto.dtype = draw(st.sampled_from(DTYPES))  # type: ignore[assignment]
    for size in draw(dims):
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_shape.unknown_rank = draw(st.booleans()) and draw(st.booleans())
    form = draw(st.sampled_from(["content", "float", "int64", "string", "none"]))
    if form == "content":
        proto.tensor_content = draw(st.binary(max_size=40))
    elif form == "float":
        proto.float_val.extend(draw(st.lists(st.floats(width=32), max_size=6)))
    elif form == "int64":
        proto.int64_val.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6)))
    elif form == "string":
        proto.string_val.extend(draw(st.lists(st.binary(max_size=6), max_size=6)))
    return proto


@st.composite
def responses(draw: st.DrawFn) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    names = draw(st.lists(st.text(max_size=6), max_size=3, unique=True))
    for name in names:
        response.outputs[name].CopyFrom(draw(tensors()))
    return response


def _same(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        a, b = left[name], right[name]
        assert a.dtype == b.dtype
        assert a.shape == b.shape
        # Flat: a shape like (2**62, 0) is empty, but its nested list is not small.
        if a.dtype.kind in "fc":
            np.testing.assert_array_equal(a.ravel(), b.ravel())
        else:
            assert a.ravel().tolist() == b.ravel().tolist()


@FUZZ
@given(response=responses())
def test_wire_decode_agrees_with_the_reference_or_is_typed(
    response: predict_pb2.PredictResponse,
) -> None:
    """The fast path and protobuf + decode_tensor give the same arrays or both refuse."""
    data = response.SerializeToString()
    try:
        reference = decode_predict_response_proto(response)
    except TFServingError:
        reference = None
    try:
        fast = decode_predict_response(data)
    except ResponseDecodeError:
        assert reference is None
        return
    assert reference is not None, "the fast path accepted what the reference refuses"
    _same(dict(fast), dict(reference))
    for name, tensor in response.outputs.items():
        assert fast[name].shape == tuple(d.size for d in tensor.tensor_shape.dim)


@FUZZ
@given(
    response=responses(), cut=st.integers(min_value=0), flips=st.lists(st.integers(0), max_size=3)
)
def test_wire_decode_of_mutated_bytes_is_typed(
    response: predict_pb2.PredictResponse, cut: int, flips: list[int]
) -> None:
    data = bytearray(response.SerializeToString())
    if data:
        for flip in flips:
            data[flip % len(data)] ^= 0xFF
        data = data[: cut % (len(data) + 1)]
    try:
        result = decode_predict_response(bytes(data))
    except ResponseDecodeError:
        return
    assert all(isinstance(v, np.ndarray) for v in result.values())


@FUZZ
@given(data=st.binary(max_size=64))
def test_wire_decode_of_arbitrary_bytes_is_typed(data: bytes) -> None:
    with contextlib.suppress(ResponseDecodeError):
        decode_predict_response(data)


@FUZZ
@given(data=st.binary(max_size=64), count=st.integers(0, 2**40))
def test_string_list_decode_is_a_value_error_or_a_list(data: bytes, count: int) -> None:
    try:
        items = decode_string_list(data, count)
    except ValueError:
        return
    assert len(items) == count


@pytest.mark.parametrize(
    ("dtype", "field", "value"),
    [
        (types_pb2.DT_FLOAT, "float_val", 1.0),
        (types_pb2.DT_INT64, "int64_val", 1),
        (types_pb2.DT_STRING, "string_val", b"x"),
        (types_pb2.DT_BOOL, "bool_val", True),
    ],
)
def test_a_shape_of_2_to_the_40_is_refused_without_allocating(
    dtype: int, field: str, value: Any
) -> None:
    """One value and a shape of 2**40 elements: TF's fill rule would need terabytes."""
    proto = tensor_pb2.TensorProto()
    proto.dtype = dtype  # type: ignore[assignment]
    proto.tensor_shape.dim.add(size=2**20)
    proto.tensor_shape.dim.add(size=2**20)
    getattr(proto, field).append(value)
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(proto)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseDecodeError, match=r"1099511627776 elements"):
            decode_tensor(proto, name="y")
        with pytest.raises(ResponseDecodeError, match=r"'y'"):
            decode_predict_response(response.SerializeToString())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated while refusing"


def test_a_shape_whose_int64_product_wraps_is_refused() -> None:
    """[2**32, 2**32] multiplies to 0 in int64: it must not decode as an empty tensor."""
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add(size=2**32)
    proto.tensor_shape.dim.add(size=2**32)
    assert math.prod([2**32, 2**32]) == 2**64
    with pytest.raises(ResponseDecodeError, match="elements"):
        decode_tensor(proto, name="y")


# -- end to end ----------------------------------------------------------------------

ODD_MODEL = "od/d: 100% model é ü"
ODD_INPUT = "in/put:1 %x é"


def _echo_model() -> PythonModel:
    """Every input comes back as the output of the same name (batch sizes may differ)."""
    inputs = {
        ODD_INPUT: ("DT_FLOAT", [-1]),
        "s": ("DT_STRING", [-1]),
        "n": ("DT_INT64", [-1]),
    }
    return PythonModel(
        ODD_MODEL,
        {"serving_default": signature(lambda t: dict(t), inputs=inputs, outputs=dict(inputs))},
    )


@pytest_asyncio.fixture
async def echo_server() -> AsyncIterator[ModelServer]:
    async with within(STEP):
        server = ModelServer([_echo_model()], faults=FaultPlan())
        await server.start()
    try:
        yield server
    finally:
        async with within(STEP):
            await server.stop()


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 3.4028235e38, -1.5], np.float32)


async def test_awkward_tensors_and_names_round_trip(
    echo_server: ModelServer, protocol: str
) -> None:
    strings = np.array([b"\xff\xfe not utf-8", "é ü".encode(), b"", b"a/b:c %20"], object)
    inputs = {ODD_INPUT: SPECIAL, "s": strings, "n": np.array([2**62, -(2**63)], np.int64)}
    async with Client(target_of(echo_server, protocol), timeout=STEP) as client, within(STEP):
        result = await client.predict(ODD_MODEL, inputs)
    # Batch sizes 8, 4 and 2 in one request: each comes back as sent.
    if protocol == "grpc":
        np.testing.assert_array_equal(result[ODD_INPUT], SPECIAL)
    else:
        # TF Serving's JSON writes float32 with 6 significant digits.
        np.testing.assert_allclose(result[ODD_INPUT], SPECIAL, rtol=1e-5)
        assert np.signbit(result[ODD_INPUT][4])
    assert result["s"].tolist() == strings.tolist()
    assert result["n"].tolist() == [2**62, -(2**63)]


async def test_a_zero_size_batch_round_trips(echo_server: ModelServer, protocol: str) -> None:
    inputs = {
        ODD_INPUT: np.zeros((0,), np.float32),
        "s": np.zeros((0,), object),
        "n": np.zeros((0,), np.int64),
    }
    async with Client(target_of(echo_server, protocol), timeout=STEP) as client, within(STEP):
        result = await client.predict(ODD_MODEL, inputs)
        await client.metadata(ODD_MODEL)
        typed = await client.predict(ODD_MODEL, inputs)
    want = {
        ODD_INPUT: (np.dtype(np.float32), (0,)),
        "s": (np.dtype(object), (0,)),
        "n": (np.dtype(np.int64), (0,)),
    }
    assert {name: (value.dtype, value.shape) for name, value in typed.items()} == want
    shapes = {name: (value.dtype, value.shape) for name, value in result.items()}
    if protocol == "http":
        # Without metadata a REST answer's empty list carries no dtype: float32.
        assert shapes == {name: (np.dtype(np.float32), (0,)) for name in want}
    else:
        assert shapes == want


@pytest.mark.parametrize(
    "bad",
    [
        {ODD_INPUT: np.array([[1.0], [2.0, 3.0]], dtype=object)},  # ragged
        {ODD_INPUT: np.array([1.0, None], dtype=object)},  # None inside
        {ODD_INPUT: np.array(["1", 2.0], dtype=object)},  # mixed kinds
    ],
)
async def test_malformed_inputs_fail_before_sending(
    echo_server: ModelServer, protocol: str, bad: dict[str, Any]
) -> None:
    assert echo_server.faults is not None
    # A rule that counts every predict reaching the server (1 us of latency each).
    sent = echo_server.faults.add(Fault(method="predict", latency=1e-6))
    async with Client(target_of(echo_server, protocol), timeout=STEP) as client, within(STEP):
        with pytest.raises(InvalidInputError) as caught:
            await client.predict(ODD_MODEL, bad)
    assert sent.hits == 0
    assert caught.value.input_name == ODD_INPUT
