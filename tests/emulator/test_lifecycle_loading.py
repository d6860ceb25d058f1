"""SavedModel versions load before they are AVAILABLE; a failed load ends in END with its error.

Over real sockets, gRPC (GetModelStatus) and REST (``GET /v1/models/<m>``).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout

from tfs_async import _grpc_methods as methods
from tfs_async._proto import get_model_status_pb2, model_management_pb2
from tfs_async.config import model_config, model_server_config
from tfs_async.errors import StatusCode
from tfs_async.testing import ModelServer
from tfs_async.types import VersionState

from .conftest import STEP_TIMEOUT, double_model, unary


@pytest_asyncio.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as session:
        yield session


def copy_half_plus_two(models_dir: Path, tmp_path: Path) -> Path:
    # The directory keeps its name: without TensorFlow the reference functions are found by it.
    base = tmp_path / "saved_model_half_plus_two_cpu"
    shutil.copytree(models_dir / "saved_model_half_plus_two_cpu", base)
    return base


async def grpc_status(server: ModelServer, name: str) -> list[tuple[int, str, str, str]]:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        call = unary(channel, methods.GET_MODEL_STATUS, get_model_status_pb2.GetModelStatusResponse)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        response = await call(request, timeout=STEP_TIMEOUT)
    return [
        (
            s.version,
            VersionState(s.state).name,
            StatusCode(s.status.error_code).name,
            s.status.error_message,
        )
        for s in response.model_version_status
    ]


async def rest_status(http: ClientSession, server: ModelServer, name: str) -> list[Any]:
    async with http.get(f"{server.rest_url}/v1/models/{name}") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
    return [
        (
            int(s["version"]),
            s["state"],
            s["status"]["error_code"],
            s["status"]["error_message"],
        )
        for s in body["model_version_status"]
    ]


async def test_corrupt_saved_model_ends_with_tf_serving_data_loss_status(
    models_dir: Path, tmp_path: Path, http: ClientSession
) -> None:
    base = copy_half_plus_two(models_dir, tmp_path)
    pb = base / "00000123" / "saved_model.pb"
    pb.write_bytes(b"\x0a\xff\xff\xff\xff not a SavedModel")
    config = model_server_config([model_config("m", str(base))])
    async with ModelServer(config=config) as server:
        expected = (123, "END", "DATA_LOSS", f"Can't parse {pb} as binary proto")
        assert await grpc_status(server, "m") == [expected]
        assert await rest_status(http, server, "m") == [expected]
        async with http.post(
            f"{server.rest_url}/v1/models/m:predict", json={"instances": [1.0]}
        ) as response:
            assert response.status == 404
            assert await response.json() == {"error": "Servable not found for request: Latest(m)"}


async def test_saved_model_is_loading_until_loaded_then_available_on_both_transports(
    models_dir: Path, tmp_path: Path, http: ClientSession
) -> None:
    base = copy_half_plus_two(models_dir, tmp_path)
    async with ModelServer([double_model("other")]) as server:
        gate = server.core.hold_loading("m")
        request = model_management_pb2.ReloadConfigRequest(
            config=model_server_config(
                [model_config("other", "/unused"), model_config("m", str(base))]
            )
        )
        reload = asyncio.create_task(server.core.reload_config(request))
        try:
            await gate.wait_reached(STEP_TIMEOUT)
            loading = (123, "LOADING", "OK", "")
            assert await grpc_status(server, "m") == [loading]
            assert await rest_status(http, server, "m") == [loading]
            # ReloadConfig answers only once the new model is AVAILABLE, as TF Serving's does.
            assert not reload.done()
            gate.release()
            response = await asyncio.wait_for(reload, STEP_TIMEOUT)
        finally:
            gate.release()
            await asyncio.wait_for(asyncio.gather(reload, return_exceptions=True), STEP_TIMEOUT)
        assert response.status.error_code == 0
        available = (123, "AVAILABLE", "OK", "")
        assert await grpc_status(server, "m") == [available]
        assert await rest_status(http, server, "m") == [available]
        async with http.post(
            f"{server.rest_url}/v1/models/m:predict", json={"instances": [1.0]}
        ) as response_http:
            assert await response_http.json() == {"predictions": [2.5]}


async def test_missing_meta_graph_ends_with_not_found(
    models_dir: Path, tmp_path: Path, http: ClientSession
) -> None:
    base = copy_half_plus_two(models_dir, tmp_path)
    config = model_server_config([model_config("m", str(base))])
    async with ModelServer([], config=config, rest_port=0) as server:
        assert (await grpc_status(server, "m"))[0][1] == "AVAILABLE"
    (base / "00000123" / "saved_model.pb").unlink()
    async with ModelServer([], config=config) as server:
        [(version, state, code, message)] = await rest_status(http, server, "m")
        assert (version, state, code) == (123, "END", "NOT_FOUND")
        assert message.startswith(
            "Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
        )
