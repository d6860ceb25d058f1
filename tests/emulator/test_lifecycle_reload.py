"""HandleReloadConfigRequest over gRPC: TF Serving's codes and messages; errors change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from google.protobuf import any_pb2

from tfs_async import _grpc_methods as methods
from tfs_async._proto import (
    get_model_status_pb2,
    model_management_pb2,
    model_server_config_pb2,
)
from tfs_async.config import model_config, model_server_config
from tfs_async.testing import ModelServer
from tfs_async.types import VersionState

from .conftest import STEP_TIMEOUT, double_model, unary

AVAILABLE, END = int(VersionState.AVAILABLE), int(VersionState.END)


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[ModelServer, grpc.aio.Channel]]:
    server = ModelServer([double_model("a"), double_model("b")], rest_port=None)
    await asyncio.wait_for(server.start(), STEP_TIMEOUT)
    channel = grpc.aio.insecure_channel(server.grpc_target)
    try:
        yield server, channel
    finally:
        await channel.close()
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)


async def reload_error(
    channel: grpc.aio.Channel, request: model_management_pb2.ReloadConfigRequest
) -> tuple[grpc.StatusCode, str]:
    call = unary(channel, methods.HANDLE_RELOAD_CONFIG, model_management_pb2.ReloadConfigResponse)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, timeout=STEP_TIMEOUT)
    return info.value.code(), info.value.details() or ""


async def states(channel: grpc.aio.Channel, name: str) -> list[tuple[int, int]]:
    call = unary(channel, methods.GET_MODEL_STATUS, get_model_status_pb2.GetModelStatusResponse)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = await call(request, timeout=STEP_TIMEOUT)
    return [(s.version, s.state) for s in response.model_version_status]


@pytest.mark.parametrize(
    "config",
    [
        model_server_config_pb2.ModelServerConfig(),
        model_server_config_pb2.ModelServerConfig(custom_model_config=any_pb2.Any()),
    ],
    ids=["no-config", "custom-model-config"],
)
async def test_reload_without_a_model_config_list_is_refused_and_keeps_every_model(
    served: tuple[ModelServer, grpc.aio.Channel],
    config: model_server_config_pb2.ModelServerConfig,
) -> None:
    server, channel = served
    before = server.core.config
    code, details = await reload_error(
        channel, model_management_pb2.ReloadConfigRequest(config=config)
    )
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ServerModelConfig type not supported by HandleReloadConfigRequest. "
        "Only ModelConfigList is currently supported",
    )
    assert server.core.config == before
    assert await states(channel, "a") == [(1, AVAILABLE)]
    assert await states(channel, "b") == [(1, AVAILABLE)]


@pytest.mark.parametrize(
    ("configs", "code", "message"),
    [
        (
            [model_config("a"), model_config("a")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Illegal to list model a multiple times in config list",
        ),
        (
            [model_config("c", "/models/c", platform="onnx")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Model c requests unsupported platform onnx",
        ),
        (
            [model_config("a", labels={"stable": 7})],
            grpc.StatusCode.FAILED_PRECONDITION,
            "Request to assign label to version 7 of model a, which is not currently "
            "available for inference",
        ),
        (
            [model_config("c", "relative/c")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expected model c to have an absolute path or URI; got base_path()=relative/c",
        ),
    ],
    ids=["duplicate-name", "unknown-platform", "label-unavailable", "relative-base-path"],
)
async def test_reload_errors_have_tf_serving_codes_and_change_nothing(
    served: tuple[ModelServer, grpc.aio.Channel],
    configs: list[model_server_config_pb2.ModelConfig],
    code: grpc.StatusCode,
    message: str,
) -> None:
    server, channel = served
    before = server.core.config
    request = model_management_pb2.ReloadConfigRequest(config=model_server_config(configs))
    assert await reload_error(channel, request) == (code, message)
    assert server.core.config == before
    assert await states(channel, "b") == [(1, AVAILABLE)]


async def test_empty_model_config_list_unloads_every_model(
    served: tuple[ModelServer, grpc.aio.Channel],
) -> None:
    # An empty *list* is a valid ModelConfigList: TF Serving unloads everything.
    server, channel = served
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.SetInParent()
    call = unary(channel, methods.HANDLE_RELOAD_CONFIG, model_management_pb2.ReloadConfigResponse)
    response = await call(
        model_management_pb2.ReloadConfigRequest(config=config), timeout=STEP_TIMEOUT
    )
    assert response.status.error_code == 0
    await server.core.wait_idle(STEP_TIMEOUT)
    assert await states(channel, "a") == [(1, END)]
