"""Our numpy <-> TensorProto against TensorFlow's ``make_tensor_proto`` / ``make_ndarray``.

Properties over every dtype TF Serving carries, random shapes (scalars and empty
arrays included) and both wire forms (``tensor_content`` and the typed
``*_val`` fields), plus the predict fast path read by Google's PredictRequest.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2 as g_tensor
from tensorflow_serving.apis import predict_pb2 as g_predict

from tfs_async._proto import tensor_pb2
from tfs_async.codec.predict_wire import (
    decode_predict_response,
    encode_predict_request,
    encode_predict_request_proto,
)
from tfs_async.codec.tensor import decode_tensor, encode_tensor
from tfs_async.types import ModelSpec

pytestmark = pytest.mark.interop

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMERIC_DTYPES: tuple[np.dtype[Any], ...] = (
    *(
        np.dtype(name)
        for name in (
            "float16",
            "float32",
            "float64",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "bool",
            "complex64",
            "complex128",
        )
    ),
    np.dtype(ml_dtypes.bfloat16),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _numeric_arrays(dtype: np.dtype[Any]) -> st.SearchStrategy[npt.NDArray[Any]]:
    if dtype == np.dtype(ml_dtypes.bfloat16):
        # hypothesis has no bfloat16: draw every bit pattern (NaN, inf, subnormals too).
        return hnp.arrays(np.uint16, SHAPES).map(lambda bits: bits.view(ml_dtypes.bfloat16))
    return hnp.arrays(dtype, SHAPES)


@st.composite
def any_array(draw: st.DrawFn) -> npt.NDArray[Any]:
    """A random array of any dtype TF Serving carries, strings included."""
    kind = draw(st.sampled_from([*NUMERIC_DTYPES, "bytes", "str"]))
    if kind == "bytes":
        return draw(hnp.arrays(object, SHAPES, elements=st.binary(max_size=6)))
    if kind == "str":
        # numpy str_ drops trailing NULs, which no TF string loses: keep them out.
        text = st.text(st.characters(exclude_characters="\x00"), max_size=5)
        return draw(hnp.arrays(np.dtype("<U5"), SHAPES, elements=text))
    assert isinstance(kind, np.dtype)
    return draw(_numeric_arrays(kind))


def _expected(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """What a TF string tensor holds for ``arr``: UTF-8 bytes; numbers unchanged."""
    if arr.dtype.kind == "U":
        encoded: npt.NDArray[Any] = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(arr)
        return encoded.reshape(arr.shape)
    return arr


def assert_same_array(got: npt.NDArray[Any], want: npt.NDArray[Any]) -> None:
    """Equal dtype, shape and values; floats compared bit for bit (NaN payloads too)."""
    want = _expected(want)
    assert got.shape == want.shape
    if want.dtype.kind in "OSU":
        assert got.dtype == np.dtype(object)
        assert [bytes(x) for x in got.ravel()] == [bytes(x) for x in want.ravel()]
        return
    assert got.dtype == want.dtype
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


def _to_google(proto: tensor_pb2.TensorProto) -> g_tensor.TensorProto:
    return g_tensor.TensorProto.FromString(proto.SerializeToString())


def _to_ours(proto: g_tensor.TensorProto) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto.FromString(proto.SerializeToString())


@PROPERTY
@given(arr=any_array(), as_content=st.booleans())
def test_tf_make_ndarray_reads_what_we_write(arr: npt.NDArray[Any], as_content: bool) -> None:
    proto = encode_tensor(arr, name="x", as_content=as_content)
    assert_same_array(tf.make_ndarray(_to_google(proto)), arr)


@PROPERTY
@given(arr=any_array())
def test_we_read_what_tf_make_tensor_proto_writes(arr: npt.NDArray[Any]) -> None:
    theirs = tf.make_tensor_proto(arr)
    assert_same_array(decode_tensor(_to_ours(theirs), name="x"), arr)


@PROPERTY
@given(arr=any_array())
def test_we_write_the_same_message_as_tf_in_the_form_tf_picks(arr: npt.NDArray[Any]) -> None:
    """Where TF writes ``tensor_content`` ours is identical; where it writes ``*_val``, too."""
    theirs = tf.make_tensor_proto(arr)
    as_content = bool(theirs.tensor_content)
    ours = encode_tensor(arr, name="x", as_content=as_content)
    assert _to_google(ours).SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True
    )


@st.composite
def filled_typed_protos(draw: st.DrawFn) -> tuple[g_tensor.TensorProto, Any, tuple[int, ...]]:
    """TF's single-element ``*_val`` form: one value that fills a whole shape."""
    kind = draw(st.sampled_from(["float32", "float64", "int32", "int64", "bool", "str", "half"]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    value: Any
    if kind == "str":
        value = draw(st.binary(min_size=1, max_size=4))
        dtype = tf.string
    elif kind == "bool":
        value, dtype = True, tf.bool
    elif kind == "half":
        value = draw(st.floats(-1000, 1000, width=16).filter(bool))
        dtype = tf.float16
    else:
        dtype = tf.as_dtype(kind)
        value = draw(hnp.from_dtype(np.dtype(kind), allow_nan=False).filter(bool)).item()
    return tf.make_tensor_proto(value, dtype=dtype, shape=list(shape)), value, shape


@PROPERTY
@given(case=filled_typed_protos())
def test_a_single_typed_value_fills_the_shape_like_tf(
    case: tuple[g_tensor.TensorProto, Any, tuple[int, ...]],
) -> None:
    theirs, _, shape = case
    # TF writes exactly one element and the shape: the case the fill rule is for.
    assert not theirs.tensor_content
    got = decode_tensor(_to_ours(theirs), name="x")
    assert got.shape == shape
    assert_same_array(got, tf.make_ndarray(theirs))


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES, ids=lambda d: d.name)
def test_every_dtype_maps_to_tfs_datatype(dtype: np.dtype[Any]) -> None:
    arr = np.zeros((2,), dtype)
    assert encode_tensor(arr, name="x").dtype == tf.make_tensor_proto(arr).dtype


# ---------------------------------------------------------------- the predict fast path

INPUT_NAMES = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6)


