"""The gRPC Predict hot path: numpy <-> serialized Predict messages, bytes in place.

Building a ``TensorProto`` copies an array into the message and serializing copies
it again. Here the request is written in protobuf's wire format directly: small
headers plus the array's own buffer, joined once, so numpy -> request bytes costs
about one ``memcpy``. The response is scanned for each output's ``tensor_content``
or packed ``float_val`` / ``double_val`` payload, and an array is made from that
byte range with one copy; other outputs go through protobuf and
:func:`~tfs_async.codec.tensor.decode_tensor`.

>>> import numpy as np
>>> from tfs_async.types import ModelSpec
>>> data = encode_predict_request(ModelSpec("m"), {"x": np.ones((2, 2), np.float32)})
>>> req = predict_pb2.PredictRequest.FromString(data)
>>> req.model_spec.name, req.inputs["x"].dtype, len(req.inputs["x"].tensor_content)
('m', 1, 16)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from tfs_async._proto import model_pb2, predict_pb2, tensor_pb2, types_pb2
from tfs_async.codec import dtypes
from tfs_async.codec.messages import model_spec_from_proto, model_spec_to_proto
from tfs_async.codec.tensor import decode_tensor, encode_tensor, le_dtype, to_array, too_large
from tfs_async.errors import InvalidInputError, ResponseDecodeError
from tfs_async.types import ModelSpec, PredictResult

__all__ = [
    "decode_predict_response",
    "decode_predict_response_proto",
    "encode_predict_request",
    "encode_predict_request_proto",
]

_DT = types_pb2.DataType
_STRING = int(_DT.DT_STRING)

# Wire types.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

_BYTE = np.dtype(np.uint8)

# Packed typed fields the fast decoder reads in place: field number -> item dtype.
_PACKED_FIXED: dict[int, tuple[int, np.dtype[Any]]] = {
    5: (int(_DT.DT_FLOAT), np.dtype("<f4")),  # float_val
    6: (int(_DT.DT_DOUBLE), np.dtype("<f8")),  # double_val
}


# ---------------------------------------------------------------------------- writing


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]

# Field tags (field number << 3 | wire type); every one fits in a byte.
_TAG_MODEL_SPEC = b"\x0a"  # PredictRequest.model_spec = 1, length-delimited
_TAG_INPUT = b"\x12"  # PredictRequest.inputs = 2 (map entry)
_TAG_OUTPUT_FILTER = b"\x1a"  # PredictRequest.output_filter = 3
_TAG_ENTRY_KEY = b"\x0a"  # map entry key = 1
_TAG_ENTRY_VALUE = b"\x12"  # map entry value = 2
_TAG_DTYPE = b"\x08"  # TensorProto.dtype = 1, varint
_TAG_SHAPE = b"\x12"  # TensorProto.tensor_shape = 2
_TAG_CONTENT = b"\x22"  # TensorProto.tensor_content = 4
_TAG_DIM = b"\x12"  # TensorShapeProto.dim = 2
_TAG_DIM_SIZE = b"\x08"  # Dim.size = 1, varint


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64  # int64 on the wire: two's complement in 10 bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@lru_cache(maxsize=256)
def _model_spec_field(model: ModelSpec) -> bytes:
    # Callers send the same few specs again and again: serialize each once.
    spec = model_spec_to_proto(model).SerializeToString()
    return _TAG_MODEL_SPEC + _varint(len(spec)) + spec


@lru_cache(maxsize=1024)
def _tensor_head(datatype: dtypes.DataType, shape: tuple[int, ...]) -> bytes:
    """TensorProto's dtype and tensor_shape fields. A zero dim size is not written."""
    dims = []
    for d in shape:
        body = _TAG_DIM_SIZE + _varint(d) if d else b""
        dims.append(_TAG_DIM + _varint(len(body)) + body)
    shape_bytes = b"".join(dims)
    return _TAG_DTYPE + _varint(datatype) + _TAG_SHAPE + _varint(len(shape_bytes)) + shape_bytes


# Native-order numeric dtypes whose buffer goes on the wire as is (a little-endian host).
_WIRE_READY = dtypes.RAW_CONTENT_DATATYPES


def _entry_head(name: str, tensor_len: int) -> bytes:
    """One ``inputs`` map entry up to its TensorProto: {string key = 1; TensorProto value = 2}."""
    key = name.encode("utf-8")
    entry_head = _TAG_ENTRY_KEY + _varint(len(key)) + key + _TAG_ENTRY_VALUE + _varint(tensor_len)
    return _TAG_INPUT + _varint(len(entry_head) + tensor_len) + entry_head


