"""A bad feature in Classify or Regress: INVALID_ARGUMENT in TensorFlow's words, both transports."""

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
from tfs_async._proto import classification_pb2, example_pb2, regression_pb2
from tfs_async.testing import ModelServer

from .conftest import STEP_TIMEOUT, half_plus_two, unary

MISSING = "Name: <unknown>, Feature: x (data type: float) is required but could not be found."


def mismatch(index: int, given: str) -> str:
    return (
        f"Name: <unknown>, Key: x, Index: {index}.  Data types don't match. "
        f"Data type: {given} but expected type: float"
    )


@pytest_asyncio.fixture
async def served(models_dir: Path) -> AsyncIterator[tuple[ModelServer, ClientSession]]:
    server = ModelServer([half_plus_two(models_dir, "hpt")])
    await asyncio.wait_for(server.start(), STEP_TIMEOUT)
    try:
        async with ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as http:
            yield server, http
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


@pytest.mark.parametrize(
    ("verb", "signature", "examples", "message"),
    [
        ("regress", "regress_x_to_y", [{"y": 1.0}], MISSING),
        ("regress", "regress_x_to_y", [{"x": 1.0}, {"x": "one"}], mismatch(1, "string")),
        ("classify", "classify_x_to_y", [{"x": 2}], mismatch(0, "int64")),
        (
            "regress",
            "regress_x_to_y",
            [{"x": 1.0}, {"x": [1.0, 2.0]}],
            "Name: <unknown>, Key: x, Index: 1.  Number of float values != expected.  "
            "Values size: 2 but output shape: [1]",
        ),
    ],
    ids=["missing", "string-for-float", "int-for-float", "two-values"],
)
async def test_bad_feature_over_rest_is_400_with_tf_wording(
    served: tuple[ModelServer, ClientSession],
    verb: str,
    signature: str,
    examples: list[dict[str, Any]],
    message: str,
) -> None:
    server, http = served
    body = {"signature_name": signature, "examples": examples}
    async with http.post(f"{server.rest_url}/v1/models/hpt:{verb}", json=body) as response:
        assert (response.status, await response.json()) == (400, {"error": message})


async def test_bad_feature_over_grpc_is_invalid_argument_with_tf_wording(
    served: tuple[ModelServer, ClientSession],
) -> None:
    server, _ = served
    good, bad = example_pb2.Example(), example_pb2.Example()
    good.features.feature["x"].float_list.value.append(1.0)
    bad.features.feature["x"].int64_list.value.append(1)
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        regress = unary(channel, methods.REGRESS, regression_pb2.RegressionResponse)
        request = regression_pb2.RegressionRequest()
        request.model_spec.name = "hpt"
        request.model_spec.signature_name = "regress_x_to_y"
        request.input.example_list.examples.extend([good, bad])
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await regress(request, timeout=STEP_TIMEOUT)
        assert (info.value.code(), info.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            mismatch(1, "int64"),
        )
        classify = unary(channel, methods.CLASSIFY, classification_pb2.ClassificationResponse)
        creq = classification_pb2.ClassificationRequest()
        creq.model_spec.name = "hpt"
        creq.model_spec.signature_name = "classify_x_to_y"
        creq.input.example_list.examples.add().features.feature["y"].float_list.value.append(1)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await classify(creq, timeout=STEP_TIMEOUT)
        assert (info.value.code(), info.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            MISSING,
        )
