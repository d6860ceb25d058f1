"""Protos -> REST response bodies, as TF Serving's util/json_tensor.cc writes them.

Predict outputs (:func:`predict_outputs_to_json`, element by element: the exact
writer), classify and regress results, errors, model status and metadata. The
text is RapidJSON's, from :mod:`~tfs_async.testing.rest_json.writer`; failures
raise :class:`~tfs_async.testing.status.ServingStatus` with TF Serving's message.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from google.protobuf import json_format

from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    regression_pb2,
    tensor_pb2,
    types_pb2,
)
from tfs_async.codec import dtypes
from tfs_async.codec.tensor import decode_tensor
from tfs_async.errors import StatusCode, TFServingError
from tfs_async.testing.rest_json.writer import format_float, format_floats, quote
from tfs_async.testing.status import ServingStatus, invalid_argument

__all__ = [
    "PredictOutputWriter",
    "classification_result_to_json",
    "error_to_json",
    "metadata_to_json",
    "predict_outputs_to_json",
    "regression_result_to_json",
    "status_to_json",
]

_DT = types_pb2.DataType
_SIGNATURE_DEF_MAP_TYPE = "tensorflow.serving.SignatureDefMap"


def tensor_dims(tensor: tensor_pb2.TensorProto) -> list[int]:
    """``tensor``'s dimensions (unknown sizes as 0)."""
    return [max(int(d.size), 0) for d in tensor.tensor_shape.dim]


def tensor_values(name: str, tensor: tensor_pb2.TensorProto) -> np.ndarray[Any, Any]:
    """``tensor``'s values, flat, for writing; empty when its shape holds none.

    Values are decoded with the codec, so typed ``*_val`` fields (TF Serving's
    default) and ``tensor_content`` both work.
    """
    if math.prod(tensor_dims(tensor)) == 0:
        return np.empty(0)
    if tensor.dtype not in dtypes.REST_DATATYPES:
        raise invalid_argument(
            f"Failed to write JSON value for tensor type: {dtypes.type_string(tensor.dtype)}"
        )
    try:
        return decode_tensor(tensor, name=name, copy=False).reshape(-1)
    except TFServingError as exc:
        raise invalid_argument(exc.message) from None


def string_texts(name: str, values: np.ndarray[Any, Any]) -> list[str]:
    """Each string value as its JSON text."""
    # TF Serving writes outputs whose name ends in "_bytes" as base64 objects.
    if dtypes.is_b64_output(name):
        return [
            '{"b64": "' + base64.b64encode(bytes(v)).decode("ascii") + '"}' for v in values.tolist()
        ]
    return [quote(bytes(v).decode("utf-8", "surrogateescape")) for v in values.tolist()]


def _tokens(name: str, tensor: tensor_pb2.TensorProto) -> list[str]:
    """Each value of ``tensor`` as JSON text, one at a time (AddSingleValueAndAdvance())."""
    values = tensor_values(name, tensor)
    if not values.size:
        return []
    dtype = tensor.dtype
    if dtype in (_DT.DT_FLOAT, _DT.DT_DOUBLE):
        double = dtype == _DT.DT_DOUBLE
        return [format_float(v, double=double) for v in values.tolist()]
    if dtype == _DT.DT_BOOL:
        return ["true" if v else "false" for v in values.tolist()]
    if dtype == _DT.DT_STRING:
        return string_texts(name, values)
    return [str(v) for v in values.tolist()]


def _nest(tokens: list[str], dims: Sequence[int], depth: int | None = None) -> list[str]:
    """Group flat ``tokens`` into nested JSON arrays, one text per outer index.

    ``depth=None`` writes single-line arrays (``[1, 2]``); otherwise PrettyWriter's
    default layout, one element per line, for an outermost array at nesting ``depth``.
    """
    groups = tokens
    for level in range(len(dims) - 1, -1, -1):
        size = dims[level]
        outer = math.prod(dims[:level])
        if size == 0:
            groups = ["[]"] * outer
            continue
        if depth is None:
            opening, separator, closing = "[", ", ", "]"
        else:
            inner = "\n" + "    " * (depth + level + 1)
            opening, separator = "[" + inner, "," + inner
            closing = "\n" + "    " * (depth + level) + "]"
        groups = [
            opening + separator.join(groups[i : i + size]) + closing
            for i in range(0, len(groups), size)
        ]
    return groups


