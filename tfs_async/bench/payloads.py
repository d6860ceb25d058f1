"""The tensors the benchmark sends, and the prebuilt request bytes of its baselines.

Every contender sends the same tensors to the same model. The baselines' request
bytes are built here with the generated protobuf classes and orjson, on purpose
*not* with the SDK's codecs, so the floors do not inherit the SDK's encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tfs_async._proto import predict_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

__all__ = [
    "DEFAULT_PAYLOADS",
    "Payload",
    "TargetModel",
    "grpc_request_bytes",
    "json_request_bytes",
    "make_payload",
    "payload_names",
]


@dataclass(frozen=True)
class TargetModel:
    """Which model, signatures and tensor aliases the benchmark addresses."""

    name: str = "bench"
    float_signature: str | None = None
    float_input: str = "x"
    float_output: str = "y"
    #: ``None`` where the target serves no string-input signature (the bytes payload is skipped)
    bytes_signature: str | None = "bytes"
    bytes_input: str = "s"
    bytes_output: str = "s"


@dataclass(frozen=True)
class Payload:
    """One tensor, its name in reports, and the signature/alias it is sent to."""

    name: str
    array: npt.NDArray[Any]
    signature: str | None
    input_name: str
    output_name: str

    @property
    def nbytes(self) -> int:
        """The tensor's raw size in memory (strings: the sum of their lengths)."""
        if self.array.dtype == object:
            return int(sum(len(v) for v in self.array.ravel()))
        return int(self.array.nbytes)

    @property
    def inputs(self) -> dict[str, npt.NDArray[Any]]:
        """The ``inputs`` mapping a client call takes."""
        return {self.input_name: self.array}


#: name -> shape (float32), or ``"bytes"``: the issue's payload sweep
_FLOAT_SHAPES: dict[str, tuple[int, ...]] = {
    "f32[1x10]": (1, 10),
    "f32[32x128]": (32, 128),
    "f32[1x224x224x3]": (1, 224, 224, 3),
    "f32[64x224x224x3]": (64, 224, 224, 3),
}
BYTES_PAYLOAD = "bytes[32]x100"
DEFAULT_PAYLOADS: tuple[str, ...] = (*_FLOAT_SHAPES, BYTES_PAYLOAD)


def payload_names() -> tuple[str, ...]:
    """Every payload the benchmark knows, smallest first.

    >>> payload_names()[0]
    'f32[1x10]'
    """
    return DEFAULT_PAYLOADS


def make_payload(name: str, target: TargetModel, *, seed: int = 0) -> Payload | None:
    """Build payload ``name`` for ``target``; ``None`` if the target cannot take it.

    Floats are uniform in [0, 1) from a seeded generator; the bytes payload is 32
    ASCII strings of 100 characters (plain JSON strings, no base64 needed).

    >>> p = make_payload("f32[32x128]", TargetModel())
    >>> p.array.shape, p.array.dtype.name, p.nbytes
    ((32, 128), 'float32', 16384)
    >>> make_payload("bytes[32]x100", TargetModel(bytes_signature=None)) is None
    True
    """
    rng = np.random.default_rng(seed)
    if name in _FLOAT_SHAPES:
        array = rng.random(_FLOAT_SHAPES[name], dtype=np.float32)
        return Payload(name, array, target.float_signature, target.float_input, target.float_output)
    if name == BYTES_PAYLOAD:
        if target.bytes_signature is None:
            return None
        letters = rng.integers(ord("a"), ord("z") + 1, size=(32, 100), dtype=np.uint8)
        array = np.array([row.tobytes() for row in letters], dtype=object)
        return Payload(name, array, target.bytes_signature, target.bytes_input, target.bytes_output)
    raise ValueError(f"unknown payload {name!r}; known payloads: {', '.join(DEFAULT_PAYLOADS)}")


def _tensor_proto(array: npt.NDArray[Any]) -> tensor_pb2.TensorProto:
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
    )
    if array.dtype == object:
        return tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=list(array.ravel())
        )
    if array.dtype != np.float32:
        raise ValueError(f"the baselines send float32 or bytes tensors, not {array.dtype}")
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=shape,
        tensor_content=np.ascontiguousarray(array, dtype="<f4").tobytes(),
    )


def grpc_request_bytes(model: str, payload: Payload) -> bytes:
    """A serialized ``PredictRequest`` for ``payload`` (floats as ``tensor_content``)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if payload.signature:
        request.model_spec.signature_name = payload.signature
    request.inputs[payload.input_name].CopyFrom(_tensor_proto(payload.array))
    return request.SerializeToString()


def json_request_bytes(payload: Payload) -> bytes:
    """The REST predict body ``{"signature_name": ..., "inputs": {alias: tensor}}`` (columnar).

    >>> p = make_payload("f32[1x10]", TargetModel())
    >>> sent = orjson.loads(json_request_bytes(p))["inputs"]["x"]
    >>> bool((np.array(sent, dtype=np.float32) == p.array).all())
    True
    """
    body: dict[str, Any] = {}
    if payload.signature:
        body["signature_name"] = payload.signature
    value: Any = payload.array
    if payload.array.dtype == object:
        value = _nested_strings(payload.array)
    body["inputs"] = {payload.input_name: value}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _nested_strings(array: npt.NDArray[Any]) -> Sequence[Any]:
    flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel()]
    nested: Any = np.array(flat, dtype=object).reshape(array.shape).tolist()
    return list(nested)
