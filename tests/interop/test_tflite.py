"""``--prefer_tflite_model``: a version's ``model.tflite`` is served as TF Serving serves it.

TF Serving runs it in a ``TfLiteSession`` (servables/tensorflow/tflite_session.cc).

The models are made here with TensorFlow's own TF Lite converter (and, for the
stored-SignatureDef case, TF Lite's flatbuffer tools), then served by the
emulator and called with tensorflow-serving-api's stubs over gRPC and with
plain HTTP over REST.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio
import numpy as np
import pytest
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.support import reference as tfs_reference
from tests.support.interop_serving import HTTP_TIMEOUT, running
from tfs_async._proto import meta_graph_pb2, types_pb2
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel

pytestmark = pytest.mark.interop

RPC_TIMEOUT = 60.0
PREDICT = "tensorflow/serving/predict"


def _converted(scale: float, shift: float) -> bytes:
    """The TF Lite model TensorFlow's converter makes of y = x * scale + shift (x: [batch, 1])."""

    def affine(x: Any) -> dict[str, Any]:
        return {"y": x * scale + shift}

    function = tf.function(affine, input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], tf.Module()
    )
    return bytes(converter.convert())


def _with_stored_signatures(model: bytes) -> bytes:
    """``model`` with its tensors renamed ``tflite_input``/``y`` and SignatureDefs in its metadata.

    As TF Serving's own ``saved_model_half_plus_two_tflite_with_sigdef``: the
    stored TensorInfo names carry ``:0``, the tensors do not (TF Lite's legacy
    naming), and the map is a FlexBuffer of key -> serialized SignatureDef strings.
    """
    graph = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    subgraph = graph.subgraphs[0]
    subgraph.tensors[subgraph.inputs[0]].name = b"tflite_input"
    subgraph.tensors[subgraph.outputs[0]].name = b"y"
    signature = meta_graph_pb2.SignatureDef(method_name=PREDICT)
    signature.inputs["x"].name = "tflite_input:0"
    signature.inputs["x"].dtype = types_pb2.DT_FLOAT
    signature.outputs["y"].name = "y:0"
    signature.outputs["y"].dtype = types_pb2.DT_FLOAT
    builder = flexbuffers.Builder()
    with builder.Map():
        for key in ("serving_default", "affine"):
            # TF Lite's writer stores each SignatureDef as a FlexBuffer string.
            builder.String(key, signature.SerializeToString().decode("ascii"))
    buffer = schema.BufferT()
    buffer.data = list(builder.Finish())
    graph.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = b"signature_defs_metadata"
    metadata.buffer = len(graph.buffers) - 1
    graph.metadata = [*(graph.metadata or []), metadata]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(graph))


def _base(tmp_path: Path, model: bytes, name: str = "lite") -> Path:
    version = tmp_path / name / "00000123"
    version.mkdir(parents=True)
    (version / "model.tflite").write_bytes(model)
    return version.parent


def _tensor(values: list[list[float]]) -> Any:
    return tf.make_tensor_proto(np.asarray(values, dtype=np.float32))


async def _predict(
    server: ModelServer, inputs: dict[str, Any], signature_name: str = ""
) -> predict_pb2.PredictResponse:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "lite"
        request.model_spec.signature_name = signature_name
        for alias, tensor in inputs.items():
            request.inputs[alias].CopyFrom(tensor)
        response: predict_pb2.PredictResponse = await stub.Predict(request, timeout=RPC_TIMEOUT)
        return response


async def _rest_predict(server: ModelServer, body: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
        http.post(f"{server.rest_url}/v1/models/lite:predict", json=body) as response,
    ):
        return response.status, await response.json()


async def _signature_defs(server: ModelServer) -> Any:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "lite"
        reply = await stub.GetModelMetadata(request, timeout=RPC_TIMEOUT)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    reply.metadata["signature_def"].Unpack(signatures)
    return signatures.signature_def


