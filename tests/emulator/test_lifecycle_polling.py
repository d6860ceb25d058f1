"""File-system polling: new version directories load per the version policy, old ones unload after.

Polls are triggered with ``await core.poll_file_system()`` (no timers); states are
read over gRPC (GetModelStatus) and REST (``GET /v1/models/<m>``).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout

from tfs_async import _grpc_methods as methods
from tfs_async._proto import get_model_status_pb2, predict_pb2, types_pb2
from tfs_async.config import model_config, model_server_config
from tfs_async.testing import ModelServer

from .conftest import STEP_TIMEOUT, unary

NAME = "saved_model_half_plus_two_cpu"  # without TensorFlow, its functions are found by this name


@pytest_asyncio.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as session:
        yield session


def base_with(models_dir: Path, tmp_path: Path, *versions: int) -> Path:
    base = tmp_path / NAME
    for v in versions:
        add_version(models_dir, base, v)
    return base


def add_version(models_dir: Path, base: Path, version: int) -> Path:
    target = base / f"{version:08d}"
    shutil.copytree(models_dir / NAME / "00000123", target)
    return target


async def start(base: Path, **policy: Any) -> ModelServer:
    config = model_server_config([model_config("m", str(base), **policy)])
    server = ModelServer(config=config, file_system_poll_wait_seconds=0)
    await asyncio.wait_for(server.start(), STEP_TIMEOUT)
    return server


async def grpc_states(server: ModelServer) -> list[tuple[int, str]]:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        call = unary(channel, methods.GET_MODEL_STATUS, get_model_status_pb2.GetModelStatusResponse)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "m"
        response = await call(request, timeout=STEP_TIMEOUT)
    names = get_model_status_pb2.ModelVersionStatus.State.Name
    return [(s.version, names(s.state)) for s in response.model_version_status]


async def rest_states(http: ClientSession, server: ModelServer) -> list[tuple[int, str]]:
    async with http.get(f"{server.rest_url}/v1/models/m") as response:
        body = await response.json()
    return [(int(s["version"]), s["state"]) for s in body["model_version_status"]]


async def states(http: ClientSession, server: ModelServer) -> list[tuple[int, str]]:
    over_grpc = await grpc_states(server)
    assert await rest_states(http, server) == over_grpc
    return over_grpc


async def served_version(http: ClientSession, server: ModelServer) -> int:
    """The version Predict runs on, over gRPC; REST must answer the same prediction."""
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        predict = unary(channel, methods.PREDICT, predict_pb2.PredictResponse)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["x"].dtype = types_pb2.DT_FLOAT
        request.inputs["x"].tensor_shape.dim.add(size=1)
        request.inputs["x"].float_val.append(2.0)
        reply = await predict(request, timeout=STEP_TIMEOUT)
    async with http.post(f"{server.rest_url}/v1/models/m:predict", json={"instances": [2.0]}) as r:
        assert await r.json() == {"predictions": [3.0]}
    return int(reply.model_spec.version.value)


async def test_new_version_loads_then_old_unloads_while_serving_throughout(
    models_dir: Path, tmp_path: Path, http: ClientSession
) -> None:
    base = base_with(models_dir, tmp_path, 123)
    server = await start(base)
    try:
        assert server.core.file_system_poll_wait_seconds == 0
        add_version(models_dir, base, 124)
        gate = server.core.hold_loading("m", 124)
        poll = asyncio.create_task(server.core.poll_file_system())
        try:
            await gate.wait_reached(STEP_TIMEOUT)
            assert await states(http, server) == [(124, "LOADING"), (123, "AVAILABLE")]
            assert await served_version(http, server) == 123
        finally:
            gate.release()
            await asyncio.wait_for(poll, STEP_TIMEOUT)
        assert await states(http, server) == [(124, "AVAILABLE"), (123, "END")]
        assert await served_version(http, server) == 124
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, [(125, "AVAILABLE"), (123, "END")]),  # 124 was never aspired: never loaded
        ({"latest": 2}, [(125, "AVAILABLE"), (124, "AVAILABLE"), (123, "END")]),
        ({"all_versions": True}, [(125, "AVAILABLE"), (124, "AVAILABLE"), (123, "AVAILABLE")]),
        ({"versions": [123, 124]}, [(124, "AVAILABLE"), (123, "AVAILABLE")]),
    ],
    ids=["default-latest-1", "latest-2", "all", "specific"],
)
async def test_poll_applies_the_version_policy(
    models_dir: Path,
    tmp_path: Path,
    http: ClientSession,
    policy: dict[str, Any],
    expected: list[tuple[int, str]],
) -> None:
    base = base_with(models_dir, tmp_path, 123)
    server = await start(base, **policy)
    try:
        add_version(models_dir, base, 124)
        add_version(models_dir, base, 125)
        await asyncio.wait_for(server.core.poll_file_system(), STEP_TIMEOUT)
        assert await states(http, server) == expected
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


async def test_new_version_that_fails_to_load_keeps_the_old_one_serving(
    models_dir: Path, tmp_path: Path, http: ClientSession
) -> None:
    base = base_with(models_dir, tmp_path, 123)
    server = await start(base)
    try:
        broken = add_version(models_dir, base, 124)
        (broken / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff\xff")
        await asyncio.wait_for(server.core.poll_file_system(), STEP_TIMEOUT)
        assert await states(http, server) == [(124, "END"), (123, "AVAILABLE")]
        assert await served_version(http, server) == 123
        # Still aspired: the failed version is not loaded again on the next poll.
        gate = server.core.hold_loading("m", 124)
        await asyncio.wait_for(server.core.poll_file_system(), STEP_TIMEOUT)
        assert not gate.reached.is_set()
        gate.release()
        # Once its directory is gone, the version may come back and load.
        shutil.rmtree(broken)
        await asyncio.wait_for(server.core.poll_file_system(), STEP_TIMEOUT)
        add_version(models_dir, base, 124)
        await asyncio.wait_for(server.core.poll_file_system(), STEP_TIMEOUT)
        assert await states(http, server) == [(124, "AVAILABLE"), (123, "END")]
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


async def test_removed_version_directory_unloads(
    models_dir: Path, tmp_path: Path, http: ClientSession
) -> None:
    base = base_with(models_dir, tmp_path, 123, 124)
    server = await start(base, all_versions=True)
    try:
        shutil.rmtree(base / "00000124")
        await asyncio.wait_for(server.core.poll_file_system(), STEP_TIMEOUT)
        assert await states(http, server) == [(124, "END"), (123, "AVAILABLE")]
        assert await served_version(http, server) == 123
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


def test_polling_defaults_to_tf_servings_one_second() -> None:
    assert ModelServer().core.file_system_poll_wait_seconds == 1.0
