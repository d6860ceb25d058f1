"""The emulator driven by Google's own generated stubs over a real socket.

``PredictionServiceStub`` / ``ModelServiceStub`` from tensorflow-serving-api,
requests built with Google's classes and ``tf.make_tensor_proto``, answers read
with ``tf.make_ndarray``. The half_plus_two SavedModel is executed by TensorFlow
(``tfs_async.testing.tf_runtime``), since no Python function is bound to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2 as g_saved_model
from tensorflow_serving.apis import classification_pb2 as g_classification
from tensorflow_serving.apis import get_model_metadata_pb2 as g_metadata
from tensorflow_serving.apis import get_model_status_pb2 as g_status
from tensorflow_serving.apis import inference_pb2 as g_inference
from tensorflow_serving.apis import model_management_pb2 as g_management
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2 as g_predict
from tensorflow_serving.apis import regression_pb2 as g_regression
from tensorflow_serving.config import model_server_config_pb2 as g_config

from tests.support.interop_serving import running
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

RPC_TIMEOUT = 30.0  # seconds; TensorFlow loads the model on its first call
MODEL = "half_plus_two"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(half_plus_two_dir: Path) -> AsyncIterator[ModelServer]:
    async with running(ModelServer([SavedModel(MODEL, half_plus_two_dir)])) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="module")
async def channel(server: ModelServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.grpc_target) as chan:
        yield chan


@pytest.fixture
def prediction(channel: grpc.aio.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture
def models(channel: grpc.aio.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


def _example(x: float) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))}
        )
    )


async def test_predict(prediction: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    request = g_predict.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0], [2.0], [5.0]], dtype=tf.float32))
    response = await prediction.Predict(request, timeout=RPC_TIMEOUT)

    assert list(response.outputs) == ["y"]
    np.testing.assert_array_equal(
        tf.make_ndarray(response.outputs["y"]), np.array([[2.5], [3.0], [4.5]], np.float32)
    )
    # TF Serving answers in the typed *_val fields by default.
    assert not response.outputs["y"].tensor_content
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 123
    assert response.model_spec.signature_name == "serving_default"


async def test_predict_flat_input_like_the_readme(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = g_predict.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
    response = await prediction.Predict(request, timeout=RPC_TIMEOUT)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), [2.5, 3.0, 4.5])


async def test_predict_unknown_model_is_not_found(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = g_predict.PredictRequest()
    request.model_spec.name = "nope"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await prediction.Predict(request, timeout=RPC_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Servable not found for request: Latest(nope)"


async def test_classify(prediction: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    request = g_classification.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.extend([_example(1.0), _example(4.0)])
    response = await prediction.Classify(request, timeout=RPC_TIMEOUT)

    scores = [[c.score for c in cls.classes] for cls in response.result.classifications]
    assert scores == [[2.5], [4.0]]
    # No classes output: TF Serving leaves the labels empty.
    assert [c.label for cls in response.result.classifications for c in cls.classes] == ["", ""]
    assert response.model_spec.version.value == 123
    assert response.model_spec.signature_name == "classify_x_to_y"


async def test_regress(prediction: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    request = g_regression.RegressionRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "regress_x_to_y2"
    request.input.example_list.examples.extend([_example(1.0), _example(3.0)])
    response = await prediction.Regress(request, timeout=RPC_TIMEOUT)
    # regress_x_to_y2 computes 0.5 * x + 3.
    assert [r.value for r in response.result.regressions] == [3.5, 4.5]
    assert response.model_spec.signature_name == "regress_x_to_y2"


async def test_multi_inference(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = g_inference.MultiInferenceRequest()
    for signature, method in [
        ("classify_x_to_y", "tensorflow/serving/classify"),
        ("regress_x_to_y", "tensorflow/serving/regress"),
    ]:
        task = request.tasks.add()
        task.model_spec.name = MODEL
        task.model_spec.signature_name = signature
        task.method_name = method
    request.input.example_list.examples.extend([_example(2.0)])
    response = await prediction.MultiInference(request, timeout=RPC_TIMEOUT)

    assert [r.WhichOneof("result") for r in response.results] == [
        "classification_result",
        "regression_result",
    ]
    assert response.results[0].classification_result.classifications[0].classes[0].score == 3.0
    assert response.results[1].regression_result.regressions[0].value == 3.0


async def test_get_model_metadata_any_unpacks_into_googles_signature_def_map(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub, half_plus_two_dir: Path
) -> None:
    request = g_metadata.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = await prediction.GetModelMetadata(request, timeout=RPC_TIMEOUT)

    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 123
    packed = response.metadata["signature_def"]
    assert packed.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    served = g_metadata.SignatureDefMap()
    assert packed.Unpack(served)

    # What TensorFlow's own SavedModel proto holds for the serve meta graph.
    saved = g_saved_model.SavedModel.FromString(
        (half_plus_two_dir / "00000123" / "saved_model.pb").read_bytes()
    )
    (graph,) = [g for g in saved.meta_graphs if list(g.meta_info_def.tags) == ["serve"]]
    assert dict(served.signature_def) == dict(graph.signature_def)


async def test_get_model_status(models: model_service_pb2_grpc.ModelServiceStub) -> None:
    request = g_status.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = await models.GetModelStatus(request, timeout=RPC_TIMEOUT)
    (status,) = response.model_version_status
    assert status.version == 123
    assert status.state == g_status.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0
    assert status.status.error_message == ""


TWO_VERSIONS_CONFIG = """
model_config_list {{
  config {{
    name: "two"
    base_path: "{base_path}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 123 versions: 124 }} }}
    {labels}
  }}
}}
"""


async def test_handle_reload_config_request(models_dir: Path, half_plus_two_dir: Path) -> None:
    base_path = models_dir / "saved_model_half_plus_two_2_versions"
    labels = (
        'version_labels { key: "stable" value: 123 } version_labels { key: "canary" value: 124 }'
    )
    async with (
        running(ModelServer([SavedModel(MODEL, half_plus_two_dir)], rest_port=None)) as server,
        grpc.aio.insecure_channel(server.grpc_target) as channel,
    ):
        model_service = model_service_pb2_grpc.ModelServiceStub(channel)
        prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        # TF Serving only labels versions that are already loaded: load first, then label.
        for extra in ("", labels):
            text = TWO_VERSIONS_CONFIG.format(base_path=base_path, labels=extra)
            request = g_management.ReloadConfigRequest(
                config=text_format.Parse(text, g_config.ModelServerConfig())
            )
            response = await model_service.HandleReloadConfigRequest(request, timeout=RPC_TIMEOUT)
            assert response.status.error_code == 0, response.status.error_message

        status_request = g_status.GetModelStatusRequest()
        status_request.model_spec.name = "two"
        status = await model_service.GetModelStatus(status_request, timeout=RPC_TIMEOUT)
        assert sorted(
            (s.version, g_status.ModelVersionStatus.State.Name(s.state))
            for s in status.model_version_status
        ) == [(123, "AVAILABLE"), (124, "AVAILABLE")]

        predict = g_predict.PredictRequest()
        predict.model_spec.name = "two"
        predict.model_spec.version_label = "canary"
        predict.inputs["x"].CopyFrom(tf.make_tensor_proto([[4.0]], dtype=tf.float32))
        answer = await prediction.Predict(predict, timeout=RPC_TIMEOUT)
        assert answer.model_spec.version.value == 124
        np.testing.assert_array_equal(tf.make_ndarray(answer.outputs["y"]), [[4.0]])

        # The config replaced the old one: half_plus_two is gone.
        gone = g_predict.PredictRequest()
        gone.model_spec.name = MODEL
        gone.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]], dtype=tf.float32))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await prediction.Predict(gone, timeout=RPC_TIMEOUT)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reload_labelling_a_version_that_cannot_load_fails_and_keeps_serving(
    models_dir: Path, half_plus_two_dir: Path
) -> None:
    base_path = models_dir / "saved_model_half_plus_two_2_versions"
    # Version 124 exists on disk but the policy serves only 123: it never becomes available.
    text = TWO_VERSIONS_CONFIG.format(
        base_path=base_path, labels='version_labels { key: "stable" value: 124 }'
    ).replace("versions: 123 versions: 124", "versions: 123")
    async with (
        running(ModelServer([SavedModel(MODEL, half_plus_two_dir)], rest_port=None)) as server,
        grpc.aio.insecure_channel(server.grpc_target) as channel,
    ):
        model_service = model_service_pb2_grpc.ModelServiceStub(channel)
        request = g_management.ReloadConfigRequest(
            config=text_format.Parse(text, g_config.ModelServerConfig())
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await model_service.HandleReloadConfigRequest(request, timeout=RPC_TIMEOUT)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.details() == (
            "Request to assign label to version 124 of model two, "
            "which is not currently available for inference"
        )

        status_request = g_status.GetModelStatusRequest()
        status_request.model_spec.name = MODEL
        status = await model_service.GetModelStatus(status_request, timeout=RPC_TIMEOUT)
        assert [s.version for s in status.model_version_status] == [123]
