"""TF DataType knowledge: numpy <-> DataType, names, wire fields, raw content, REST, base64."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

from tfs_async._proto import types_pb2
from tfs_async.codec import dtypes
from tfs_async.codec.tensor import encode_tensor
from tfs_async.errors import InvalidInputError

DT = types_pb2.DataType

PAIRS: list[tuple[int, Any]] = [
    (DT.DT_FLOAT, np.float32),
    (DT.DT_DOUBLE, np.float64),
    (DT.DT_HALF, np.float16),
    (DT.DT_BFLOAT16, ml_dtypes.bfloat16),
    (DT.DT_INT8, np.int8),
    (DT.DT_INT16, np.int16),
    (DT.DT_INT32, np.int32),
    (DT.DT_INT64, np.int64),
    (DT.DT_UINT8, np.uint8),
    (DT.DT_UINT16, np.uint16),
    (DT.DT_UINT32, np.uint32),
    (DT.DT_UINT64, np.uint64),
    (DT.DT_BOOL, np.bool_),
    (DT.DT_COMPLEX64, np.complex64),
    (DT.DT_COMPLEX128, np.complex128),
]


@pytest.mark.parametrize(("datatype", "np_type"), PAIRS, ids=lambda v: str(v))
def test_numeric_pairs_map_both_ways(datatype: int, np_type: Any) -> None:
    assert dtypes.to_numpy_dtype(datatype) == np.dtype(np_type)
    assert dtypes.to_datatype(np.dtype(np_type)) == datatype


@pytest.mark.parametrize(("datatype", "np_type"), PAIRS[:12], ids=lambda v: str(v))
def test_byte_order_does_not_change_the_datatype(datatype: int, np_type: Any) -> None:
    dt = np.dtype(np_type)
    assert dtypes.to_datatype(dt.newbyteorder(">")) == datatype
    assert dtypes.to_datatype(dt.newbyteorder("<")) == datatype


@pytest.mark.parametrize("dt", [np.dtype("S3"), np.dtype("U7"), np.dtype(object)])
def test_strings_are_dt_string(dt: np.dtype[Any]) -> None:
    assert dtypes.to_datatype(dt) == DT.DT_STRING


def test_dt_string_decodes_to_object() -> None:
    assert dtypes.to_numpy_dtype(DT.DT_STRING) == np.dtype(object)


def test_ref_dtypes_map_like_their_base() -> None:
    assert dtypes.to_numpy_dtype(DT.DT_FLOAT_REF) == np.dtype(np.float32)


UNSUPPORTED = [np.dtype("datetime64[s]"), np.dtype("timedelta64[s]"), np.dtype("V4")]
if np.dtype(np.longdouble).itemsize > 8:  # float128 where the platform has it
    UNSUPPORTED.append(np.dtype(np.longdouble))


@pytest.mark.parametrize("dt", UNSUPPORTED, ids=str)
def test_unsupported_numpy_dtype_names_input_and_lists_supported(dt: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        dtypes.to_datatype(np.dtype(dt), name="pixels")
    assert info.value.input_name == "pixels"
    assert "'pixels'" in str(info.value)
    assert "DT_FLOAT (float32)" in str(info.value)


@pytest.mark.parametrize("datatype", [DT.DT_RESOURCE, DT.DT_VARIANT, DT.DT_QINT8, 999])
def test_unsupported_datatype_names_tensor_and_dtype(datatype: int) -> None:
    with pytest.raises(InvalidInputError) as info:
        dtypes.to_numpy_dtype(datatype, name="out")
    assert "'out'" in str(info.value)
    assert dtypes.datatype_name(datatype) in str(info.value)


def test_names() -> None:
    assert dtypes.datatype_name(DT.DT_FLOAT) == "DT_FLOAT"
    assert dtypes.datatype_name(12345) == "DataType(12345)"
    assert dtypes.datatype_from_name("DT_BFLOAT16") == DT.DT_BFLOAT16
    assert dtypes.datatype_from_name("half") == DT.DT_HALF
    with pytest.raises(InvalidInputError, match="DT_NOPE"):
        dtypes.datatype_from_name("DT_NOPE")
    for value in dtypes.supported_datatypes():
        assert dtypes.datatype_from_name(dtypes.datatype_name(value)) == value


@pytest.mark.parametrize(
    ("datatype", "text"),
    [
        (DT.DT_FLOAT, "float"),
        (DT.DT_STRING, "string"),
        (DT.DT_COMPLEX64, "complex64"),
        (DT.DT_QINT8, "qint8"),
        (DT.DT_FLOAT_REF, "float_ref"),
        (DT.DT_BFLOAT16_REF, "bfloat16_ref"),
        (DT.DT_INVALID, "INVALID"),
        (999, "unknown dtype enum (999)"),
    ],
)
def test_type_string_is_tfs_datatypestring(datatype: int, text: str) -> None:
    assert dtypes.type_string(datatype) == text


def test_base_datatype_strips_ref() -> None:
    assert dtypes.base_datatype(DT.DT_INT64_REF) == DT.DT_INT64
    assert dtypes.base_datatype(DT.DT_INT64) == DT.DT_INT64


@pytest.mark.parametrize("datatype", [d for d in dtypes.supported_datatypes() if d != DT.DT_STRING])
def test_val_fields_name_the_field_the_codec_fills(datatype: int) -> None:
    np_dtype = dtypes.to_numpy_dtype(datatype)
    proto = encode_tensor(np.ones(3, dtype=np_dtype), as_content=False)
    field, _ = dtypes.VAL_FIELDS[proto.dtype]
    filled = [f.name for f, _ in proto.ListFields() if f.name.endswith("_val")]
    assert filled == [field]


@pytest.mark.parametrize("np_dtype", list(dtypes.RAW_CONTENT_DATATYPES))
def test_raw_content_dtypes_go_on_the_wire_as_their_buffer(np_dtype: np.dtype[Any]) -> None:
    array = np.arange(6).astype(np_dtype).reshape(2, 3)
    proto = encode_tensor(array, as_content=True)
    assert proto.dtype == dtypes.RAW_CONTENT_DATATYPES[np_dtype]
    assert proto.tensor_content == array.tobytes()


def test_rest_datatypes_are_the_ones_tf_serving_json_converts() -> None:
    # tests/reference/SPEC.md section 2.4: every other dtype is UNIMPLEMENTED over REST.
    names = {dtypes.datatype_name(d) for d in dtypes.REST_DATATYPES}
    assert names == {
        "DT_FLOAT",
        "DT_DOUBLE",
        "DT_INT32",
        "DT_INT16",
        "DT_INT8",
        "DT_UINT8",
        "DT_INT64",
        "DT_UINT32",
        "DT_UINT64",
        "DT_BOOL",
        "DT_STRING",
    }


def test_rest_numeric_and_b64_rules() -> None:
    assert dtypes.rest_numeric(np.dtype(np.uint16))  # the signature's dtype decides on the server
    assert not dtypes.rest_numeric(np.dtype(np.float16))
    assert not dtypes.rest_numeric(np.dtype(np.complex64))
    assert dtypes.is_b64_output("image_bytes")
    assert not dtypes.is_b64_output("bytes_image")
