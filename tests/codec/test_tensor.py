"""numpy <-> TensorProto, both wire forms."""

from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.arrays import NUMERIC_DTYPES, assert_same_array
from tfs_async._proto import tensor_pb2, types_pb2
from tfs_async.codec.tensor import (
    decode_string_list,
    decode_tensor,
    encode_string_list,
    encode_tensor,
)
from tfs_async.errors import InvalidInputError, ResponseDecodeError

DT = types_pb2.DataType
BF16 = np.dtype(ml_dtypes.bfloat16)


def sample(dtype: np.dtype[Any], shape: tuple[int, ...] = (2, 3)) -> np.ndarray[Any, Any]:
    n = int(np.prod(shape))
    base = np.arange(n, dtype=np.int64) * 7 - n * 3
    if dtype.kind == "b":
        flags: np.ndarray[Any, Any] = (base % 3 == 0).reshape(shape)
        return flags
    if dtype.kind == "u":
        base = np.abs(base)
    if dtype.kind == "c":
        return (base + 1j * (base - 1)).astype(dtype).reshape(shape)
    return base.astype(dtype).reshape(shape)


def roundtrip(value: Any, as_content: bool) -> np.ndarray[Any, Any]:
    proto = encode_tensor(value, name="x", as_content=as_content)
    wire = tensor_pb2.TensorProto.FromString(proto.SerializeToString())
    return decode_tensor(wire, name="x")


@pytest.mark.parametrize("as_content", [True, False], ids=["content", "typed"])
@pytest.mark.parametrize("dtype", NUMERIC_DTYPES, ids=str)
def test_every_dtype_round_trips(dtype: np.dtype[Any], as_content: bool) -> None:
    arr = sample(dtype)
    assert_same_array(roundtrip(arr, as_content), arr)
    # scalar, empty, non-contiguous
    assert_same_array(roundtrip(arr[1, 2], as_content), np.asarray(arr[1, 2]))
    assert_same_array(roundtrip(arr[:0], as_content), arr[:0])
    assert_same_array(roundtrip(arr[:, ::2], as_content), arr[:, ::2])
    assert_same_array(roundtrip(arr.T, as_content), arr.T)


@pytest.mark.parametrize("as_content", [True, False], ids=["content", "typed"])
@pytest.mark.parametrize(
    "dtype", [d for d in NUMERIC_DTYPES if d.itemsize > 1 and d != BF16], ids=str
)
def test_big_endian_input_round_trips(dtype: np.dtype[Any], as_content: bool) -> None:
    arr = sample(dtype).astype(dtype.newbyteorder(">"))
    assert_same_array(roundtrip(arr, as_content), arr)


def test_tensor_content_is_little_endian_c_order() -> None:
    arr = np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3))
    proto = encode_tensor(arr)
    assert proto.dtype == DT.DT_FLOAT
    assert [d.size for d in proto.tensor_shape.dim] == [2, 3]
    assert proto.tensor_content == np.arange(6, dtype="<f4").tobytes()
    assert not proto.float_val


def test_scalar_has_a_present_empty_shape() -> None:
    proto = encode_tensor(3.5)
    assert proto.HasField("tensor_shape")
    assert len(proto.tensor_shape.dim) == 0
    assert proto.dtype == DT.DT_DOUBLE  # numpy's default for a Python float
    assert decode_tensor(proto).shape == ()


def test_typed_fields_are_what_as_proto_field_writes() -> None:
    assert list(encode_tensor(np.array([1.0, -2.0], np.float16), as_content=False).half_val) == [
        0x3C00,
        0xC000,
    ]
    assert list(encode_tensor(np.array([1.0], BF16), as_content=False).half_val) == [0x3F80]
    c = encode_tensor(np.array([1 + 2j, 3 - 4j], np.complex64), as_content=False)
    assert list(c.scomplex_val) == [1.0, 2.0, 3.0, -4.0]
    assert list(encode_tensor(np.array([5j], np.complex128), as_content=False).dcomplex_val) == [
        0.0,
        5.0,
    ]
    assert list(encode_tensor(np.array([-1, 2], np.int8), as_content=False).int_val) == [-1, 2]
    assert list(encode_tensor(np.array([65535], np.uint16), as_content=False).int_val) == [65535]
    assert list(encode_tensor(np.array([2**32 - 1], np.uint32), as_content=False).uint32_val) == [
        2**32 - 1
    ]
    assert list(encode_tensor(np.array([2**64 - 1], np.uint64), as_content=False).uint64_val) == [
        2**64 - 1
    ]
    assert list(encode_tensor(np.array([-(2**63)], np.int64), as_content=False).int64_val) == [
        -(2**63)
    ]
    assert list(encode_tensor(np.array([True, False]), as_content=False).bool_val) == [True, False]
    assert list(encode_tensor(np.array([0.5], np.float64), as_content=False).double_val) == [0.5]
    assert list(encode_tensor(np.array([0.25], np.float32), as_content=False).float_val) == [0.25]


