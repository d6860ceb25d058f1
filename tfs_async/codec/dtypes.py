"""Everything the project knows about TF ``DataType`` s, for the client codecs and the emulator.

- numpy <-> DataType (:func:`to_numpy_dtype`, :func:`to_datatype`): every dtype TF
  Serving carries over its APIs has a numpy twin here. ``DT_STRING`` maps to
  numpy's object dtype (items are ``bytes``); ``DT_BFLOAT16`` needs the optional
  ``ml_dtypes`` package.
- names: ``DT_FLOAT`` (:func:`datatype_name`, :func:`datatype_from_name`) and TF's
  ``DataTypeString``, ``float`` (:func:`type_string`), which TF's messages use.
- the wire: which typed ``*_val`` field holds a dtype's values (:data:`VAL_FIELDS`)
  and which numpy dtypes go into ``tensor_content`` as their raw buffer
  (:data:`RAW_CONTENT_DATATYPES`).
- REST JSON: which DataTypes TF Serving's JSON carries (:data:`REST_DATATYPES`),
  which numpy kinds the client writes as JSON numbers (:func:`rest_numeric`), and
  the base64 rule (:func:`is_b64_output`).

A DataType is typed as the proto enum, :data:`DataType`.

>>> import numpy as np
>>> to_numpy_dtype(datatype_from_name("DT_FLOAT"))
dtype('float32')
>>> datatype_name(to_datatype(np.dtype(">i8")))
'DT_INT64'
>>> datatype_name(to_datatype(np.dtype("U5")))
'DT_STRING'
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypeAlias, cast

import numpy as np

from tfs_async._proto import types_pb2
from tfs_async.errors import InvalidInputError

__all__ = [
    "BFLOAT16",
    "RAW_CONTENT_DATATYPES",
    "REST_DATATYPES",
    "B64_OUTPUT_SUFFIX",
    "VAL_FIELDS",
    "DataType",
    "base_datatype",
    "datatype_from_name",
    "datatype_name",
    "is_b64_output",
    "is_string",
    "rest_numeric",
    "supported_datatypes",
    "to_datatype",
    "to_numpy_dtype",
    "type_string",
]

#: A TF ``DataType`` value, typed as the proto enum.
DataType: TypeAlias = types_pb2.DataType

try:  # bfloat16 is optional: numpy has no such type of its own.
    import ml_dtypes

    BFLOAT16: np.dtype[Any] | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - exercised only without ml_dtypes
    BFLOAT16 = None

_DT = types_pb2.DataType
_OBJECT = np.dtype(object)

# TF DataType -> numpy dtype (native byte order); DT_STRING is the object dtype.
_NUMPY_FOR: dict[DataType, np.dtype[Any]] = {
    _DT.DT_FLOAT: np.dtype(np.float32),
    _DT.DT_DOUBLE: np.dtype(np.float64),
    _DT.DT_HALF: np.dtype(np.float16),
    _DT.DT_INT8: np.dtype(np.int8),
    _DT.DT_INT16: np.dtype(np.int16),
    _DT.DT_INT32: np.dtype(np.int32),
    _DT.DT_INT64: np.dtype(np.int64),
    _DT.DT_UINT8: np.dtype(np.uint8),
    _DT.DT_UINT16: np.dtype(np.uint16),
    _DT.DT_UINT32: np.dtype(np.uint32),
    _DT.DT_UINT64: np.dtype(np.uint64),
    _DT.DT_BOOL: np.dtype(np.bool_),
    _DT.DT_COMPLEX64: np.dtype(np.complex64),
    _DT.DT_COMPLEX128: np.dtype(np.complex128),
    _DT.DT_STRING: _OBJECT,
}
if BFLOAT16 is not None:
    _NUMPY_FOR[_DT.DT_BFLOAT16] = BFLOAT16

# numpy dtype (native byte order) -> TF DataType, for the numeric dtypes.
_DATATYPE_FOR: dict[np.dtype[Any], DataType] = {
    dt: datatype for datatype, dt in _NUMPY_FOR.items() if datatype != _DT.DT_STRING
}

# TF's *_REF dtypes are the base dtype + 100 (a reference to a variable).
_REF_OFFSET = 100

#: DataType -> (the typed ``TensorProto`` field holding its values, that field's item
#: dtype), as TF's ``AsProtoField`` writes them: int8/16 and uint8/16 in ``int_val``,
#: half and bfloat16 as bit patterns in ``half_val``, complex as (real, imag) pairs.
VAL_FIELDS: Mapping[DataType, tuple[str, np.dtype[Any]]] = {
    _DT.DT_FLOAT: ("float_val", np.dtype(np.float32)),
    _DT.DT_DOUBLE: ("double_val", np.dtype(np.float64)),
    _DT.DT_INT8: ("int_val", np.dtype(np.int32)),
    _DT.DT_INT16: ("int_val", np.dtype(np.int32)),
    _DT.DT_INT32: ("int_val", np.dtype(np.int32)),
    _DT.DT_UINT8: ("int_val", np.dtype(np.int32)),
    _DT.DT_UINT16: ("int_val", np.dtype(np.int32)),
    _DT.DT_INT64: ("int64_val", np.dtype(np.int64)),
    _DT.DT_UINT32: ("uint32_val", np.dtype(np.uint32)),
    _DT.DT_UINT64: ("uint64_val", np.dtype(np.uint64)),
    _DT.DT_BOOL: ("bool_val", np.dtype(np.bool_)),
    _DT.DT_HALF: ("half_val", np.dtype(np.int32)),
    _DT.DT_BFLOAT16: ("half_val", np.dtype(np.int32)),
    _DT.DT_COMPLEX64: ("scomplex_val", np.dtype(np.float32)),
    _DT.DT_COMPLEX128: ("dcomplex_val", np.dtype(np.float64)),
}

#: Native-order numpy dtypes whose buffer is a ``tensor_content`` as is (on a
#: little-endian host; empty elsewhere), with their DataType.
RAW_CONTENT_DATATYPES: Mapping[np.dtype[Any], DataType] = (
    {
        dt: _DATATYPE_FOR[dt]
        for dt in map(
            np.dtype,
            (
                np.float16,
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
                np.complex64,
                np.complex128,
            ),
        )
    }
    if sys.byteorder == "little"
    else {}
)

#: The DataTypes TF Serving's REST JSON reads and writes (util/json_tensor.cc).
REST_DATATYPES: frozenset[DataType] = frozenset(
    {
        _DT.DT_FLOAT,
        _DT.DT_DOUBLE,
        _DT.DT_INT32,
        _DT.DT_INT16,
        _DT.DT_INT8,
        _DT.DT_UINT8,
        _DT.DT_STRING,
        _DT.DT_INT64,
        _DT.DT_BOOL,
        _DT.DT_UINT32,
        _DT.DT_UINT64,
    }
)

# numpy kinds the client writes as JSON numbers/booleans (bool, signed, unsigned, float).
_REST_NUMERIC_KINDS = "biuf"

#: Outputs whose name ends so are written as ``{"b64": ...}`` objects by TF Serving.
B64_OUTPUT_SUFFIX = "_bytes"


def rest_numeric(dtype: np.dtype[Any]) -> bool:
    """Whether the client writes numpy ``dtype`` into REST JSON as plain numbers.

    JSON numbers carry no dtype: the server converts them to the signature's
    DataType (one of :data:`REST_DATATYPES`), so e.g. uint16 values can feed an
    int32 input; float16 is refused, as TF Serving's JSON has no half-precision type.

    >>> rest_numeric(np.dtype(np.int32)), rest_numeric(np.dtype(np.float16))
    (True, False)
    """
    return dtype.kind in _REST_NUMERIC_KINDS and dtype != np.float16


def is_b64_output(name: str) -> bool:
    """TF Serving's base64 rule: a ``DT_STRING`` output named ``*_bytes`` is written as
    ``{"b64": ...}`` (any string value may be sent that way).

    >>> is_b64_output("image_bytes"), is_b64_output("label")
    (True, False)
    """
    return name.endswith(B64_OUTPUT_SUFFIX)


def base_datatype(datatype: int) -> DataType:
    """TF's ``BaseType``: a ``*_REF`` DataType as its base (``DT_FLOAT_REF`` -> ``DT_FLOAT``).

    >>> base_datatype(types_pb2.DT_FLOAT_REF) == types_pb2.DT_FLOAT
    True
    """
    return cast(DataType, datatype - _REF_OFFSET if datatype > _REF_OFFSET else datatype)


def supported_datatypes() -> list[DataType]:
    """The TF DataTypes this installation can convert, in enum order."""
    return sorted(_NUMPY_FOR)


def datatype_name(datatype: int) -> str:
    """TF's name for a DataType value (``"DT_FLOAT"``); ``"DataType(<n>)"`` if unknown.

    >>> datatype_name(1), datatype_name(999)
    ('DT_FLOAT', 'DataType(999)')
    """
    try:
        return str(_DT.Name(datatype))
    except ValueError:
        return f"DataType({datatype})"


def type_string(datatype: int) -> str:
    """TF's ``DataTypeString``: ``DT_HALF`` -> ``"half"``, ``DT_FLOAT_REF`` -> ``"float_ref"``.

    The short names TF's own messages use ("Expects arg[0] to be float ...").

    >>> type_string(types_pb2.DT_COMPLEX64), type_string(types_pb2.DT_BFLOAT16_REF)
    ('complex64', 'bfloat16_ref')
    >>> type_string(0), type_string(999)
    ('INVALID', 'unknown dtype enum (999)')
    """
    try:
        name = _DT.Name(datatype)
    except ValueError:
        return f"unknown dtype enum ({datatype})"
    if name == "DT_INVALID":
        return "INVALID"
    return name[3:].lower()


def datatype_from_name(name: str) -> DataType:
    """The DataType value for a name: ``"DT_FLOAT"`` (the ``DT_`` prefix and case are optional).

    >>> datatype_from_name("DT_INT64"), datatype_from_name("float")
    (9, 1)
    """
    key = name.strip().upper()
    if not key.startswith("DT_"):
        key = "DT_" + key
    try:
        return cast(DataType, _DT.Value(key))
    except ValueError:
        raise InvalidInputError(
            f"unknown TF DataType name {name!r} (expected a name such as 'DT_FLOAT')",
            expected="a TF DataType name such as 'DT_FLOAT'",
        ) from None


def _supported_list() -> str:
    return ", ".join(
        f"{datatype_name(d)} ({'bytes/str/object' if d == _DT.DT_STRING else _NUMPY_FOR[d]})"
        for d in supported_datatypes()
    )


def to_numpy_dtype(datatype: int, *, name: str = "tensor") -> np.dtype[Any]:
    """The numpy dtype for a TF DataType (``DT_STRING`` -> object dtype holding ``bytes``).

    ``*_REF`` dtypes map like their base dtype. Raises :class:`InvalidInputError`
    naming the tensor and the dtype when numpy (or this installation) has no twin.

    >>> to_numpy_dtype(19), to_numpy_dtype(7)
    (dtype('float16'), dtype('O'))
    """
    base = base_datatype(datatype)
    dt = _NUMPY_FOR.get(base)
    if dt is None:
        hint = (
            " (install ml_dtypes for bfloat16)"
            if base == _DT.DT_BFLOAT16 and BFLOAT16 is None
            else ""
        )
        raise InvalidInputError(
            f"tensor {name!r}: TF dtype {datatype_name(datatype)} has no numpy equivalent "
            f"here{hint}; supported: {_supported_list()}",
            input_name=name,
            expected=f"one of {_supported_list()}",
        )
    return dt


def is_string(dtype: np.dtype[Any]) -> bool:
    """Whether numpy dtype ``dtype`` is sent as ``DT_STRING`` (bytes_, str_ or object)."""
    return dtype.kind in "SUO"


def to_datatype(dtype: np.dtype[Any], *, name: str = "tensor") -> DataType:
    """The TF DataType for a numpy dtype, whatever its byte order.

    ``bytes_``, ``str_`` and object arrays are ``DT_STRING``; ``ml_dtypes.bfloat16``
    is ``DT_BFLOAT16``. Raises :class:`InvalidInputError` naming the input and
    listing what is supported (e.g. for datetime64, structured or float128 dtypes).

    >>> to_datatype(np.dtype(np.float16)), to_datatype(np.dtype(object))
    (19, 7)
    """
    dtype = np.dtype(dtype)
    if is_string(dtype):
        return _DT.DT_STRING
    key = dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype
    datatype = _DATATYPE_FOR.get(key)
    if datatype is None:
        raise InvalidInputError(
            f"input {name!r}: numpy dtype {dtype} has no TF DataType; "
            f"supported: {_supported_list()}",
            input_name=name,
            expected=f"one of {_supported_list()}",
        )
    return datatype
