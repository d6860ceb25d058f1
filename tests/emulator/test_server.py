"""ModelServer lifecycle: ports, two servers, restart, disabled listeners, shutdown, reload."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
import trustme

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import (
    get_model_status_pb2,
    model_management_pb2,
    model_server_config_pb2,
    predict_pb2,
    types_pb2,
)
from tfs_async.testing import ModelServer, PythonModel

TIMEOUT = 10.0  # every await here is bounded by this many seconds


def _status_call(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary(
        _methods.GET_MODEL_STATUS,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=get_model_status_pb2.GetModelStatusResponse.FromString,
    )


async def _grpc_versions(srv: ModelServer, model: str) -> list[tuple[int, str]]:
    async with grpc.aio.insecure_channel(srv.grpc_target) as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        response = await _status_call(channel)(request, timeout=TIMEOUT)
    return [
        (s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
        for s in response.model_version_status
    ]


async def _rest_status(srv: ModelServer, model: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
        session.get(f"{srv.rest_url}/v1/models/{model}") as resp,
    ):
        return resp.status, json.loads(await resp.read())


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_port_zero_binds_free_localhost_ports(server: ModelServer) -> None:
    assert server.grpc_port
    assert server.rest_port
    assert server.grpc_port != server.rest_port
    assert server.grpc_target == f"127.0.0.1:{server.grpc_port}"
    assert server.rest_url == f"http://127.0.0.1:{server.rest_port}"
    async with asyncio.timeout(TIMEOUT):
        assert await _grpc_versions(server, "double") == [(2, "AVAILABLE"), (1, "AVAILABLE")]
        status, body = await _rest_status(server, "double")
    assert status == 200
    assert [s["version"] for s in body["model_version_status"]] == ["2", "1"]


async def test_two_servers_at_once(make_double_model: Callable[..., PythonModel]) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        ModelServer([make_double_model("a")]) as first,
        ModelServer([make_double_model("b")]) as second,
    ):
        assert {first.grpc_port, first.rest_port}.isdisjoint({second.grpc_port, second.rest_port})
        assert (await _rest_status(first, "a"))[0] == 200
        assert (await _rest_status(second, "a"))[0] == 404
        assert await _grpc_versions(second, "b") == [(1, "AVAILABLE")]


async def test_restart_keeps_ports_and_models(server: ModelServer) -> None:
    ports = (server.grpc_port, server.rest_port)
    async with asyncio.timeout(TIMEOUT):
        await server.restart()
        assert (server.grpc_port, server.rest_port) == ports
        assert await _grpc_versions(server, "double") == [(2, "AVAILABLE"), (1, "AVAILABLE")]
        assert (await _rest_status(server, "double"))[0] == 200


async def test_a_disabled_listener_is_absent(
    make_double_model: Callable[..., PythonModel],
) -> None:
    async with asyncio.timeout(TIMEOUT), ModelServer([make_double_model()], grpc_port=None) as srv:
        with pytest.raises(RuntimeError, match="gRPC"):
            _ = srv.grpc_target
        assert (await _rest_status(srv, "double"))[0] == 200
    async with asyncio.timeout(TIMEOUT), ModelServer([make_double_model()], rest_port=None) as srv:
        with pytest.raises(RuntimeError, match="REST"):
            _ = srv.rest_url
        assert await _grpc_versions(srv, "double") == [(1, "AVAILABLE")]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ModelServer(grpc_port=None, rest_port=None)
    with pytest.raises(ValueError, match="must differ"):
        ModelServer(grpc_port=8500, rest_port=8500)


async def test_a_busy_port_fails_start_cleanly(
    server: ModelServer, make_double_model: Callable[..., PythonModel]
) -> None:
    before = {t for t in asyncio.all_tasks() if not t.done()}
    clash = ModelServer([make_double_model()], grpc_port=None, rest_port=server.rest_port)
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            await clash.start()
    assert not clash.running
    assert {t for t in asyncio.all_tasks() if not t.done()} <= before


async def test_stop_leaves_no_tasks_and_closes_ports(
    make_double_model: Callable[..., PythonModel],
    no_new_tasks: Callable[[set[asyncio.Task[Any]]], None],
) -> None:
    before = {t for t in asyncio.all_tasks() if not t.done() and t is not asyncio.current_task()}
    srv = ModelServer([make_double_model()])
    async with asyncio.timeout(TIMEOUT):
        await srv.start()
        ports = (srv.grpc_port, srv.rest_port)
        assert (await _rest_status(srv, "double"))[0] == 200
        await _grpc_versions(srv, "double")
        await srv.stop()
        await srv.stop()  # idempotent
        for port in ports:
            assert port is not None
            assert await _refused(port)
    no_new_tasks(before)


async def test_tensor_content_switch(make_double_model: Callable[..., PythonModel]) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "double"
    x = request.inputs["x"]
    x.dtype = types_pb2.DT_FLOAT
    x.tensor_shape.dim.add(size=2)
    x.float_val.extend([1.0, 2.0])
    for as_content in (False, True):
        async with (
            asyncio.timeout(TIMEOUT),
            ModelServer(
                [make_double_model()], enable_serialization_as_tensor_content=as_content
            ) as srv,
            grpc.aio.insecure_channel(srv.grpc_target) as channel,
        ):
            call = channel.unary_unary(
                _methods.PREDICT,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=predict_pb2.PredictResponse.FromString,
            )
            y = (await call(request, timeout=TIMEOUT)).outputs["y"]
            # REST answers the same numbers whichever encoding gRPC uses.
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{srv.rest_url}/v1/models/double:predict", data=b'{"instances": [1.0, 2.0]}'
                ) as resp,
            ):
                assert json.loads(await resp.read()) == {"predictions": [3.0, 5.0]}
        if as_content:
            assert not y.float_val
            assert y.tensor_content == b"\x00\x00\x40\x40\x00\x00\xa0\x40"  # float32 3.0, 5.0
        else:
            assert list(y.float_val) == [3.0, 5.0]
            assert not y.tensor_content


async def test_grpc_deadline_becomes_deadline_exceeded(
    make_gated_model: Callable[[str, asyncio.Event, asyncio.Event], PythonModel],
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "slow"
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].tensor_shape.dim.add(size=1)
    request.inputs["x"].float_val.append(1.0)
    async with (
        asyncio.timeout(TIMEOUT),
        ModelServer([make_gated_model("slow", gate, entered)]) as srv,
        grpc.aio.insecure_channel(srv.grpc_target) as channel,
    ):
        call = channel.unary_unary(
            _methods.PREDICT,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(request, timeout=0.3)
        gate.set()
    assert entered.is_set()
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_rest_timeout_gives_504(
    make_gated_model: Callable[[str, asyncio.Event, asyncio.Event], PythonModel],
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    async with (
        asyncio.timeout(TIMEOUT),
        ModelServer([make_gated_model("slow", gate, entered)], rest_api_timeout_in_ms=200) as srv,
        aiohttp.ClientSession() as session,
        session.post(f"{srv.rest_url}/v1/models/slow:predict", data=b'{"inputs": [1.0]}') as resp,
    ):
        body = json.loads(await resp.read())
        gate.set()
    assert entered.is_set()
    assert resp.status == 504
    assert set(body) == {"error"}


async def test_hot_reload_visible_over_both_protocols(
    make_double_model: Callable[..., PythonModel],
) -> None:
    models = [make_double_model("a"), make_double_model("b")]
    config = "model_config_list { config { name: 'a' base_path: '/unused/a' } }"
    async with (
        asyncio.timeout(TIMEOUT),
        ModelServer(models, config=config) as srv,
        grpc.aio.insecure_channel(srv.grpc_target) as channel,
    ):
        assert (await _rest_status(srv, "b"))[0] == 404
        reload = channel.unary_unary(
            _methods.HANDLE_RELOAD_CONFIG,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=model_management_pb2.ReloadConfigResponse.FromString,
        )
        request = model_management_pb2.ReloadConfigRequest()
        for name in ("a", "b"):
            entry = request.config.model_config_list.config.add()
            entry.name, entry.base_path = name, f"/unused/{name}"
        response = await reload(request, timeout=TIMEOUT)
        assert response.status.error_code == 0
        await srv.core.wait_idle()
        status, body = await _rest_status(srv, "b")
        assert status == 200
        assert body["model_version_status"][0]["state"] == "AVAILABLE"
        assert await _grpc_versions(srv, "b") == [(1, "AVAILABLE")]


async def test_config_file_polling(
    tmp_path: Path, make_double_model: Callable[..., PythonModel]
) -> None:
    config_file = tmp_path / "models.config"
    config_file.write_text("model_config_list { config { name: 'a' base_path: '/unused/a' } }")
    srv = ModelServer(
        [make_double_model("a"), make_double_model("b")],
        model_config_file=config_file,
        model_config_file_poll_wait_seconds=0.05,
    )
    polled = asyncio.Event()
    original = srv.core.poll_config_file

    async def observed_poll() -> None:
        await original()
        polled.set()

    srv.core.poll_config_file = observed_poll  # type: ignore[method-assign]
    async with asyncio.timeout(TIMEOUT), srv:
        assert (await _rest_status(srv, "b"))[0] == 404
        config = model_server_config_pb2.ModelServerConfig()
        for name in ("a", "b"):
            entry = config.model_config_list.config.add()
            entry.name, entry.base_path = name, f"/unused/{name}"
        config_file.write_text(str(config))
        # Two poll rounds: the first may have started before the file changed.
        for _ in range(2):
            polled.clear()
            await polled.wait()
        await srv.core.wait_idle()
        assert await _grpc_versions(srv, "b") == [(1, "AVAILABLE")]
        assert (await _rest_status(srv, "b"))[0] == 200


async def test_tls_on_both_listeners(make_double_model: Callable[..., PythonModel]) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ssl)
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    grpc_credentials = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]
    )
    async with (
        asyncio.timeout(TIMEOUT),
        ModelServer(
            [make_double_model()], grpc_credentials=grpc_credentials, ssl_context=server_ssl
        ) as srv,
    ):
        assert srv.rest_url.startswith("https://127.0.0.1:")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{srv.rest_url}/v1/models/double", ssl=client_ssl) as resp,
        ):
            assert resp.status == 200
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        async with grpc.aio.secure_channel(srv.grpc_target, credentials) as channel:
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "double"
            response = await _status_call(channel)(request, timeout=TIMEOUT)
        assert [s.version for s in response.model_version_status] == [1]
        # A plaintext client cannot talk to the TLS listener.
        async with grpc.aio.insecure_channel(srv.grpc_target) as plain:
            with pytest.raises(grpc.aio.AioRpcError):
                await _status_call(plain)(request, timeout=TIMEOUT)


async def test_start_again_after_stop(make_double_model: Callable[..., PythonModel]) -> None:
    srv = ModelServer([make_double_model()])
    async with asyncio.timeout(TIMEOUT):
        for _ in range(2):
            await srv.start()
            assert await _grpc_versions(srv, "double") == [(1, "AVAILABLE")]
            await srv.stop()
            assert srv.grpc_port is None
            assert not srv.running