def _encode(parts: Sequence[str]) -> bytes:
    # Request bytes come back through surrogateescape; any other stray surrogate is
    # not encodable and is replaced (everywhere) rather than failing the response.
    try:
        return b"".join(part.encode("utf-8", "surrogateescape") for part in parts)
    except UnicodeEncodeError:
        return b"".join(part.encode("utf-8", "replace") for part in parts)


def document(key: str, *value: str) -> bytes:
    """``{"key": value}`` as TF Serving writes it; ``value`` may come in parts."""
    return _encode(["{\n    " + quote(key) + ": ", *value, "\n}"])


class PredictOutputWriter:
    """MakeJsonFromTensors(), writing values one at a time as TF Serving does: the exact writer.

    :class:`~tfs_async.testing.rest_json.dense.DensePredictOutputWriter` overrides
    the three per-output methods to lay the same text out with numpy.
    """

    def write(self, outputs: Mapping[str, tensor_pb2.TensorProto], fmt: str) -> bytes:
        """Predict outputs -> ``{"predictions": ...}`` / ``{"outputs": ...}``; see
        :func:`predict_outputs_to_json`."""
        if not outputs:
            raise invalid_argument("Cannot convert empty tensor map to JSON")
        if fmt == "row":
            return self._row_json(outputs)
        if fmt == "columnar":
            return self._columnar_json(outputs)
        raise invalid_argument("Invalid request format")

    def row_items(self, name: str, tensor: tensor_pb2.TensorProto, batch: int) -> list[str]:
        """One single-line JSON text per batch item of ``tensor``."""
        dims = tensor_dims(tensor)
        tokens = _tokens(name, tensor) if batch else []
        if len(dims) == 1:
            return tokens
        return _nest(tokens, dims[1:]) if tokens else _nest([], dims[1:]) * batch

    def predictions_array(self, name: str, tensor: tensor_pb2.TensorProto, batch: int) -> list[str]:
        """The ``predictions`` array of a single output, in parts."""
        # Items are written single-line; the closing bracket goes on its own line.
        rows = self.row_items(name, tensor, batch)
        return ["[" + ", ".join(rows) + "\n    ]" if rows else "[]"]

    def columnar_text(self, name: str, tensor: tensor_pb2.TensorProto, depth: int) -> list[str]:
        """``tensor`` as a pretty-printed array at nesting ``depth``, in parts."""
        dims = tensor_dims(tensor)
        tokens = _tokens(name, tensor)
        return [_nest(tokens, dims, depth)[0] if dims else tokens[0]]

    def _row_json(self, outputs: Mapping[str, tensor_pb2.TensorProto]) -> bytes:
        batch = -1
        for name, tensor in outputs.items():
            dims = tensor_dims(tensor)
            if not dims:
                raise invalid_argument(f"Tensor name: {name} has no shape information ")
            if batch >= 0 and dims[0] != batch:
                raise invalid_argument(
                    f"Tensor name: {name} has inconsistent batch size: {dims[0]} expecting: {batch}"
                )
            batch = dims[0]
        if len(outputs) == 1:
            ((name, tensor),) = outputs.items()
            return document("predictions", *self.predictions_array(name, tensor, batch))
        items = {name: self.row_items(name, tensor, batch) for name, tensor in outputs.items()}
        objects = [
            "{\n            "
            + ",\n            ".join(quote(name) + ": " + items[name][i] for name in outputs)
            + "\n        }"
            for i in range(batch)
        ]
        if not objects:
            return document("predictions", "[]")
        return document("predictions", "[\n        " + ",\n        ".join(objects) + "\n    ]")

    def _columnar_json(self, outputs: Mapping[str, tensor_pb2.TensorProto]) -> bytes:
        # Columnar output keeps PrettyWriter's default layout: one array element per line.
        if len(outputs) == 1:
            ((name, tensor),) = outputs.items()
            return document("outputs", *self.columnar_text(name, tensor, 1))
        parts = ["{"]
        for index, (name, tensor) in enumerate(outputs.items()):
            parts.append(("\n        " if index == 0 else ",\n        ") + quote(name) + ": ")
            parts += self.columnar_text(name, tensor, 2)
        parts.append("\n    }")
        return document("outputs", *parts)


_EXACT = PredictOutputWriter()


