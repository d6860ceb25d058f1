"""The gRPC Predict hot path: hand-written wire bytes against protobuf's."""

from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.arrays import NUMERIC_DTYPES, assert_same_array
from tfs_async._proto import predict_pb2, tensor_pb2, types_pb2
from tfs_async.codec.predict_wire import (
    decode_predict_response,
    decode_predict_response_proto,
    encode_predict_request,
    encode_predict_request_proto,
)
from tfs_async.codec.tensor import encode_tensor
from tfs_async.errors import InvalidInputError, ResponseDecodeError
from tfs_async.types import ModelSpec

DT = types_pb2.DataType
BF16 = np.dtype(ml_dtypes.bfloat16)

specs = st.builds(
    ModelSpec,
    name=st.text(min_size=1, max_size=8),
    version=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    signature=st.none() | st.text(min_size=1, max_size=8),
) | st.builds(
    ModelSpec, name=st.text(min_size=1, max_size=8), label=st.text(min_size=1, max_size=8)
)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
numeric = st.sampled_from([d for d in NUMERIC_DTYPES if d != BF16]).flatmap(
    lambda dt: hnp.arrays(dt, shapes)
)
arrays = st.one_of(
    numeric,
    numeric.map(lambda a: a.T),  # non-contiguous for rank >= 2
    numeric.filter(lambda a: a.dtype.itemsize > 1).map(
        lambda a: a.astype(a.dtype.newbyteorder(">"))
    ),
    hnp.arrays(np.uint16, shapes).map(lambda a: a.view(BF16)),
    hnp.arrays(object, shapes, elements=st.binary(max_size=4) | st.text(max_size=4)),
)
input_maps = st.dictionaries(st.text(max_size=6), arrays, min_size=1, max_size=3)


@settings(max_examples=120, deadline=None)
@given(
    spec=specs,
    inputs=input_maps,
    output_filter=st.lists(st.text(max_size=5), max_size=2),
)
def test_property_fast_request_parses_to_the_protobuf_built_one(
    spec: ModelSpec, inputs: dict[str, Any], output_filter: list[str]
) -> None:
    data = encode_predict_request(spec, inputs, output_filter)
    assert predict_pb2.PredictRequest.FromString(data) == encode_predict_request_proto(
        spec, inputs, output_filter
    )


def test_request_bytes_equal_protobuf_for_one_input() -> None:
    # With a single map entry there is no ordering freedom: the bytes must match.
    spec = ModelSpec("resnet", version=7, signature="serving_default")
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    data = encode_predict_request(spec, {"x": x}, ["probs"])
    assert data == encode_predict_request_proto(spec, {"x": x}, ["probs"]).SerializeToString()


def test_request_rejects_bad_input_naming_it() -> None:
    with pytest.raises(InvalidInputError, match="'pixels'"):
        encode_predict_request(ModelSpec("m"), {"pixels": [[1, 2], [3]]})
    with pytest.raises(InvalidInputError, match="output_filter"):
        encode_predict_request(ModelSpec("m"), {"x": np.ones(1)}, "probs")
    with pytest.raises(InvalidInputError, match="no TF DataType"):
        encode_predict_request(ModelSpec("m"), {"t": np.array(["2020"], "datetime64[D]")})


def response_bytes(outputs: dict[str, Any], *, as_content: bool, spec: ModelSpec | None) -> bytes:
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(encode_tensor(value, name=name, as_content=as_content))
    if spec is not None:
        response.model_spec.name = spec.name
        if spec.version is not None:
            response.model_spec.version.value = spec.version
        if spec.signature is not None:
            response.model_spec.signature_name = spec.signature
    return response.SerializeToString()


@settings(max_examples=120, deadline=None)
@given(outputs=input_maps, as_content=st.booleans(), spec=st.none() | specs)
def test_property_fast_response_decode_equals_protobuf_path(
    outputs: dict[str, Any], as_content: bool, spec: ModelSpec | None
) -> None:
    data = response_bytes(outputs, as_content=as_content, spec=spec)
    fast = decode_predict_response(data)
    slow = decode_predict_response_proto(predict_pb2.PredictResponse.FromString(data))
    assert fast.model == slow.model
    assert set(fast) == set(slow) == set(outputs)
    for name, value in outputs.items():
        assert_same_array(slow[name], value)
        assert_same_array(fast[name], slow[name])
        if value.dtype.kind != "O":  # bit-exact, NaN payloads included
            assert fast[name].tobytes() == slow[name].tobytes()