def proto_with(dtype: int, shape: list[int], **fields: Any) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)  # type: ignore[arg-type]
    proto.tensor_shape.SetInParent()
    for d in shape:
        proto.tensor_shape.dim.add(size=d)
    return proto


@pytest.mark.parametrize(
    ("proto", "want"),
    [
        (proto_with(DT.DT_FLOAT, [2, 3], float_val=[7.5]), np.full((2, 3), 7.5, np.float32)),
        (proto_with(DT.DT_INT64, [4], int64_val=[-3]), np.full(4, -3, np.int64)),
        (proto_with(DT.DT_HALF, [3], half_val=[0x3C00]), np.ones(3, np.float16)),
        (proto_with(DT.DT_COMPLEX64, [2], scomplex_val=[1, 2]), np.full(2, 1 + 2j, np.complex64)),
        (proto_with(DT.DT_STRING, [2], string_val=[b"s"]), np.array([b"s", b"s"], object)),
        (proto_with(DT.DT_BOOL, [2], bool_val=[True]), np.array([True, True])),
        # TF's FromProtoField: fewer values than the shape are padded with the last one...
        (proto_with(DT.DT_FLOAT, [4], float_val=[1, 2]), np.array([1, 2, 2, 2], np.float32)),
        # ... and no values at all give zeros.
        (proto_with(DT.DT_INT32, [3]), np.zeros(3, np.int32)),
        (proto_with(DT.DT_STRING, [2]), np.array([b"", b""], object)),
    ],
    ids=[
        "float",
        "int64",
        "half",
        "complex",
        "string",
        "bool",
        "pad-with-last",
        "none-zeros",
        "none-empty-strings",
    ],
)
def test_single_value_fills_the_shape(proto: tensor_pb2.TensorProto, want: Any) -> None:
    assert_same_array(decode_tensor(proto), want)


def test_half_val_bit_patterns_decode() -> None:
    proto = proto_with(DT.DT_HALF, [3], half_val=[0x3C00, 0x7C00, 0xFC00])
    assert decode_tensor(proto).tolist() == [1.0, float("inf"), float("-inf")]
    proto = proto_with(DT.DT_BFLOAT16, [2], half_val=[0x3F80, 0xC000])
    got = decode_tensor(proto)
    assert got.dtype == BF16
    assert got.astype(np.float32).tolist() == [1.0, -2.0]


def test_missing_shape_is_a_scalar() -> None:
    assert decode_tensor(tensor_pb2.TensorProto(dtype=DT.DT_INT32, int_val=[4])).shape == ()


def test_decode_copies_once_and_is_writable() -> None:
    proto = encode_tensor(np.arange(4, dtype=np.float32))
    arr = decode_tensor(proto)
    arr[0] = 9  # writable: a caller may work in place
    view = decode_tensor(proto, copy=False)
    assert not view.flags.writeable
    assert view.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("proto", "match"),
    [
        (proto_with(DT.DT_FLOAT, [3], float_val=[1, 2, 3, 4]), "4 values"),
        (proto_with(DT.DT_FLOAT, [3], tensor_content=b"\0" * 8), "8 bytes"),
        (proto_with(DT.DT_COMPLEX64, [1], scomplex_val=[1]), "odd number"),
        (proto_with(DT.DT_FLOAT, [-1], float_val=[1]), "negative dimension"),
        (
            tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape={"unknown_rank": True}),
            "unknown rank",
        ),
        (proto_with(DT.DT_RESOURCE, [1]), "DT_RESOURCE"),
        (proto_with(DT.DT_STRING, [2], tensor_content=b"\x05ab"), "string tensor_content"),
    ],
    ids=[
        "too-many",
        "content-size",
        "odd-complex",
        "negative-dim",
        "unknown-rank",
        "resource",
        "bad-strings",
    ],
)
def test_malformed_tensors_raise_naming_the_tensor(
    proto: tensor_pb2.TensorProto, match: str
) -> None:
    with pytest.raises(ResponseDecodeError, match=match) as info:
        decode_tensor(proto, name="logits")
    assert "'logits'" in str(info.value)
    # A server decoding a request asks for the client-input error instead.
    with pytest.raises(InvalidInputError, match=match):
        decode_tensor(proto, name="logits", error=InvalidInputError)


