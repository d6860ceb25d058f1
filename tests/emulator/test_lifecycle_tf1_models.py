"""A TF1 SavedModel with an asset and a main_op (our half_plus_three) loads and serves.

The model (tests/data/tf1_half_plus_three) behaves like TF Serving's
saved_model_half_plus_three, so TF Serving's docs examples hold for it. Without
TensorFlow the emulator serves its signatures with the built-in functions; with
TensorFlow (the interop tier) it is loaded into a Session.
"""

from __future__ import annotations

import asyncio

import grpc.aio
from aiohttp import ClientSession, ClientTimeout

from tests.support.project_data import TF1_HALF_PLUS_THREE
from tfs_async import _grpc_methods as methods
from tfs_async._proto import predict_pb2, types_pb2
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel

from .conftest import STEP_TIMEOUT, unary


async def test_half_plus_three_serves_the_docs_example_on_both_transports() -> None:
    model = SavedModel("half_plus_three", TF1_HALF_PLUS_THREE)
    server = ModelServer([model])
    await asyncio.wait_for(server.start(), STEP_TIMEOUT)
    try:
        async with (
            ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as http,
            http.post(
                f"{server.rest_url}/v1/models/half_plus_three:predict",
                json={"instances": [1.0, 2.0, 5.0]},
            ) as response,
        ):
            assert response.status == 200
            assert await response.json() == {"predictions": [3.5, 4.0, 5.5]}
        # TF Serving's REST docs: regress on the non-default signature.
        body = {
            "signature_name": "tensorflow/serving/regress",
            "examples": [{"x": 1.0}, {"x": 2.0}],
        }
        async with (
            ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as http,
            http.post(f"{server.rest_url}/v1/models/half_plus_three:regress", json=body) as reply,
        ):
            assert reply.status == 200
            assert await reply.json() == {"results": [3.5, 4.0]}
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            predict = unary(channel, methods.PREDICT, predict_pb2.PredictResponse)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "half_plus_three"
            request.inputs["x"].dtype = types_pb2.DT_FLOAT
            request.inputs["x"].tensor_shape.dim.add(size=3)
            request.inputs["x"].float_val.extend([1.0, 2.0, 5.0])
            reply = await predict(request, timeout=STEP_TIMEOUT)
        assert list(reply.outputs["y"].float_val) == [3.5, 4.0, 5.5]
        assert reply.model_spec.version.value == 123
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)