def predict_outputs_to_json(outputs: Mapping[str, tensor_pb2.TensorProto], fmt: str) -> bytes:
    """MakeJsonFromTensors(): predict outputs -> ``{"predictions": ...}`` / ``{"outputs": ...}``.

    ``fmt`` is the request's format. One output is written unnamed; several are
    written by name (row: one object per batch item). Row format needs every output
    to have the same leading (batch) dimension. Values are written one at a time;
    :func:`tfs_async.testing.rest_json.dense.predict_outputs_to_json` writes the same
    bytes faster.

    >>> from tfs_async.codec.tensor import encode_tensor
    >>> import numpy as np
    >>> predict_outputs_to_json({"y": encode_tensor(np.array([[1.5], [2.0]], np.float32))}, "row")
    b'{\\n    "predictions": [[1.5], [2.0]\\n    ]\\n}'
    """
    return _EXACT.write(outputs, fmt)


def classification_result_to_json(result: classification_pb2.ClassificationResult) -> bytes:
    """MakeJsonFromClassificationResult(): ``{"results": [[[label, score], ...], ...]}``."""
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classifications in result.classifications:
        pairs = [
            "[" + quote(c.label) + ", " + format_float(c.score, double=False) + "]"
            for c in classifications.classes
        ]
        rows.append("[" + ", ".join(pairs) + "]")
    return document("results", "[" + ", ".join(rows) + "\n    ]")


def regression_result_to_json(result: regression_pb2.RegressionResult) -> bytes:
    """MakeJsonFromRegressionResult(): ``{"results": [value, ...]}``.

    >>> r = regression_pb2.RegressionResult()
    >>> _ = r.regressions.add(value=3.0)
    >>> regression_result_to_json(r)
    b'{\\n    "results": [3.0]\\n}'
    """
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    values = np.array([r.value for r in result.regressions], dtype=np.float32)
    return document("results", "[" + ", ".join(format_floats(values)) + "]")


def error_to_json(message: str) -> bytes:
    """MakeJsonFromStatus(): ``{"error": "<message>"}``, escaped as RapidJSON does.

    >>> error_to_json('Bad key: "key"')
    b'{\\n    "error": "Bad key: \\\\"key\\\\""\\n}'
    """
    return document("error", quote(message))


def status_to_json(response: get_model_status_pb2.GetModelStatusResponse) -> bytes:
    """A GetModelStatus response as TF Serving's REST API writes it.

    proto3 JSON with every field printed (int64 as strings, enums by name), versions
    newest first as TF Serving's ``VersionMap`` orders them.
    """
    ordered = get_model_status_pb2.GetModelStatusResponse()
    for version_status in sorted(
        response.model_version_status, key=lambda s: s.version, reverse=True
    ):
        added = ordered.model_version_status.add()
        added.CopyFrom(version_status)
        # TF Serving always fills the status (OK when healthy).
        added.status.SetInParent()
    text = json_format.MessageToJson(ordered, indent=1, always_print_fields_with_no_presence=True)
    return text.encode("utf-8")


def metadata_to_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> bytes:
    """A GetModelMetadata response as TF Serving's REST API writes it.

    ``{"model_spec": ..., "metadata": {"signature_def": <SignatureDefMap>}}`` with
    proto field names and no ``@type``; the ``Any`` is unpacked by hand because its
    type URL names TF's package, not ours.
    """
    if "signature_def" not in response.metadata:
        raise ServingStatus(
            StatusCode.INTERNAL,
            "Failed to find 'signature_def' key in the GetModelMetadataResponse metadata map.",
        )
    packed = response.metadata["signature_def"]
    if packed.type_url.rpartition("/")[2] != _SIGNATURE_DEF_MAP_TYPE:
        raise ServingStatus(
            StatusCode.INTERNAL, "Failed to unpack 'Any' object to 'SignatureDefMap'."
        )
    signature_def_map = get_model_metadata_pb2.SignatureDefMap.FromString(packed.value)
    options: dict[str, Any] = {
        "indent": 1,
        "always_print_fields_with_no_presence": True,
        "preserving_proto_field_name": True,
    }
    model_spec = json_format.MessageToJson(response.model_spec, **options)
    signature_defs = json_format.MessageToJson(signature_def_map, **options)
    text = (
        '{\n"model_spec":'
        + model_spec
        + ',\n"metadata": {"signature_def": '
        + signature_defs
        + "}\n}\n"
    )
    return text.encode("utf-8")