def test_encode_string_list_is_tfs_format() -> None:
    long = b"x" * 300
    data = encode_string_list([b"a", b"", long])
    assert data == b"\x01\x00\xac\x02" + b"a" + long  # 300 = varint ac 02
    assert decode_string_list(data, 3) == [b"a", b"", long]
    proto = proto_with(DT.DT_STRING, [3], tensor_content=data)
    assert decode_tensor(proto).tolist() == [b"a", b"", long]


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (np.array([b"ab", b"c"]), [b"ab", b"c"]),
        (np.array(["h\u00e9", "x"]), ["h\u00e9".encode(), b"x"]),
        (np.array([b"a", "\u00df"], dtype=object), [b"a", "\u00df".encode()]),
        ([["a", "b"], ["c", "d"]], [[b"a", b"b"], [b"c", b"d"]]),
        ("scalar", b"scalar"),
        (np.array([], dtype=object), []),
    ],
    ids=["bytes_", "str_", "object-mixed", "nested-list", "scalar", "empty"],
)
@pytest.mark.parametrize("as_content", [True, False], ids=["content", "typed"])
def test_strings_go_to_string_val(value: Any, want: Any, as_content: bool) -> None:
    proto = encode_tensor(value, as_content=as_content)
    assert proto.dtype == DT.DT_STRING
    assert not proto.tensor_content
    got = decode_tensor(tensor_pb2.TensorProto.FromString(proto.SerializeToString()))
    assert got.dtype == object
    assert got.tolist() == want


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([[1, 2], [3]], "rectangular"),
        (np.array([b"a", None], dtype=object), "NoneType None at index \\(1,\\)"),
        ([1, "a"], "int 1 at index \\(0,\\)"),
        (np.array([1.5, 2.5], dtype=object), "float 1.5"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64"),
        (np.zeros(2, dtype="V4"), "no TF DataType"),
    ],
    ids=["ragged", "none", "mixed-list", "object-numbers", "datetime", "void"],
)
def test_bad_input_names_the_input(value: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        encode_tensor(value, name="images")
    assert info.value.input_name == "images"
    assert "'images'" in str(info.value)


def _arrays() -> st.SearchStrategy[np.ndarray[Any, Any]]:
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    plain = st.sampled_from([d for d in NUMERIC_DTYPES if d != BF16]).flatmap(
        lambda dt: hnp.arrays(dt, shapes)
    )
    bf16 = hnp.arrays(np.uint16, shapes).map(lambda a: a.view(BF16))
    swapped = plain.filter(lambda a: a.dtype.itemsize > 1).map(
        lambda a: a.astype(a.dtype.newbyteorder(">"))
    )
    text = hnp.arrays(
        object, shapes, elements=st.one_of(st.binary(max_size=5), st.text(max_size=5))
    )
    return st.one_of(plain, bf16, swapped, text)


@settings(max_examples=150, deadline=None)
@given(arr=_arrays(), as_content=st.booleans())
def test_property_any_array_round_trips(arr: np.ndarray[Any, Any], as_content: bool) -> None:
    got = roundtrip(arr, as_content)
    if arr.dtype.kind == "O":
        want = [v.encode("utf-8") if isinstance(v, str) else v for v in arr.ravel().tolist()]
        assert got.shape == arr.shape
        assert got.ravel().tolist() == want
    elif (arr.dtype.kind == "f" and arr.dtype.itemsize == 2) or arr.dtype == BF16:
        # half/bfloat16 travel as bit patterns either way: exact, NaN payloads included.
        assert (
            got.view(np.uint16).tolist()
            == arr.astype(arr.dtype.newbyteorder("=")).view(np.uint16).tolist()
        )
    else:
        assert_same_array(got, arr)
