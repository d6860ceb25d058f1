"""Serve a TF Lite model (``model.tflite``) as TF Serving does with ``--prefer_tflite_model``.

TF Serving loads a version directory's ``model.tflite`` instead of its
SavedModel when ``--prefer_tflite_model`` is set and the file exists
(``servables/tensorflow/saved_model_bundle_factory.cc``), into a
``TfLiteSession`` (``servables/tensorflow/tflite_session.cc``). This module does
the same with TensorFlow's TF Lite interpreter (``tf.lite.Interpreter``),
following ``TfLiteSession``:

* **Signatures.** The ``SignatureDef`` map stored in the model's
  ``signature_defs_metadata`` metadata buffer (a FlexBuffer map of signature key
  to serialized ``SignatureDef``, as TF Lite's ``signature_def_util`` writes it)
  when there is one; a tensor name there that is not a model tensor is tried
  without its ``:N`` suffix (``FixTfLiteTensorName``). The signatures TF Lite's
  converter itself records (its ``SignatureRunner`` ones) are not read: TF
  Serving does not read them. Without that metadata, one
  ``serving_default`` signature (method ``tensorflow/serving/predict``) is made
  from the model's input and output tensors, each aliased by its tensor name
  without ``:N``, with the tensor's dtype and shape (``TfLiteTensorToTensorInfo``).
* **Running.** An input whose shape differs from the interpreter's tensor is
  resized to the fed shape, as ``SetInputAndInvokeMiniBatch`` does, so a model
  declared ``[1, 1]`` serves a ``[1]`` or ``[3, 1]`` input; outputs come back in
  the shape the interpreter gives them. Failures keep TF Serving's INTERNAL
  wording (``Failed to resize input tensor: ...``, ``Failed to invoke TfLite
  interpreter``).

One interpreter serves each version, one call at a time (TF Serving keeps
``--num_tflite_pools`` interpreters; the emulator accepts and ignores that flag).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async._proto import meta_graph_pb2
from tfs_async.codec import dtypes
from tfs_async.errors import StatusCode
from tfs_async.testing.status import ServingStatus, failed_precondition, invalid_argument

__all__ = ["TFLITE_FILENAME", "TfLiteSignature", "load_tflite_model"]

#: The file TF Serving looks for in a version directory (``kTfLiteModelFilename``).
TFLITE_FILENAME = "model.tflite"

#: The metadata buffer holding the SignatureDefs (``kSignatureDefsMetadataName``).
SIGNATURE_DEFS_METADATA = "signature_defs_metadata"

_DEFAULT_KEY = "serving_default"
_PREDICT_METHOD = "tensorflow/serving/predict"

_INSTALL_HINT = (
    "Serving a TF Lite model (model.tflite) in the emulator needs TensorFlow's TF Lite "
    "interpreter, which is not installed. Install the optional extra "
    "(`pip install 'tfs-async[tensorflow]'`, i.e. tensorflow-cpu)."
)


def _interpreter_class() -> Any:
    """``tf.lite.Interpreter``; FAILED_PRECONDITION when TensorFlow (or its TF Lite) is absent."""
    try:
        import tensorflow as tf

        return tf.lite.Interpreter
    except (ImportError, AttributeError):
        raise failed_precondition(_INSTALL_HINT) from None


def _signature_defs_metadata(model: bytes) -> dict[str, bytes] | None:
    """The serialized SignatureDefs in the model's metadata, or None when it has none."""
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAs(model, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name() != SIGNATURE_DEFS_METADATA.encode():
            continue
        data = root.Buffers(entry.Buffer()).DataAsNumpy()
        blob = data.tobytes() if isinstance(data, np.ndarray) else b""
        signature_map = flexbuffers.GetRoot(blob).AsMap
        return {
            key.AsKey: bytes(value.AsBlob if value.IsBlob else value.AsStringBytes)
            for key, value in zip(signature_map.Keys, signature_map.Values, strict=True)
        }
    return None


def _legacy_name(name: str) -> str:
    """``TfToTfLiteLegacyTensorName``: the name before its first ``:``."""
    return name.split(":", 1)[0]


def _fix_name(known: Mapping[str, int], name: str) -> str:
    """``FixTfLiteTensorName``: ``name`` if a tensor has it, else its legacy form."""
    if name in known:
        return name
    legacy = _legacy_name(name)
    if legacy in known:
        return legacy
    raise ServingStatus(StatusCode.INTERNAL, f"Unknown tensor '{name}'.")


def _tensor_info(detail: Mapping[str, Any]) -> meta_graph_pb2.TensorInfo:
    """``TfLiteTensorToTensorInfo``: the tensor's name, dtype and dims."""
    info = meta_graph_pb2.TensorInfo(name=str(detail["name"]))
    info.dtype = dtypes.to_datatype(np.dtype(detail["dtype"]), name=str(detail["name"]))
    for size in detail["shape"]:
        info.tensor_shape.dim.add(size=int(size))
    return info


class TfLiteSignature:
    """One signature of a TF Lite model, callable with numpy arrays keyed by input alias.

    Returns every output of the signature keyed by output alias. Safe to call
    from several threads (calls take turns on the one interpreter).
    """

    def __init__(
        self,
        interpreter: Any,
        lock: threading.Lock,
        key: str,
        signature_def: meta_graph_pb2.SignatureDef,
        input_index: Mapping[str, int],
        output_index: Mapping[str, int],
    ) -> None:
        self.key = key
        self._interpreter = interpreter
        self._lock = lock
        self._inputs = {a: input_index[i.name] for a, i in signature_def.inputs.items()}
        self._outputs = {a: output_index[i.name] for a, i in signature_def.outputs.items()}

    def __repr__(self) -> str:
        return f"TfLiteSignature({self.key!r}, inputs={sorted(self._inputs)})"

    def __call__(self, inputs: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        """Feed the inputs (resizing tensors to the fed shapes), invoke, read the outputs."""
        if set(inputs) != set(self._inputs):
            raise invalid_argument(
                f"Signature {self.key!r} expects inputs {sorted(self._inputs)}, "
                f"got {sorted(inputs)}",
            )
        with self._lock:
            interpreter = self._interpreter
            for alias, index in self._inputs.items():
                self._feed(interpreter, index, np.asarray(inputs[alias]))
            try:
                interpreter.invoke()
            except (RuntimeError, ValueError):
                raise ServingStatus(
                    StatusCode.INTERNAL, "Failed to invoke TfLite interpreter"
                ) from None
            return {
                alias: np.array(interpreter.get_tensor(index))
                for alias, index in self._outputs.items()
            }

    @staticmethod
    def _feed(interpreter: Any, index: int, value: npt.NDArray[Any]) -> None:
        detail = next(d for d in interpreter.get_input_details() if d["index"] == index)
        expected = np.dtype(detail["dtype"])
        if dtypes.is_string(expected) or dtypes.is_string(value.dtype):
            if not (dtypes.is_string(expected) and dtypes.is_string(value.dtype)):
                raise invalid_argument(
                    f"TF Lite input tensor {detail['name']!r} expects {expected} "
                    f"but {value.dtype} is provided",
                )
        elif value.dtype != expected:
            raise invalid_argument(
                f"TF Lite input tensor {detail['name']!r} expects {expected} "
                f"but {value.dtype} is provided",
            )
        if tuple(int(d) for d in detail["shape"]) != value.shape:
            try:
                interpreter.resize_tensor_input(index, list(value.shape))
                interpreter.allocate_tensors()
            except (RuntimeError, ValueError):
                size = int(np.prod(detail["shape"])) * expected.itemsize
                raise ServingStatus(
                    StatusCode.INTERNAL,
                    f"Failed to resize input tensor: {detail['name']} from {size} to "
                    f"{value.nbytes} bytes.",
                ) from None
        interpreter.set_tensor(index, value)


def load_tflite_model(
    path: str | Path,
) -> dict[str, tuple[meta_graph_pb2.SignatureDef, TfLiteSignature]]:
    """Load ``path`` (a ``model.tflite``): signature key -> (SignatureDef, callable).

    Raises ServingStatus: FAILED_PRECONDITION without a TF Lite interpreter,
    INVALID_ARGUMENT when the file is no TF Lite model or its stored SignatureDefs
    do not parse, INTERNAL when a SignatureDef names a tensor the model lacks.
    """
    model = Path(path).read_bytes()
    interpreter_class = _interpreter_class()
    try:
        with warnings.catch_warnings():
            # TensorFlow 2.21 announces tf.lite.Interpreter's move to ai_edge_litert.
            warnings.simplefilter("ignore", UserWarning)
            interpreter = interpreter_class(model_content=model)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError):
        raise invalid_argument("Cannot build FlatBufferModel from buffer.") from None
    input_index = {str(d["name"]): int(d["index"]) for d in interpreter.get_input_details()}
    output_index = {str(d["name"]): int(d["index"]) for d in interpreter.get_output_details()}
    stored = _signature_defs_metadata(model)
    signatures: dict[str, meta_graph_pb2.SignatureDef] = {}
    if stored:
        for key, serialized in stored.items():
            try:
                signature_def = meta_graph_pb2.SignatureDef.FromString(serialized)
            except Exception:  # protobuf's DecodeError
                raise invalid_argument(
                    f"Invalid SignatureDefs found in TfLite model: signature {key!r} does not parse"
                ) from None
            for alias, info in signature_def.inputs.items():
                info.name = _checked(input_index, info.name, "input", alias)
            for alias, info in signature_def.outputs.items():
                info.name = _checked(output_index, info.name, "output", alias)
            signatures[key] = signature_def
    else:
        generated = meta_graph_pb2.SignatureDef(method_name=_PREDICT_METHOD)
        for detail in interpreter.get_input_details():
            generated.inputs[_legacy_name(str(detail["name"]))].CopyFrom(_tensor_info(detail))
        for detail in interpreter.get_output_details():
            generated.outputs[_legacy_name(str(detail["name"]))].CopyFrom(_tensor_info(detail))
        signatures[_DEFAULT_KEY] = generated
    lock = threading.Lock()
    return {
        key: (
            signature_def,
            TfLiteSignature(interpreter, lock, key, signature_def, input_index, output_index),
        )
        for key, signature_def in signatures.items()
    }


def _checked(known: Mapping[str, int], name: str, kind: str, alias: str) -> str:
    try:
        return _fix_name(known, name)
    except ServingStatus as status:
        # TF_RETURN_WITH_CONTEXT_IF_ERROR appends its context on a new, indented line.
        raise ServingStatus(
            status.code,
            f"{status.message}\n\tSignature {kind} {alias} references an unknown tensor",
        ) from None
