"""Classify, Regress and MultiInference on TF2 signatures (method_name predict), both transports.

TF Serving checks a signature's method_name only with
``--enable_signature_method_name_check`` (default off); otherwise a signature
runs when its inputs and outputs fit (classifier.cc, regressor.cc).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout

from tfs_async import _grpc_methods as methods
from tfs_async._proto import (
    classification_pb2,
    example_pb2,
    inference_pb2,
    regression_pb2,
)
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel

from .conftest import STEP_TIMEOUT, unary

CLASSIFY, REGRESS = "tensorflow/serving/classify", "tensorflow/serving/regress"


def tf2_model(models_dir: Path) -> SavedModel:
    return SavedModel("tf2", models_dir / "saved_model_half_plus_two_tf2_cpu")


@pytest_asyncio.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as session:
        yield session


async def start(models_dir: Path, **options: Any) -> ModelServer:
    server = ModelServer([tf2_model(models_dir)], **options)
    await asyncio.wait_for(server.start(), STEP_TIMEOUT)
    return server


def example(x: float) -> example_pb2.Example:
    ex = example_pb2.Example()
    ex.features.feature["x"].float_list.value.append(x)
    return ex


async def rest(http: ClientSession, server: ModelServer, verb: str, body: Any) -> tuple[int, Any]:
    async with http.post(f"{server.rest_url}/v1/models/tf2:{verb}", json=body) as response:
        return response.status, await response.json()


async def test_tf2_signatures_classify_and_regress_by_default(
    models_dir: Path, http: ClientSession
) -> None:
    server = await start(models_dir)
    try:
        body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}, {"x": 4.0}]}
        assert await rest(http, server, "regress", body) == (200, {"results": [3.0, 4.0]})
        body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
        assert await rest(http, server, "classify", body) == (200, {"results": [[["", 3.0]]]})
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            classify = unary(channel, methods.CLASSIFY, classification_pb2.ClassificationResponse)
            request = classification_pb2.ClassificationRequest()
            request.model_spec.name = "tf2"
            request.model_spec.signature_name = "classify_x_to_y"
            request.input.example_list.examples.append(example(2.0))
            reply = await classify(request, timeout=STEP_TIMEOUT)
            assert reply.result.classifications[0].classes[0].score == 3.0
            regress = unary(channel, methods.REGRESS, regression_pb2.RegressionResponse)
            reg = regression_pb2.RegressionRequest()
            reg.model_spec.name = "tf2"
            reg.model_spec.signature_name = "regress_x_to_y2"
            reg.input.example_list.examples.append(example(2.0))
            assert [
                r.value for r in (await regress(reg, timeout=STEP_TIMEOUT)).result.regressions
            ] == [4.0]
            multi = unary(channel, methods.MULTI_INFERENCE, inference_pb2.MultiInferenceResponse)
            mreq = inference_pb2.MultiInferenceRequest()
            mreq.input.example_list.examples.append(example(2.0))
            for sig, method in (("classify_x_to_y", CLASSIFY), ("regress_x_to_y", REGRESS)):
                task = mreq.tasks.add(method_name=method)
                task.model_spec.name = "tf2"
                task.model_spec.signature_name = sig
            mreply = await multi(mreq, timeout=STEP_TIMEOUT)
            assert (
                mreply.results[0].classification_result.classifications[0].classes[0].score == 3.0
            )
            assert mreply.results[1].regression_result.regressions[0].value == 3.0
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


async def test_signature_that_does_not_fit_is_refused_with_tf_servings_message(
    models_dir: Path, http: ClientSession
) -> None:
    server = await start(models_dir)
    try:
        # serving_default's input is x, not inputs: PreProcessRegression refuses it.
        body = {"examples": [{"x": 2.0}]}
        status, answer = await rest(http, server, "regress", body)
        assert status == 400
        assert answer["error"].startswith(
            'No regression inputs found in SignatureDef: inputs {\n  key: "x"\n'
        )
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


async def test_method_name_check_flag_refuses_tf2_signatures_on_both_transports(
    models_dir: Path, http: ClientSession
) -> None:
    server = await start(models_dir, enable_signature_method_name_check=True)
    expected = (
        "Expected classification signature method_name to be tensorflow/serving/classify. "
        "Was: tensorflow/serving/predict"
    )
    try:
        body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
        assert await rest(http, server, "classify", body) == (400, {"error": expected})
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            classify = unary(channel, methods.CLASSIFY, classification_pb2.ClassificationResponse)
            request = classification_pb2.ClassificationRequest()
            request.model_spec.name = "tf2"
            request.model_spec.signature_name = "classify_x_to_y"
            request.input.example_list.examples.append(example(2.0))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await classify(request, timeout=STEP_TIMEOUT)
            assert (info.value.code(), info.value.details()) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                expected,
            )
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)