@PROPERTY
@given(
    inputs=st.dictionaries(INPUT_NAMES, any_array(), min_size=1, max_size=3),
    version=st.none() | st.integers(0, 2**63 - 1),
    signature=st.none() | st.text(max_size=8),
    output_filter=st.lists(INPUT_NAMES, max_size=2),
)
def test_fast_predict_request_parses_in_google_classes(
    inputs: dict[str, npt.NDArray[Any]],
    version: int | None,
    signature: str | None,
    output_filter: list[str],
) -> None:
    model = ModelSpec("half_plus_two", version=version, signature=signature)
    data = encode_predict_request(model, inputs, output_filter)
    theirs = g_predict.PredictRequest.FromString(data)

    assert theirs.model_spec.name == "half_plus_two"
    assert theirs.model_spec.HasField("version") == (version is not None)
    if version is not None:
        assert theirs.model_spec.version.value == version
    assert theirs.model_spec.signature_name == (signature or "")
    assert list(theirs.output_filter) == output_filter
    assert set(theirs.inputs) == set(inputs)
    for name, arr in inputs.items():
        assert_same_array(tf.make_ndarray(theirs.inputs[name]), arr)
    # The same message protobuf builds, field for field.
    reference = encode_predict_request_proto(model, inputs, output_filter)
    assert theirs.SerializeToString(deterministic=True) == reference.SerializeToString(
        deterministic=True
    )


def test_fast_predict_request_big_float32_image() -> None:
    image = np.random.default_rng(7).random((2, 224, 224, 3), dtype=np.float32)
    data = encode_predict_request(ModelSpec("resnet", version=3), {"images": image})
    theirs = g_predict.PredictRequest.FromString(data)
    assert theirs.model_spec.version.value == 3
    np.testing.assert_array_equal(tf.make_ndarray(theirs.inputs["images"]), image)


# ---------------------------------------------------------------- reading PredictResponse bytes

# TF's AsProtoField: which typed field holds each dtype's elements.
_TYPED_FIELD = {
    "float32": "float_val",
    "float64": "double_val",
    "int32": "int_val",
    "int16": "int_val",
    "int8": "int_val",
    "uint8": "int_val",
    "int64": "int64_val",
    "bool": "bool_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
}


def _typed_proto(arr: npt.NDArray[Any]) -> g_tensor.TensorProto:
    """``arr`` the way TF Serving answers by default: shape + every element in ``*_val``."""
    proto = g_tensor.TensorProto(dtype=tf.as_dtype(arr.dtype).as_datatype_enum)
    for size in arr.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, _TYPED_FIELD[arr.dtype.name]).extend(arr.ravel().tolist())
    return proto


@PROPERTY
@given(
    outputs=st.dictionaries(
        INPUT_NAMES,
        st.one_of(
            any_array(),
            st.sampled_from(sorted(_TYPED_FIELD)).flatmap(
                lambda name: _numeric_arrays(np.dtype(name))
            ),
        ),
        min_size=1,
        max_size=3,
    ),
    typed=st.booleans(),
    version=st.integers(0, 2**63 - 1),
)
def test_we_decode_googles_predict_response(
    outputs: dict[str, npt.NDArray[Any]], typed: bool, version: int
) -> None:
    response = g_predict.PredictResponse()
    response.model_spec.name = "m"
    response.model_spec.version.value = version
    response.model_spec.signature_name = "serving_default"
    for name, arr in outputs.items():
        if typed and arr.dtype.name in _TYPED_FIELD:
            response.outputs[name].CopyFrom(_typed_proto(arr))
        else:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(arr))

    result = decode_predict_response(response.SerializeToString())

    assert set(result) == set(outputs)
    for name, arr in outputs.items():
        assert_same_array(result[name], tf.make_ndarray(response.outputs[name]))
        assert_same_array(result[name], arr)
    assert result.model is not None
    assert (result.model.name, result.model.version, result.model.signature) == (
        "m",
        version,
        "serving_default",
    )
