"""The Transport contract, held by both transports against the emulator on real sockets.

What transport/base.py declares and the client relies on: connect(), aclose(),
http_status_for() on the errors a transport raises, a Predict answer decoded
alike with and without the signature, sends_output_filter, and UnimplementedError
before sending (REST has no MultiInference).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from tfs_async.errors import NotFoundError, StatusCode, UnimplementedError
from tfs_async.testing import ModelServer, PythonModel, signature
from tfs_async.transport import CallOptions, GrpcTransport, HttpTransport, Transport
from tfs_async.types import (
    InferenceTask,
    ModelSpec,
    MultiInferenceRequest,
    PredictRequest,
)

if sys.version_info >= (3, 11):
    within = asyncio.timeout
else:  # aiohttp depends on async-timeout before Python 3.11
    import async_timeout  # type: ignore[import-not-found, unused-ignore]

    within = async_timeout.timeout

# Every await is bounded by this many seconds.
STEP = 10.0
OPTIONS = CallOptions(timeout=STEP)
MODEL = ModelSpec("pair")


def _pair_model() -> PythonModel:
    """x (float32 [-1]) -> y = 2x (float32), n = len(x) (int64)."""
    return PythonModel(
        "pair",
        {
            "serving_default": signature(
                lambda t: {
                    "y": (t["x"] * 2).astype(np.float32),
                    "n": np.full(t["x"].shape, len(t["x"]), np.int64),
                },
                inputs={"x": ("DT_FLOAT", [-1])},
                outputs={"y": ("DT_FLOAT", [-1]), "n": ("DT_INT64", [-1])},
            )
        },
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ModelServer]:
    async with within(STEP):
        srv = ModelServer([_pair_model()])
        await srv.start()
    try:
        yield srv
    finally:
        async with within(STEP):
            await srv.stop()


@pytest_asyncio.fixture(params=["grpc", "http"])
async def transport(
    server: ModelServer, request: pytest.FixtureRequest
) -> AsyncIterator[Transport]:
    made: Transport = (
        GrpcTransport(server.grpc_target)
        if request.param == "grpc"
        else HttpTransport(server.rest_url)
    )
    try:
        yield made
    finally:
        async with within(STEP):
            await made.aclose()


async def _predict(
    transport: Transport, output_filter: tuple[str, ...] = (), *, with_signature: bool = False
) -> dict[str, np.ndarray[Any, Any]]:
    signature_info = None
    async with within(STEP):
        if with_signature:
            metadata = await transport.get_model_metadata(MODEL, OPTIONS)
            signature_info = metadata.signatures["serving_default"]
        request = PredictRequest(
            MODEL, {"x": np.array([1.0, 2.0], np.float32)}, output_filter, signature_info
        )
        return dict(await transport.predict(request, OPTIONS))


async def test_connect_then_call_then_close_is_idempotent_and_final(transport: Transport) -> None:
    async with within(STEP):
        await transport.connect(STEP)
        statuses = await transport.get_model_status(MODEL, OPTIONS)
        assert [s.version for s in statuses] == [1]
        await transport.aclose()
        await transport.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await transport.get_model_status(MODEL, OPTIONS)


async def test_errors_carry_the_http_status_the_transport_declares(transport: Transport) -> None:
    with pytest.raises(NotFoundError) as info:
        async with within(STEP):
            await transport.get_model_status(ModelSpec("missing"), OPTIONS)
    assert info.value.http_status == transport.http_status_for(StatusCode.NOT_FOUND)
    assert info.value.model == ModelSpec("missing")


@pytest.mark.parametrize("with_signature", [False, True])
async def test_predict_decodes_with_or_without_the_signature(
    transport: Transport, with_signature: bool
) -> None:
    # The client passes the signature only when it has it cached or needed it.
    outputs = await _predict(transport, with_signature=with_signature)
    assert sorted(outputs) == ["n", "y"]
    assert outputs["y"].dtype == np.float32
    assert outputs["n"].dtype == np.int64
    np.testing.assert_array_equal(outputs["y"], [2.0, 4.0])


async def test_output_filter_is_honoured_whether_sent_or_applied(transport: Transport) -> None:
    outputs = await _predict(transport, ("n",))
    assert list(outputs) == ["n"]
    np.testing.assert_array_equal(outputs["n"], [2, 2])


async def test_a_call_the_protocol_lacks_fails_before_sending() -> None:
    # Port 1 on loopback: nothing listens there, so sending anything would fail otherwise.
    transport = HttpTransport("http://127.0.0.1:1")
    request = MultiInferenceRequest(
        [InferenceTask(MODEL.with_signature("serving_default"), "regress")], [{"x": [1.0]}], None
    )
    try:
        with pytest.raises(UnimplementedError):
            async with within(STEP):
                await transport.multi_inference(request, OPTIONS)
    finally:
        await transport.aclose()