@pytest.mark.parametrize("as_content", [True, False], ids=["content", "typed"])
def test_fast_outputs_are_writable_copies(as_content: bool) -> None:
    y = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    z = np.arange(5, dtype=np.float64)
    data = response_bytes({"y": y, "z": z}, as_content=as_content, spec=ModelSpec("m", version=3))
    result = decode_predict_response(data)
    assert result.model == ModelSpec("m", version=3)
    assert_same_array(result["y"], y)
    assert_same_array(result["z"], z)
    assert result["y"].flags.writeable
    result["y"][0, 0] = 5.0
    assert decode_predict_response(data)["y"][0, 0] == 0.0


def test_single_float_val_fills_shape_through_the_fast_decoder() -> None:
    response = predict_pb2.PredictResponse()
    tensor = response.outputs["y"]
    tensor.dtype = DT.DT_FLOAT
    tensor.tensor_shape.dim.add(size=3)
    tensor.float_val.append(2.5)
    assert decode_predict_response(response.SerializeToString())["y"].tolist() == [2.5] * 3


def test_unknown_fields_are_skipped() -> None:
    data = response_bytes({"y": np.ones(2, np.float32)}, as_content=True, spec=None)
    # field 15, varint 1, and field 14, a length-delimited blob: unknown to PredictResponse.
    extra = bytes([15 << 3 | 0, 1, 14 << 3 | 2, 3]) + b"abc"
    assert decode_predict_response(extra + data)["y"].tolist() == [1.0, 1.0]


def test_truncated_response_raises() -> None:
    data = response_bytes({"y": np.ones(8, np.float32)}, as_content=True, spec=None)
    with pytest.raises(ResponseDecodeError, match="truncated"):
        decode_predict_response(data[:-5])


def test_content_size_mismatch_names_the_output() -> None:
    tensor = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_content=b"\0" * 12)
    tensor.tensor_shape.dim.add(size=4)
    response = predict_pb2.PredictResponse()
    response.outputs["logits"].CopyFrom(tensor)
    with pytest.raises(ResponseDecodeError, match=r"'logits'.*12 bytes"):
        decode_predict_response(response.SerializeToString())


def test_memoryview_and_bytearray_are_accepted() -> None:
    data = response_bytes({"y": np.arange(3, dtype=np.int32)}, as_content=True, spec=None)
    assert decode_predict_response(bytearray(data))["y"].tolist() == [0, 1, 2]
    assert decode_predict_response(memoryview(data))["y"].tolist() == [0, 1, 2]


def test_copy_false_gives_views_into_the_response() -> None:
    y = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = response_bytes({"y": y}, as_content=True, spec=None)
    view = decode_predict_response(data, copy=False)["y"]
    assert_same_array(view, y)
    assert not view.flags.writeable  # a view into immutable bytes
    assert np.shares_memory(view, np.frombuffer(data, np.uint8))


def _response(outputs: dict[str, np.ndarray], *, as_content: bool = True) -> bytes:
    resp = predict_pb2.PredictResponse()
    resp.model_spec.name = "m"
    resp.model_spec.version.value = 7
    for name, arr in outputs.items():
        resp.outputs[name].CopyFrom(encode_tensor(arr, as_content=as_content))
    return resp.SerializeToString()


def test_repeated_layouts_read_each_responses_own_values() -> None:
    # Responses of one model and shape share their layout; the values must still be each one's.
    first = decode_predict_response(_response({"y": np.full((2, 3), 1.0, np.float32)}))
    second = decode_predict_response(_response({"y": np.full((2, 3), 2.0, np.float32)}))
    assert_same_array(first["y"], np.full((2, 3), 1.0, np.float32))
    assert_same_array(second["y"], np.full((2, 3), 2.0, np.float32))
    assert second.model == ModelSpec("m", version=7)


@pytest.mark.parametrize(
    "other",
    [
        {"z": np.zeros((2, 3), np.float32)},  # same size, another output name
        {"y": np.zeros((3, 2), np.float32)},  # same size, another shape
        {"y": np.zeros((2, 3), np.int32)},  # same size, another dtype
        {"y": np.zeros((2, 2), np.float64)},  # another size
    ],
    ids=["name", "shape", "dtype", "size"],
)
def test_a_different_layout_is_parsed_afresh(other: dict[str, np.ndarray]) -> None:
    decode_predict_response(_response({"y": np.ones((2, 3), np.float32)}))
    result = decode_predict_response(_response(other))
    assert set(result) == set(other)
    for name, arr in other.items():
        assert_same_array(result[name], arr)


def test_layouts_with_several_outputs_keep_them_apart() -> None:
    outputs: dict[str, np.ndarray[Any, Any]] = {
        "a": np.arange(4, dtype=np.float32),
        "b": np.arange(3, dtype=np.int64),
    }
    for scale in (1, 5):
        scaled = {k: v * scale for k, v in outputs.items()}
        result = decode_predict_response(_response(scaled))
        for name, arr in scaled.items():
            assert_same_array(result[name], arr)