async def test_a_converted_model_is_served_as_serving_default_of_its_tensor_names(
    tmp_path: Path,
) -> None:
    base = _base(tmp_path, _converted(0.5, 2.0))
    async with running(ModelServer([SavedModel("lite", base, prefer_tflite_model=True)])) as srv:
        # TfLiteSession's generated signature: aliases are the tensor names without ":0".
        signature = (await _signature_defs(srv))["serving_default"]
        assert signature.method_name == PREDICT
        assert list(signature.inputs) == ["serving_default_x"]
        assert list(signature.outputs) == ["PartitionedCall"]
        info = signature.inputs["serving_default_x"]
        assert (info.name, info.dtype) == ("serving_default_x:0", types_pb2.DT_FLOAT)
        assert [d.size for d in info.tensor_shape.dim] == [1, 1]
        # A [3, 1] input resizes the interpreter's [1, 1] tensor, as TfLiteSession does.
        reply = await _predict(srv, {"serving_default_x": _tensor([[1.0], [2.0], [5.0]])})
        assert tf.make_ndarray(reply.outputs["PartitionedCall"]).tolist() == [[2.5], [3.0], [4.5]]
        assert (reply.model_spec.version.value, reply.model_spec.signature_name) == (
            123,
            "serving_default",
        )
        status, body = await _rest_predict(srv, {"instances": [[4.0], [6.0]]})
    assert (status, body) == (200, {"predictions": [[4.0], [5.0]]})


async def test_stored_signature_defs_are_served_with_legacy_tensor_names_fixed(
    tmp_path: Path,
) -> None:
    base = _base(tmp_path, _with_stored_signatures(_converted(0.5, 2.0)))
    async with running(ModelServer([SavedModel("lite", base, prefer_tflite_model=True)])) as srv:
        signatures = await _signature_defs(srv)
        assert sorted(signatures) == ["affine", "serving_default"]
        # "tflite_input:0" names no tensor; its legacy form "tflite_input" does.
        assert signatures["affine"].inputs["x"].name == "tflite_input"
        assert signatures["affine"].outputs["y"].name == "y"
        reply = await _predict(srv, {"x": _tensor([[2.0]])}, signature_name="affine")
        assert tf.make_ndarray(reply.outputs["y"]).tolist() == [[3.0]]
        assert reply.model_spec.signature_name == "affine"
        status, body = await _rest_predict(
            srv, {"signature_name": "affine", "inputs": {"x": [[1.0], [3.0]]}}
        )
    assert (status, body) == (200, {"outputs": [[2.5], [3.5]]})


async def test_the_tflite_file_is_served_only_with_the_flag(tmp_path: Path) -> None:
    """A version with both files: the SavedModel (x/2+2) without the flag, the TF Lite (3x) with."""
    saved = tfs_reference.models_dir() / "saved_model_half_plus_two_tf2_cpu"
    base = tmp_path / "lite"
    shutil.copytree(saved, base)
    version = next(p for p in base.iterdir() if p.name.isdigit())
    (version / "model.tflite").write_bytes(_converted(3.0, 0.0))
    async with running(ModelServer([SavedModel("lite", base)])) as srv:
        status, body = await _rest_predict(srv, {"instances": [2.0]})
        assert (status, body) == (200, {"predictions": [3.0]})
    async with running(ModelServer([SavedModel("lite", base, prefer_tflite_model=True)])) as srv:
        status, body = await _rest_predict(srv, {"instances": [[2.0]]})
        assert (status, body) == (200, {"predictions": [[6.0]]})


async def _version_status(server: ModelServer) -> Any:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "lite"
        reply = await stub.GetModelStatus(request, timeout=RPC_TIMEOUT)
    (version,) = reply.model_version_status
    return version


async def test_a_tflite_only_version_needs_the_flag(tmp_path: Path) -> None:
    base = _base(tmp_path, _converted(0.5, 2.0))
    async with running(ModelServer([SavedModel("lite", base)])) as srv:
        version = await _version_status(srv)
    # Without the flag TF Serving looks for a SavedModel, and there is none.
    assert version.state == get_model_status_pb2.ModelVersionStatus.END
    assert version.status.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "Could not find SavedModel .pb or .pbtxt" in version.status.error_message


async def test_a_corrupt_tflite_model_ends_the_version_with_tf_servings_error(
    tmp_path: Path,
) -> None:
    base = _base(tmp_path, b"not a flatbuffer model")
    async with running(ModelServer([SavedModel("lite", base, prefer_tflite_model=True)])) as srv:
        version = await _version_status(srv)
        status, body = await _rest_predict(srv, {"instances": [[1.0]]})
    assert version.state == get_model_status_pb2.ModelVersionStatus.END
    assert version.status.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert version.status.error_message == "Cannot build FlatBufferModel from buffer."
    assert status == 404  # no version of "lite" is available
    assert "error" in body


async def test_a_wrong_input_dtype_is_invalid_argument(tmp_path: Path) -> None:
    base = _base(tmp_path, _converted(0.5, 2.0))
    async with running(ModelServer([SavedModel("lite", base, prefer_tflite_model=True)])) as srv:
        ints = tf.make_tensor_proto(np.asarray([[1]], dtype=np.int32))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _predict(srv, {"serving_default_x": ints})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "float" in (caught.value.details() or "")
