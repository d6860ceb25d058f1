"""The emulator serving half_plus_two with TensorFlow executing it, over gRPC and REST.

The SavedModel is copied under a name the emulator has no built-in Python
functions for, so every answer here was computed by TensorFlow (``tf_runtime``).
Google's stub, a bare aiohttp request and the tfs_async Client on both protocols
must all get TF Serving's README numbers: x = [1, 2, 5] -> y = [2.5, 3, 4.5].
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest
import pytest_asyncio
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2 as g_predict
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.support.interop_serving import HTTP_TIMEOUT, running
from tfs_async.client import Client
from tfs_async.testing import ModelServer
from tfs_async.testing.reference_models import REFERENCE_MODEL_DIRS
from tfs_async.testing.saved_model import SavedModel

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

MODEL = "half_plus_two"
X = [1.0, 2.0, 5.0]
Y = [2.5, 3.0, 4.5]
TIMEOUT = 30.0  # seconds; the first call loads the graph into TensorFlow


@pytest.fixture(scope="module")
def tf_only_model(half_plus_two_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base_path = tmp_path_factory.mktemp("models") / "tf_executed_half_plus_two"
    assert base_path.name not in REFERENCE_MODEL_DIRS
    shutil.copytree(half_plus_two_dir, base_path)
    return base_path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tf_only_model: Path) -> AsyncIterator[ModelServer]:
    async with running(ModelServer([SavedModel(MODEL, tf_only_model)])) as srv:
        yield srv


async def test_grpc_with_googles_stub(server: ModelServer) -> None:
    request = g_predict.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(X, dtype=tf.float32))
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = await stub.Predict(request, timeout=TIMEOUT)
    assert tf.make_ndarray(response.outputs["y"]).tolist() == Y


async def test_concurrent_calls_each_get_their_own_answer(server: ModelServer) -> None:
    """TensorFlow runs in worker threads; answers must not mix between requests."""
    batches = [[float(i), float(i + 1)] for i in range(12)]

    async def predict(
        stub: prediction_service_pb2_grpc.PredictionServiceStub, x: list[float]
    ) -> Any:
        request = g_predict.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(x, dtype=tf.float32))
        return await stub.Predict(request, timeout=TIMEOUT)

    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        responses = await asyncio.gather(*(predict(stub, x) for x in batches))
    for x, response in zip(batches, responses, strict=True):
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [0.5 * v + 2 for v in x]


async def test_rest_row_format(server: ModelServer) -> None:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        url = f"{server.rest_url}/v1/models/{MODEL}:predict"
        async with session.post(url, data=json.dumps({"instances": X})) as response:
            assert response.status == 200, await response.text()
            body = json.loads(await response.read())
    assert body == {"predictions": Y}


async def test_rest_classify_runs_the_graphs_example_parser(server: ModelServer) -> None:
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 5.0}]}
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        url = f"{server.rest_url}/v1/models/{MODEL}:classify"
        async with session.post(url, data=json.dumps(body)) as response:
            assert response.status == 200, await response.text()
            answer = json.loads(await response.read())
    assert answer == {"results": [[["", 2.5]], [["", 4.5]]]}


@pytest.mark.parametrize("scheme", ["grpc", "http"])
async def test_tfs_async_client_gets_the_same_numbers(server: ModelServer, scheme: str) -> None:
    target = f"grpc://{server.grpc_target}" if scheme == "grpc" else server.rest_url
    async with Client(target, timeout=TIMEOUT) as client:
        result = await client.predict(MODEL, {"x": np.array(X, np.float32)})
        regressed = await client.regress(
            MODEL, [{"x": 1.0}, {"x": 3.0}], signature="regress_x_to_y2"
        )
    # REST answers leave a single output unnamed and no metadata was fetched to name it.
    assert list(result) == (["y"] if scheme == "grpc" else ["outputs"])
    assert result.output.dtype == np.float32
    assert result.output.tolist() == Y
    assert result.model is not None
    assert result.model.name == MODEL
    if scheme == "grpc":
        # Only gRPC answers carry the version TF Serving resolved; REST bodies have none.
        assert result.model.version == 123
    assert regressed.values.tolist() == [3.5, 4.5]
