"""numpy <-> ``TensorProto``, in both of TF's wire forms.

TF writes a tensor either as packed little-endian bytes in ``tensor_content``
(``Tensor::AsProtoTensorContent``) or element by element in the typed ``*_val``
fields (``Tensor::AsProtoField``, what TF Serving answers with by default).
:func:`encode_tensor` writes either; :func:`decode_tensor` reads both.

>>> import numpy as np
>>> proto = encode_tensor(np.arange(6, dtype=np.float32).reshape(2, 3), name="x")
>>> len(proto.tensor_content), [d.size for d in proto.tensor_shape.dim]
(24, [2, 3])
>>> decode_tensor(proto)
array([[0., 1., 2.],
       [3., 4., 5.]], dtype=float32)
>>> decode_tensor(encode_tensor([b"a", "b"], as_content=False))
array([b'a', b'b'], dtype=object)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async._proto import tensor_pb2, types_pb2
from tfs_async.codec import dtypes
from tfs_async.errors import InvalidInputError, ResponseDecodeError, TFServingError

__all__ = [
    "decode_string_list",
    "decode_tensor",
    "encode_string_list",
    "encode_tensor",
    "le_dtype",
    "to_array",
    "to_string_array",
]

TensorProto = tensor_pb2.TensorProto
_DT = types_pb2.DataType

#: The most bytes a decoded tensor may hold: TF Serving's message limit (2 GiB - 1).
#: A shape claiming more (possible with the fill rule: one value, any shape) is
#: refused before anything is allocated.
MAX_DECODED_BYTES = 2**31 - 1

# Which typed field AsProtoField fills for each dtype, and the numpy dtype of its items.
_FIELD_FOR = dtypes.VAL_FIELDS
_COMPLEX = (_DT.DT_COMPLEX64, _DT.DT_COMPLEX128)
_HALF_BITS = (_DT.DT_HALF, _DT.DT_BFLOAT16)

ErrorFactory = Callable[[str], TFServingError]


def le_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """``dtype`` in little-endian byte order (TF's wire order); one-byte dtypes unchanged."""
    return dtype if dtype.byteorder in "<|" else dtype.newbyteorder("<")


def _invalid(name: str, problem: str, expected: str) -> InvalidInputError:
    return InvalidInputError(f"input {name!r}: {problem}", input_name=name, expected=expected)


def to_string_array(items: npt.NDArray[Any], *, name: str) -> npt.NDArray[np.object_]:
    """An array of strings as an object array of ``bytes`` (``str`` UTF-8 encoded).

    Raises :class:`InvalidInputError` naming the input and the first bad element
    (``None``, a number, a nested list...).
    """
    if items.dtype.kind == "S":
        # numpy strips trailing NULs from bytes_ items; TF would too (fixed width).
        return items.astype(object)
    flat = items.ravel().tolist() if items.dtype.kind == "U" else list(items.ravel())
    out: list[bytes] = []
    for i, item in enumerate(flat):
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            out.append(item.encode("utf-8"))
        else:
            where = np.unravel_index(i, items.shape) if items.ndim else ()
            raise _invalid(
                name,
                f"holds {type(item).__name__} {item!r} at index "
                f"{tuple(int(j) for j in where)}; a string or object array may hold only "
                "bytes or str",
                "an array of bytes or str only",
            )
    result = np.empty(len(out), dtype=object)
    result[:] = out
    return result.reshape(items.shape)


def to_array(value: Any, *, name: str = "tensor") -> npt.NDArray[Any]:
    """``value`` as a numpy array TF can carry, or :class:`InvalidInputError` saying why not.

    Ragged nesting, ``None`` items and lists mixing strings with numbers are rejected
    instead of being coerced by numpy.
    """
    if isinstance(value, np.ndarray):
        arr: npt.NDArray[Any] = value
    else:
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # numpy 2 refuses ragged nesting
            raise _invalid(
                name, f"cannot make a rectangular array from it ({exc})", "a rectangular array"
            ) from None
        if arr.dtype.kind in "US":
            # numpy would silently turn [1, "a"] into strings: check the items.
            arr = to_string_array(np.asarray(value, dtype=object), name=name)
    if arr.dtype.kind == "O":
        arr = to_string_array(arr, name=name)
    dtypes.to_datatype(arr.dtype, name=name)
    return arr


def encode_string_list(items: Sequence[bytes]) -> bytes:
    """TF's ``EncodeStringList``: every length as a varint32, then all the bytes.

    >>> encode_string_list([b"ab", b""])
    b'\\x02\\x00ab'
    """
    head = bytearray()
    for item in items:
        n = len(item)
        while n >= 0x80:
            head.append((n & 0x7F) | 0x80)
            n >>= 7
        head.append(n)
    return bytes(head) + b"".join(items)


def decode_string_list(data: bytes, count: int) -> list[bytes]:
    """Inverse of :func:`encode_string_list` for ``count`` strings; ValueError if malformed."""
    lengths: list[int] = []
    pos = 0
    size = len(data)
    for _ in range(count):
        n = shift = 0
        while True:
            if pos >= size or shift > 28:
                raise ValueError("truncated or invalid string length")
            byte = data[pos]
            pos += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        lengths.append(n)
    if pos + sum(lengths) != size:
        raise ValueError(
            f"{count} string lengths add up to {sum(lengths)} bytes but {size - pos} follow"
        )
    out: list[bytes] = []
    for n in lengths:
        out.append(data[pos : pos + n])
        pos += n
    return out


def _set_shape(proto: tensor_pb2.TensorProto, shape: tuple[int, ...]) -> None:
    # Always present, so a scalar reads as `tensor_shape {}` as TF writes it.
    proto.tensor_shape.SetInParent()
    for d in shape:
        proto.tensor_shape.dim.add(size=d)


def encode_tensor(value: Any, *, name: str = "tensor", as_content: bool = True) -> TensorProto:
    """Encode an array (or anything ``np.asarray`` takes) as a ``TensorProto``.

    Numeric arrays go into ``tensor_content`` (little-endian, C order, no per-element
    Python work) when ``as_content``, else into the typed ``*_val`` fields as TF's
    ``AsProtoField`` writes them: half/bfloat16 as bit patterns in ``half_val``,
    complex as (real, imag) pairs, int8/16 and uint8/16 in ``int_val``. Strings
    (``bytes_``, ``str_`` as UTF-8, object arrays of bytes/str) always go into
    ``string_val``. Python floats and ints follow numpy (float64, int64).

    Raises :class:`InvalidInputError` naming the input for ragged lists, ``None`` or
    mixed items, and dtypes TF has no DataType for.

    >>> p = encode_tensor(np.float16(1.0), as_content=False)
    >>> list(p.half_val), p.HasField("tensor_shape"), len(p.tensor_shape.dim)
    ([15360], True, 0)
    """
    arr = to_array(value, name=name)
    datatype = dtypes.to_datatype(arr.dtype, name=name)
    proto = TensorProto(dtype=datatype)
    _set_shape(proto, arr.shape)
    if datatype == _DT.DT_STRING:
        proto.string_val.extend(to_string_array(arr, name=name).ravel().tolist())
    elif as_content:
        proto.tensor_content = np.ascontiguousarray(arr, dtype=le_dtype(arr.dtype)).tobytes()
    else:
        _fill_typed_field(proto, datatype, arr)
    return proto


def _fill_typed_field(proto: TensorProto, datatype: dtypes.DataType, arr: npt.NDArray[Any]) -> None:
    field, item_dtype = _FIELD_FOR[datatype]
    # Bit-pattern views below need the host's byte order.
    flat = arr.ravel().astype(arr.dtype.newbyteorder("="), copy=False)
    if datatype in _HALF_BITS:
        values = flat.view(np.uint16).astype(np.int32)
    elif datatype in _COMPLEX:
        values = flat.view(item_dtype)  # (real, imag) pairs, interleaved
    else:
        values = flat.astype(item_dtype, copy=False)
    getattr(proto, field).extend(values.tolist())


def _shape_of(proto: TensorProto, fail: ErrorFactory) -> tuple[int, ...]:
    shape_proto = proto.tensor_shape
    if shape_proto.unknown_rank:
        raise fail("has unknown rank; a tensor with values needs a full shape")
    shape = tuple(int(d.size) for d in shape_proto.dim)
    if any(d < 0 for d in shape):
        raise fail(f"has a negative dimension in shape {list(shape)}")
    return shape


def too_large(shape: Sequence[int], item_size: int) -> bool:
    """Whether ``shape`` claims more than :data:`MAX_DECODED_BYTES` (zero dimensions aside).

    Zero dimensions are left out: numpy refuses an empty shape such as
    ``(2**63 - 1, 0)`` as well. Strings count ``item_size`` 8 (a pointer each).

    >>> too_large((2**20, 2**20), 4), too_large((2**63 - 1, 0), 1), too_large((0, 3), 4)
    (True, True, False)
    """
    return math.prod(d for d in shape if d) * item_size > MAX_DECODED_BYTES


def decode_tensor(
    proto: TensorProto,
    *,
    name: str = "tensor",
    copy: bool = True,
    error: Callable[..., TFServingError] = ResponseDecodeError,
) -> npt.NDArray[Any]:
    """Decode a ``TensorProto`` written in either form into a numpy array.

    Reads ``tensor_content`` (for ``DT_STRING``, TF's ``EncodeStringList`` form) or
    the typed ``*_val`` fields, with TF's fill rule: no values give zeros, fewer
    values than the shape holds are padded with the last one (so a single value
    fills the whole shape). ``DT_STRING`` decodes to an object array of ``bytes``.

    ``copy=False`` returns a read-only view over the message's ``tensor_content``
    instead of a writable copy. A malformed tensor (sizes that do not match the
    shape, an unsupported dtype) raises ``error`` (default
    :class:`~tfs_async.errors.ResponseDecodeError`; a server decoding a request
    passes :class:`~tfs_async.errors.InvalidInputError`) naming the tensor.

    >>> p = TensorProto(dtype=1, float_val=[7.5])
    >>> p.tensor_shape.dim.add(size=3)
    size: 3
    <BLANKLINE>
    >>> decode_tensor(p)
    array([7.5, 7.5, 7.5], dtype=float32)
    """

    def fail(problem: str) -> TFServingError:
        return error(f"tensor {name!r} ({dtypes.datatype_name(proto.dtype)}): {problem}")

    try:
        dtype = dtypes.to_numpy_dtype(proto.dtype, name=name)
    except InvalidInputError as exc:
        raise error(exc.message) from None
    shape = _shape_of(proto, fail)
    count = math.prod(shape)  # exact: numpy's int64 product wraps around
    datatype = dtypes.base_datatype(proto.dtype)
    item_size = 8 if datatype == _DT.DT_STRING else dtype.itemsize
    if too_large(shape, item_size):
        raise fail(
            f"shape {list(shape)} claims {math.prod(d for d in shape if d)} elements of "
            f"{item_size} bytes, more than the {MAX_DECODED_BYTES} bytes a response can carry"
        )
    content = proto.tensor_content
    if datatype == _DT.DT_STRING:
        if content:
            try:
                items = decode_string_list(content, count)
            except ValueError as exc:
                raise fail(f"bad string tensor_content: {exc}") from None
        else:
            items = _pad(list(proto.string_val), count, b"", fail)
        out = np.empty(count, dtype=object)
        out[:] = items
        return out.reshape(shape)
    if content:
        wire = le_dtype(dtype)
        if len(content) != count * wire.itemsize:
            raise fail(
                f"tensor_content has {len(content)} bytes but shape {list(shape)} needs "
                f"{count * wire.itemsize}"
            )
        arr = np.frombuffer(content, dtype=wire).reshape(shape)
        if wire != dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr
    return _decode_typed_field(proto, datatype, dtype, shape, count, fail)


def _pad(values: list[Any], count: int, zero: Any, fail: ErrorFactory) -> list[Any]:
    n = len(values)
    if n == count:
        return values
    if n > count:
        raise fail(f"has {n} values but its shape holds {count}")
    if n == 0:
        return [zero] * count
    return values + [values[-1]] * (count - n)


def _decode_typed_field(
    proto: TensorProto,
    datatype: dtypes.DataType,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    count: int,
    fail: ErrorFactory,
) -> npt.NDArray[Any]:
    field, item_dtype = _FIELD_FOR[datatype]
    raw = np.array(getattr(proto, field), dtype=item_dtype)
    if datatype in _COMPLEX:
        if raw.size % 2:
            raise fail(f"{field} has an odd number of values ({raw.size}); it holds pairs")
        values = raw.view(dtype)
    elif datatype in _HALF_BITS:
        values = raw.astype(np.uint16).view(dtype)
    else:
        values = raw.astype(dtype, copy=False)
    n = values.size
    if n > count:
        raise fail(f"{field} has {n} values but shape {list(shape)} holds {count}")
    if n < count:
        fill = values[-1] if n else dtype.type(0)
        values = np.concatenate([values, np.full(count - n, fill, dtype=dtype)])
    return values.reshape(shape)