@lru_cache(maxsize=1024)
def _input_prefix(name: str, datatype: dtypes.DataType, shape: tuple[int, ...], size: int) -> bytes:
    """Everything of one numeric ``inputs`` map entry that precedes the array's bytes."""
    head = _tensor_head(datatype, shape)
    if size:
        head += _TAG_CONTENT + _varint(size)
    return _entry_head(name, len(head) + size) + head


def _input_parts(name: str, value: Any) -> list[bytes | memoryview]:
    """One ``inputs`` map entry as parts: headers, then the array's own buffer."""
    if type(value) is np.ndarray and value.flags.c_contiguous:
        datatype = _WIRE_READY.get(value.dtype)
        if datatype is not None:
            # The common case: a native numeric array, sent from its own buffer.
            prefix = _input_prefix(name, datatype, value.shape, value.nbytes)
            return [prefix, value.data] if value.nbytes else [prefix]
    arr = to_array(value, name=name)
    datatype = dtypes.to_datatype(arr.dtype, name=name)
    if datatype == _STRING:
        body = encode_tensor(arr, name=name).SerializeToString()
        return [_entry_head(name, len(body)), body]
    # A view when already little-endian and C-contiguous; else the one copy needed.
    arr = arr.astype(le_dtype(arr.dtype), order="C", copy=False)
    prefix = _input_prefix(name, datatype, arr.shape, arr.nbytes)
    if not arr.nbytes:
        return [prefix]
    # C-contiguous, so join reads the buffer as bytes; extension dtypes (bfloat16)
    # export no buffer format of their own, so go through a uint8 view.
    payload = arr.data if arr.dtype.isbuiltin == 1 else arr.reshape(-1).view(np.uint8).data
    return [prefix, payload]


def encode_predict_request(
    model: ModelSpec, inputs: Mapping[str, Any], output_filter: Sequence[str] = ()
) -> bytes:
    """A serialized ``PredictRequest``, numeric inputs as ``tensor_content``.

    Parses (with protobuf, ours or Google's) to the same message as
    :func:`encode_predict_request_proto`. Raises :class:`InvalidInputError` naming
    the input for anything :func:`~tfs_async.codec.tensor.encode_tensor` rejects.
    """
    if isinstance(output_filter, str):
        raise InvalidInputError(
            f"output_filter must be a sequence of output names, got the string {output_filter!r}",
            input_name="output_filter",
            expected="a sequence of output names",
        )
    parts: list[bytes | memoryview] = [_model_spec_field(model)]
    for name, value in inputs.items():
        if not isinstance(name, str):
            raise InvalidInputError(
                f"input names must be str, got {name!r}", expected="str input names"
            )
        parts.extend(_input_parts(name, value))
    for out in output_filter:
        encoded = out.encode("utf-8")
        parts.append(_TAG_OUTPUT_FILTER + _varint(len(encoded)) + encoded)
    return b"".join(parts)


def encode_predict_request_proto(
    model: ModelSpec,
    inputs: Mapping[str, Any],
    output_filter: Sequence[str] = (),
    *,
    as_content: bool = True,
) -> predict_pb2.PredictRequest:
    """The same request built with protobuf (the reference for the fast path)."""
    request = predict_pb2.PredictRequest(
        model_spec=model_spec_to_proto(model), output_filter=list(output_filter)
    )
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(encode_tensor(value, name=name, as_content=as_content))
    return request


# ---------------------------------------------------------------------------- reading


class _Malformed(Exception):
    """The bytes are not a well-formed protobuf message."""


_Buffer: TypeAlias = bytes | bytearray | memoryview


