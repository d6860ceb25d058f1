"""TF ``DataType`` <-> numpy dtype.

Every dtype TF Serving carries over its APIs has a numpy twin here. ``DT_STRING``
maps to numpy's object dtype (items are ``bytes``); ``DT_BFLOAT16`` needs the
optional ``ml_dtypes`` package.

>>> import numpy as np
>>> to_numpy_dtype(datatype_from_name("DT_FLOAT"))
dtype('float32')
>>> datatype_name(to_datatype(np.dtype(">i8")))
'DT_INT64'
>>> datatype_name(to_datatype(np.dtype("U5")))
'DT_STRING'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfs_async._proto import types_pb2
from tfs_async.errors import InvalidInputError

__all__ = [
    "BFLOAT16",
    "datatype_from_name",
    "datatype_name",
    "is_string",
    "supported_datatypes",
    "to_datatype",
    "to_numpy_dtype",
]

try:  # bfloat16 is optional: numpy has no such type of its own.
    import ml_dtypes

    BFLOAT16: np.dtype[Any] | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - exercised only without ml_dtypes
    BFLOAT16 = None

_DT = types_pb2.DataType
_OBJECT = np.dtype(object)

# TF DataType -> numpy dtype (native byte order); DT_STRING is the object dtype.
_NUMPY_FOR: dict[int, np.dtype[Any]] = {
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
_DATATYPE_FOR: dict[np.dtype[Any], int] = {
    dt: datatype for datatype, dt in _NUMPY_FOR.items() if datatype != _DT.DT_STRING
}

# TF's *_REF dtypes are the base dtype + 100 (a reference to a variable).
_REF_OFFSET = 100


def supported_datatypes() -> list[int]:
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


def datatype_from_name(name: str) -> int:
    """The DataType value for a name: ``"DT_FLOAT"`` (the ``DT_`` prefix and case are optional).

    >>> datatype_from_name("DT_INT64"), datatype_from_name("float")
    (9, 1)
    """
    key = name.strip().upper()
    if not key.startswith("DT_"):
        key = "DT_" + key
    try:
        return int(_DT.Value(key))
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
    base = datatype - _REF_OFFSET if datatype > _REF_OFFSET else datatype
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


def to_datatype(dtype: np.dtype[Any], *, name: str = "tensor") -> int:
    """The TF DataType for a numpy dtype, whatever its byte order.

    ``bytes_``, ``str_`` and object arrays are ``DT_STRING``; ``ml_dtypes.bfloat16``
    is ``DT_BFLOAT16``. Raises :class:`InvalidInputError` naming the input and
    listing what is supported (e.g. for datetime64, structured or float128 dtypes).

    >>> to_datatype(np.dtype(np.float16)), to_datatype(np.dtype(object))
    (19, 7)
    """
    dtype = np.dtype(dtype)
    if is_string(dtype):
        return int(_DT.DT_STRING)
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
