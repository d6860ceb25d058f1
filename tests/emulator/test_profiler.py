"""The profiler service on the gRPC port (TF Serving's ``--enable_profiler``, default on).

Calls go to ``/tensorflow.ProfilerService/...`` over real gRPC; the traced calls
are made over both transports while a session runs. Tests know a session runs
through ``server.profiler.started()`` and end it with ``Terminate``, as TF's
programmatic mode does, so nothing waits on the clock.
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
from tfs_async._proto import predict_pb2, profiler_service_pb2, types_pb2, xplane_pb2
from tfs_async.testing import ModelServer
from tfs_async.testing.profiler import HOST_PLANE, LOCK_CONTENTION, ProfilerService

from .conftest import STEP_TIMEOUT, double_model, unary

PROFILE = "/tensorflow.ProfilerService/Profile"
TERMINATE = "/tensorflow.ProfilerService/Terminate"
MONITOR = "/tensorflow.ProfilerService/Monitor"
LONG_MS = 600_000  # a window that only Terminate ends within the test


@pytest_asyncio.fixture
async def served() -> AsyncIterator[ModelServer]:
    async with ModelServer([double_model()]) as server:
        yield server


def _profiler(server: ModelServer) -> ProfilerService:
    assert server.profiler is not None
    return server.profiler


def _request(root: Path, session: str, *, ms: int = LONG_MS) -> Any:
    request = profiler_service_pb2.ProfileRequest(
        duration_ms=ms, repository_root=str(root), session_id=session, host_name="localhost:9"
    )
    request.opts.duration_ms = ms
    return request


async def _predict_grpc(channel: grpc.aio.Channel, model: str) -> grpc.StatusCode:
    call = unary(channel, methods.PREDICT, predict_pb2.PredictResponse)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].tensor_shape.dim.add(size=1)
    request.inputs["x"].float_val.append(1.0)
    try:
        await call(request, timeout=STEP_TIMEOUT)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _predict_rest(server: ModelServer) -> int:
    async with (
        ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as http,
        http.post(
            f"{server.rest_url}/v1/models/double:predict", json={"instances": [1.0]}
        ) as response,
    ):
        return response.status


def _events(space: Any) -> dict[str, list[tuple[str, str, str]]]:
    """Line name -> [(event name, model, status)] of the host plane."""
    (plane,) = space.planes
    assert plane.name == HOST_PLANE
    stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
    out: dict[str, list[tuple[str, str, str]]] = {}
    for line in plane.lines:
        for event in line.events:
            stats = {stat_names[s.metadata_id]: s.str_value for s in event.stats}
            name = plane.event_metadata[event.metadata_id].name
            out.setdefault(line.name, []).append((name, stats["model_name"], stats["status"]))
            assert event.offset_ps >= 0
            assert event.offset_ps + event.duration_ps <= line.duration_ps
    return out


async def test_a_session_traces_the_calls_of_both_transports_into_the_repository(
    served: ModelServer, tmp_path: Path
) -> None:
    async with grpc.aio.insecure_channel(served.grpc_target) as channel:
        # A call before the session is not in its trace.
        assert await _predict_grpc(channel, "double") == grpc.StatusCode.OK
        profile = unary(channel, PROFILE, profiler_service_pb2.ProfileResponse)
        running = asyncio.ensure_future(profile(_request(tmp_path, "run1"), timeout=STEP_TIMEOUT))
        assert await asyncio.wait_for(_profiler(served).started(), STEP_TIMEOUT) == "run1"
        assert await _predict_grpc(channel, "double") == grpc.StatusCode.OK
        assert await _predict_grpc(channel, "missing") == grpc.StatusCode.NOT_FOUND
        assert await _predict_rest(served) == 200
        terminate = unary(channel, TERMINATE, profiler_service_pb2.TerminateResponse)
        await terminate(
            profiler_service_pb2.TerminateRequest(session_id="run1"), timeout=STEP_TIMEOUT
        )
        response = await asyncio.wait_for(running, STEP_TIMEOUT)
    assert not response.empty_trace
    assert not response.HasField("xspace")  # written to the repository instead
    # TSL's SaveXSpace: <repository_root>/<session_id>/<host_name>.xplane.pb, ':' -> '_'.
    saved = (tmp_path / "run1" / "localhost_9.xplane.pb").read_bytes()
    space = xplane_pb2.XSpace.FromString(saved)
    assert list(space.hostnames) == ["localhost:9"]
    assert _events(space) == {
        "gRPC": [("predict", "double", "OK"), ("predict", "missing", "NOT_FOUND")],
        "REST": [("predict", "double", "OK")],
    }


async def test_an_idle_window_is_an_empty_trace_returned_with_emit_xspace(
    served: ModelServer, tmp_path: Path
) -> None:
    request = _request(tmp_path, "idle", ms=1)
    request.emit_xspace = True
    async with grpc.aio.insecure_channel(served.grpc_target) as channel:
        profile = unary(channel, PROFILE, profiler_service_pb2.ProfileResponse)
        response = await profile(request, timeout=STEP_TIMEOUT)
    # TF's client retries an empty trace, then reports "No trace event was collected".
    assert response.empty_trace
    assert [plane.name for plane in response.xspace.planes] == [HOST_PLANE]
    written = await asyncio.to_thread(lambda: list(tmp_path.iterdir()))
    assert written == []  # emit_xspace: nothing is written


async def test_one_session_at_a_time(served: ModelServer, tmp_path: Path) -> None:
    async with grpc.aio.insecure_channel(served.grpc_target) as channel:
        profile = unary(channel, PROFILE, profiler_service_pb2.ProfileResponse)
        first = asyncio.ensure_future(profile(_request(tmp_path, "a"), timeout=STEP_TIMEOUT))
        await asyncio.wait_for(_profiler(served).started(), STEP_TIMEOUT)
        with pytest.raises(grpc.aio.AioRpcError) as second:
            await profile(_request(tmp_path, "b"), timeout=STEP_TIMEOUT)
        terminate = unary(channel, TERMINATE, profiler_service_pb2.TerminateResponse)
        await terminate(profiler_service_pb2.TerminateRequest(session_id="a"), timeout=STEP_TIMEOUT)
        assert (await asyncio.wait_for(first, STEP_TIMEOUT)).empty_trace
    assert second.value.code() == grpc.StatusCode.INTERNAL
    assert second.value.details() == LOCK_CONTENTION


async def test_a_cancelled_session_ends_and_the_next_one_runs(
    served: ModelServer, tmp_path: Path
) -> None:
    async with grpc.aio.insecure_channel(served.grpc_target) as channel:
        profile = unary(channel, PROFILE, profiler_service_pb2.ProfileResponse)
        call = profile(_request(tmp_path, "gone"), timeout=STEP_TIMEOUT)
        await asyncio.wait_for(_profiler(served).started(), STEP_TIMEOUT)
        call.cancel()
        # The server ends the session; a new one starts and ends normally.
        await asyncio.wait_for(_profiler(served).idle(), STEP_TIMEOUT)
        response = await profile(_request(tmp_path, "next", ms=1), timeout=STEP_TIMEOUT)
    assert response.empty_trace
    assert (tmp_path / "next" / "localhost_9.xplane.pb").is_file()


async def test_monitor_is_unimplemented_as_in_tsl(served: ModelServer) -> None:
    async with grpc.aio.insecure_channel(served.grpc_target) as channel:
        monitor = unary(channel, MONITOR, profiler_service_pb2.MonitorResponse)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await monitor(profiler_service_pb2.MonitorRequest(), timeout=STEP_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == "unimplemented."


async def test_enable_profiler_false_serves_no_profiler(tmp_path: Path) -> None:
    async with (
        ModelServer([double_model()], enable_profiler=False) as server,
        grpc.aio.insecure_channel(server.grpc_target) as channel,
    ):
        assert server.profiler is None
        profile = unary(channel, PROFILE, profiler_service_pb2.ProfileResponse)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await profile(_request(tmp_path, "off", ms=1), timeout=STEP_TIMEOUT)
        assert await _predict_grpc(channel, "double") == grpc.StatusCode.OK
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