def _varint_at(buf: _Buffer, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``buf[pos]`` and the position after it."""
    if pos < end and buf[pos] < 0x80:  # the common one-byte case, kept cheap
        return buf[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _field_at(buf: _Buffer, pos: int, end: int) -> tuple[int, int, int, int]:
    """(field, wire type, value, next position) of the field at ``pos``.

    ``value`` is the integer of a varint field, else where the field's payload
    starts (its end is the next position).
    """
    if pos < end and buf[pos] < 0x80:  # one-byte key: every field these messages use
        key = buf[pos]
        pos += 1
    else:
        key, pos = _varint_at(buf, pos, end)
    wire_type = key & 7
    if wire_type == _VARINT:
        value, pos = _varint_at(buf, pos, end)
        return key >> 3, wire_type, value, pos
    if wire_type == _LEN:
        size, start = _varint_at(buf, pos, end)
    elif wire_type == _I64:
        size, start = 8, pos
    elif wire_type == _I32:
        size, start = 4, pos
    else:  # groups: not used by these messages
        raise _Malformed
    stop = start + size
    if stop > end:
        raise _Malformed
    return key >> 3, wire_type, start, stop


def _shape_at(buf: _Buffer, pos: int, end: int) -> tuple[int, ...] | None:
    """A TensorShapeProto's dims, or None (unknown rank, negative dims) for the general path."""
    dims: list[int] = []
    while pos < end:
        field, wire_type, value, pos = _field_at(buf, pos, end)
        if field == 2 and wire_type == _LEN:  # Dim
            size, dim_pos = 0, value
            while dim_pos < pos:
                f, w, v, dim_pos = _field_at(buf, dim_pos, pos)
                if f == 1 and w == _VARINT:
                    size = v
            if size >= 1 << 63:  # negative int64
                return None
            dims.append(size)
        elif field == 3 and wire_type == _VARINT and value:  # unknown_rank
            return None
    return tuple(dims)


@lru_cache(maxsize=1024)
def _shape_of(raw: bytes) -> tuple[int, ...] | None:
    # A model answers with the same few shapes: parse each once.
    return _shape_at(raw, 0, len(raw))


class _Plan(NamedTuple):
    """Where one output's payload lies in a response and how to read it."""

    name: str
    start: int
    stop: int
    item: np.dtype[Any]  # the payload's element type on the wire
    dtype: np.dtype[Any]  # the array's dtype
    shape: tuple[int, ...]


def _fast_plan(buf: _Buffer, pos: int, end: int, name: str) -> _Plan | None:
    """How to read the tensor in buf[pos:end] in place, or None where protobuf must do it."""
    datatype = 0
    shape: tuple[int, ...] | None = ()
    item: np.dtype[Any] | None = None
    start = stop = 0
    while pos < end:
        field, wire_type, value, pos = _field_at(buf, pos, end)
        if field == 1 and wire_type == _VARINT:
            datatype = value
        elif field == 2 and wire_type == _LEN:
            shape = _shape_of(bytes(buf[value:pos]))
        elif field == 3 and wire_type == _VARINT:
            continue  # version_number
        elif field == 4 and wire_type == _LEN and item is None:
            item, start, stop = _BYTE, value, pos
        elif field in _PACKED_FIXED and wire_type == _LEN and item is None:
            packed_type, item = _PACKED_FIXED[field]
            start, stop = value, pos
            if datatype and datatype != packed_type:
                return None
        else:
            return None  # any other field, or a repeat: the general path handles it
    if shape is None or item is None or datatype in (0, _STRING):
        return None
    try:
        dtype = dtypes.to_numpy_dtype(datatype, name=name)
    except InvalidInputError:
        return None
    wire = le_dtype(dtype)
    if item is _BYTE:  # tensor_content
        item = wire
    elif item.kind != wire.kind or item.itemsize != wire.itemsize:
        return None
    if stop - start != math.prod(shape) * item.itemsize or too_large(shape, item.itemsize):
        return None  # a size mismatch, the fill rule or a huge shape: the general path says which
    return _Plan(name, start, stop, item, dtype, shape)


def _read_planned(buf: _Buffer, plan: _Plan, copy: bool) -> npt.NDArray[Any]:
    arr: npt.NDArray[Any]
    if copy:
        # The one copy, from the received bytes into an array the caller owns. Copied
        # as bytes: the payload sits at any offset, and numpy copies unaligned typed
        # data element by element but plain bytes with memcpy.
        raw = np.frombuffer(buf, dtype=np.uint8, count=plan.stop - plan.start, offset=plan.start)
        arr = raw.copy().view(plan.item).reshape(plan.shape)
    else:
        count = (plan.stop - plan.start) // plan.item.itemsize
        arr = np.frombuffer(buf, dtype=plan.item, count=count, offset=plan.start)
        arr = arr.reshape(plan.shape)
    return arr if plan.item == plan.dtype else arr.astype(plan.dtype)


class _Layout(NamedTuple):
    """A response's structure: every byte outside the payloads, and the payloads' plans.

    Two responses of the same length whose bytes outside the payloads are equal
    parse the same way (only those bytes steer the parse), so the next response
    from the same model and shape is read without walking its fields again.
    """

    size: int
    gaps: tuple[tuple[int, bytes], ...]  # (offset, bytes) of each stretch between payloads
    plans: tuple[_Plan, ...]
    model: ModelSpec | None

    def matches(self, buf: _Buffer) -> bool:
        return len(buf) == self.size and all(
            buf[offset : offset + len(gap)] == gap for offset, gap in self.gaps
        )


def _layout_of(buf: _Buffer, plans: list[_Plan], model: ModelSpec | None) -> _Layout:
    gaps = []
    pos = 0
    for plan in sorted(plans, key=lambda p: p.start):
        gaps.append((pos, bytes(buf[pos : plan.start])))
        pos = plan.stop
    gaps.append((pos, bytes(buf[pos:])))
    return _Layout(len(buf), tuple(gaps), tuple(plans), model)


# The last response layout seen (one model and shape answering again and again is
# the common case); replaced, never mutated, so concurrent readers see a whole one.
_last_layout: _Layout | None = None


def decode_predict_response(
    data: bytes | bytearray | memoryview, *, copy: bool = True
) -> PredictResult:
    """Serialized ``PredictResponse`` -> output name -> array, and ``.model``.

    ``tensor_content`` and packed ``float_val``/``double_val`` payloads become arrays
    with one copy straight from ``data`` (writable, aligned, owning their memory);
    with ``copy=False`` they are views into ``data`` instead (no copy; read-only
    for ``bytes``, possibly unaligned, and keeping ``data`` alive). Other outputs
    are decoded by protobuf and :func:`~tfs_async.codec.tensor.decode_tensor`.
    Malformed data raises :class:`ResponseDecodeError`.
    """
    global _last_layout
    buf: _Buffer = data if isinstance(data, (bytes, bytearray)) else memoryview(data).cast("B")
    layout = _last_layout
    if layout is not None and layout.matches(buf):
        return PredictResult(
            {plan.name: _read_planned(buf, plan, copy) for plan in layout.plans},
            model=layout.model,
        )
    outputs: dict[str, npt.NDArray[Any]] = {}
    plans: list[_Plan] | None = []
    model: ModelSpec | None = None
    pos, end = 0, len(buf)
    try:
        while pos < end:
            field, wire_type, value, pos = _field_at(buf, pos, end)
            if field == 1 and wire_type == _LEN:
                name, plan, array = _decode_output(buf, value, pos, copy)
                outputs[name] = array
                if plan is None or plans is None or name in {p.name for p in plans}:
                    plans = None  # not all in place (or a repeated name): no layout
                else:
                    plans.append(plan)
            elif field == 2 and wire_type == _LEN:
                model = _model_spec(bytes(buf[value:pos]))
    except _Malformed:
        raise ResponseDecodeError(
            "PredictResponse is truncated or not a protobuf message"
        ) from None
    if plans:
        _last_layout = _layout_of(buf, plans, model)
    return PredictResult(outputs, model=model)


@lru_cache(maxsize=256)
def _model_spec(raw: bytes) -> ModelSpec | None:
    # The same few specs come back in every response: parse each once.
    try:
        return model_spec_from_proto(model_pb2.ModelSpec.FromString(raw))
    except Exception as exc:  # protobuf's DecodeError or ModelSpec's ValueError
        raise ResponseDecodeError(f"PredictResponse model_spec does not parse: {exc}") from None


def _decode_output(
    buf: _Buffer, pos: int, end: int, copy: bool
) -> tuple[str, _Plan | None, npt.NDArray[Any]]:
    name = ""
    tensor: tuple[int, int] | None = None
    while pos < end:
        field, wire_type, value, pos = _field_at(buf, pos, end)
        if field == 1 and wire_type == _LEN:
            try:
                name = bytes(buf[value:pos]).decode("utf-8")
            except UnicodeDecodeError:
                raise ResponseDecodeError("PredictResponse output name is not UTF-8") from None
        elif field == 2 and wire_type == _LEN:
            tensor = (value, pos)
    if tensor is None:
        return name, None, decode_tensor(tensor_pb2.TensorProto(), name=name)
    start, stop = tensor
    plan = _fast_plan(buf, start, stop, name)
    if plan is not None:
        return name, plan, _read_planned(buf, plan, copy)
    try:
        proto = tensor_pb2.TensorProto.FromString(bytes(buf[start:stop]))
    except Exception as exc:  # protobuf's DecodeError
        raise ResponseDecodeError(
            f"output {name!r} does not parse as a TensorProto: {exc}"
        ) from None
    return name, None, decode_tensor(proto, name=name)


def decode_predict_response_proto(response: predict_pb2.PredictResponse) -> PredictResult:
    """A parsed ``PredictResponse`` -> :class:`PredictResult` (the reference path)."""
    return PredictResult(
        {name: decode_tensor(t, name=name) for name, t in response.outputs.items()},
        model=model_spec_from_proto(response.model_spec),
    )
