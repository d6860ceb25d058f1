"""Server-side batching (``--enable_batching``) over real gRPC and REST sockets.

A gated model holds the only batch thread, so the tests decide which requests
queue together without relying on timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import predict_pb2
from tfs_async.codec.tensor import encode_tensor
from tfs_async.testing import ModelServer, PythonModel, signature
from tfs_async.testing.batch_scheduler import SharedBatchScheduler, task_size
from tfs_async.testing.device_model import DeviceModel
from tfs_async.testing.server_config import BatchingParameters
from tfs_async.testing.status import ServingStatus

TIMEOUT = 10.0  # every await here is bounded by this many seconds
QUEUE_FULL = (
    "The batch scheduling queue to which this task was submitted is full; "
    "currently 1 batches enqueued and max_enqueued_batches is 1"
)


def gated_matrix_model(gate: asyncio.Event, entered: asyncio.Event) -> PythonModel:
    """serving_default x (float32, [-1, -1]) -> y = x + 1; version 1 waits for ``gate``."""

    async def run(t: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await gate.wait()
        return {"y": (t["x"] + 1).astype(np.float32)}

    return PythonModel(
        "m",
        {
            "serving_default": signature(
                run, inputs={"x": ("DT_FLOAT", [-1, -1])}, outputs={"y": ("DT_FLOAT", [-1, -1])}
            )
        },
    )


@dataclass
class Gated:
    """A batching server whose model blocks until ``gate`` is set."""

    server: ModelServer
    scheduler: SharedBatchScheduler
    channel: grpc.aio.Channel
    http: ClientSession
    gate: asyncio.Event
    entered: asyncio.Event

    async def grpc_predict(self, rows: list[list[float]]) -> predict_pb2.PredictResponse:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["x"].CopyFrom(encode_tensor(np.asarray(rows, dtype=np.float32)))
        call = self.channel.unary_unary(
            _methods.PREDICT,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        response: predict_pb2.PredictResponse = await call(request, timeout=TIMEOUT)
        return response

    async def rest_predict(self, rows: list[list[float]]) -> tuple[int, Any]:
        body = json.dumps({"instances": rows}).encode()
        async with (
            asyncio.timeout(TIMEOUT),
            self.http.post(self.server.rest_url + "/v1/models/m:predict", data=body) as resp,
        ):
            return resp.status, json.loads(await resp.read())


GatedFactory = Callable[..., Awaitable[Gated]]


@pytest_asyncio.fixture
async def make_gated(http: ClientSession) -> AsyncIterator[GatedFactory]:
    """Start gated batching servers; every one is stopped (gate released) at the end."""
    started: list[Gated] = []

    async def start(params: BatchingParameters, device: DeviceModel | None = None) -> Gated:
        gate, entered = asyncio.Event(), asyncio.Event()
        server = ModelServer(
            [gated_matrix_model(gate, entered)],
            batching=params,
            device=device,
            prometheus_path="/metrics",
        )
        await server.start()
        channel = grpc.aio.insecure_channel(server.grpc_target)
        assert server.batch_scheduler is not None
        gated = Gated(server, server.batch_scheduler, channel, http, gate, entered)
        started.append(gated)
        return gated

    yield start
    for gated in started:
        gated.gate.set()
        await gated.channel.close()
        await gated.server.stop()


async def _hold_the_batch_thread(gated: Gated) -> asyncio.Task[predict_pb2.PredictResponse]:
    """A first call that runs, and blocks, on the only batch thread."""
    first = asyncio.create_task(gated.grpc_predict([[0.0]]))
    async with asyncio.timeout(TIMEOUT):
        await gated.entered.wait()
    return first


async def test_queued_calls_run_as_one_batch_and_answer_each_caller(
    make_gated: GatedFactory,
) -> None:
    gated = await make_gated(BatchingParameters(max_batch_size=8, num_batch_threads=1))
    first = await _hold_the_batch_thread(gated)
    one = asyncio.create_task(gated.grpc_predict([[1.0, 2.0]]))
    two = asyncio.create_task(gated.grpc_predict([[3.0, 4.0], [5.0, 6.0]]))
    rest = asyncio.create_task(gated.rest_predict([[7.0, 8.0]]))
    async with asyncio.timeout(TIMEOUT):
        await gated.scheduler.wait_enqueued(3)
        gated.gate.set()
        await first
        await asyncio.wait([one, two, rest])
    assert list(one.result().outputs["y"].float_val) == [2.0, 3.0]
    assert list(two.result().outputs["y"].float_val) == [4.0, 5.0, 6.0, 7.0]
    assert rest.result() == (200, {"predictions": [[8.0, 9.0]]})
    # One batch for the first call, one for the three queued (4 rows).
    assert gated.scheduler.stats.batch_sizes == [1, 4]
    async with asyncio.timeout(TIMEOUT), gated.http.get(gated.server.rest_url + "/metrics") as r:
        page = (await r.read()).decode()
    assert ":tensorflow:serving:batching_session:wrapped_run_count{} 2" in page


async def test_full_queue_answers_unavailable_with_tf_message_on_both_transports(
    make_gated: GatedFactory,
) -> None:
    params = BatchingParameters(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1)
    gated = await make_gated(params)
    first = await _hold_the_batch_thread(gated)
    waiting = asyncio.create_task(gated.grpc_predict([[1.0]]))
    async with asyncio.timeout(TIMEOUT):
        await gated.scheduler.wait_enqueued(1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await gated.grpc_predict([[2.0]])
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert refused.value.details() == QUEUE_FULL
    assert await gated.rest_predict([[3.0]]) == (503, {"error": QUEUE_FULL})
    gated.gate.set()
    async with asyncio.timeout(TIMEOUT):
        assert list((await waiting).outputs["y"].float_val) == [2.0]
        await first


async def test_task_larger_than_max_batch_size_is_invalid_argument(
    make_gated: GatedFactory,
) -> None:
    gated = await make_gated(BatchingParameters(max_batch_size=2, num_batch_threads=1))
    message = "Task size 3 is larger than maximum input batch size 2"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await gated.grpc_predict([[1.0], [2.0], [3.0]])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == message
    assert await gated.rest_predict([[1.0], [2.0], [3.0]]) == (400, {"error": message})


@pytest.mark.parametrize("pad", [False, True])
async def test_different_inner_shapes_in_one_batch_need_padding(
    make_gated: GatedFactory, pad: bool
) -> None:
    params = BatchingParameters(
        max_batch_size=8, num_batch_threads=1, pad_variable_length_inputs=pad
    )
    gated = await make_gated(params)
    first = await _hold_the_batch_thread(gated)
    narrow = asyncio.create_task(gated.grpc_predict([[1.0, 2.0]]))
    wide = asyncio.create_task(gated.rest_predict([[1.0, 2.0, 3.0]]))
    async with asyncio.timeout(TIMEOUT):
        await gated.scheduler.wait_enqueued(2)
        gated.gate.set()
        await first
        results = await asyncio.gather(narrow, wide, return_exceptions=True)
    if pad:
        assert isinstance(results[0], predict_pb2.PredictResponse)
        assert list(results[0].outputs["y"].float_val) == [2.0, 3.0]
        assert results[1] == (200, {"predictions": [[2.0, 3.0, 4.0]]})
        return
    refused = results[0]
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    message = refused.details() or ""
    assert message.startswith("Tensors with name 'x' from different tasks have different shapes")
    assert "Set pad_variable_length_inputs to true" in message
    assert results[1] == (400, {"error": message})


async def test_batches_are_padded_to_allowed_sizes_and_charged_to_the_device(
    make_gated: GatedFactory,
) -> None:
    device = DeviceModel(0.0, 0.0)
    params = BatchingParameters(max_batch_size=4, allowed_batch_sizes=(2, 4), num_batch_threads=1)
    gated = await make_gated(params, device)
    first = await _hold_the_batch_thread(gated)
    queued = [asyncio.create_task(gated.grpc_predict([[float(i)]])) for i in range(3)]
    async with asyncio.timeout(TIMEOUT):
        await gated.scheduler.wait_enqueued(3)
        gated.gate.set()
        await asyncio.gather(first, *queued)
    assert gated.scheduler.stats.batch_sizes == [2, 4]  # 1 row -> 2, 3 rows -> 4
    assert (device.batches, device.rows) == (2, 6)


async def test_requests_the_batcher_cannot_place_get_the_core_errors(
    make_gated: GatedFactory,
) -> None:
    gated = await make_gated(BatchingParameters(num_batch_threads=1))
    async with (
        asyncio.timeout(TIMEOUT),
        gated.http.post(gated.server.rest_url + "/v1/models/nope:predict", data=b"{}") as resp,
    ):
        assert resp.status == 404
        assert "Servable not found" in json.loads(await resp.read())["error"]


async def test_scheduler_rejects_inconsistent_task_sizes() -> None:
    assert task_size({"a": [5, 2], "b": [5]}) == 5
    with pytest.raises(ServingStatus, match="equal 0th-dimension size"):
        task_size({"a": [5], "b": [4]})
    with pytest.raises(ServingStatus, match="at least one dimension"):
        task_size({"a": []})
    with pytest.raises(ServingStatus, match="at least one input tensor"):
        task_size({})


def test_allowed_batch_sizes_must_end_at_max_batch_size() -> None:
    with pytest.raises(ServingStatus, match="last entry was 4; expected 8"):
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4))
    assert BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 8)).padded_size(3) == 8


def test_device_model_cost_is_fixed_plus_per_row() -> None:
    device = DeviceModel.parse("2, 0.5")
    assert device.cost_seconds(4) == pytest.approx(0.004)
    for bad in ("2", "a,b", "-1,0", "1,2,3"):
        with pytest.raises(ValueError, match="emulate_device_latency"):
            DeviceModel.parse(bad)
