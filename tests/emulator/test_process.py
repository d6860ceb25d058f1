"""ModelServerProcess: the emulator in a child process, sync and async, without leaks or zombies."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import predict_pb2, types_pb2
from tfs_async.testing import ModelServerProcess, ServerProcessError

TIMEOUT = 30.0  # child start-up imports grpc, aiohttp and numpy on a busy machine

FACTORY = """
import numpy as np
from tfs_async.testing import PythonModel, signature

def build():
    sig = signature(
        lambda t: {"y": (t["x"] + 1).astype(np.float32)},
        inputs={"x": ("DT_FLOAT", [-1])},
        outputs={"y": ("DT_FLOAT", [-1])},
    )
    return PythonModel("plus_one", {"serving_default": sig})
"""


def _reaped(pid: int) -> bool:
    """True when ``pid`` is no child of ours any more (exited and waited for)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_sync_context_manager_serves_and_reaps(models_dir: Path) -> None:
    with ModelServerProcess(
        model_name="hpt",
        model_base_path=models_dir / "saved_model_half_plus_two_cpu",
        startup_timeout=TIMEOUT,
    ) as server:
        pid = server.pid
        assert server.running
        assert server.grpc_target.startswith("127.0.0.1:")
        assert server.rest_url.startswith("http://127.0.0.1:")

        async def predict() -> object:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as s,
                s.post(f"{server.rest_url}/v1/models/hpt:predict", data=b'{"inputs": [1.0]}') as r,
            ):
                return json.loads(await r.read())

        assert asyncio.run(predict()) == {"outputs": [2.5]}
    assert pid is not None
    assert not server.running
    assert _reaped(pid)
    assert server.stop() is None  # idempotent


async def test_async_context_manager_with_python_models(tmp_path: Path) -> None:
    (tmp_path / "process_factory_models.py").write_text(FACTORY)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    server = ModelServerProcess(
        python_models=["process_factory_models:build"], env=env, startup_timeout=TIMEOUT
    )
    async with server:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "plus_one"
        request.inputs["x"].dtype = types_pb2.DT_FLOAT
        request.inputs["x"].tensor_shape.dim.add(size=2)
        request.inputs["x"].float_val.extend([1.0, 2.0])
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            call = channel.unary_unary(
                _methods.PREDICT,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=predict_pb2.PredictResponse.FromString,
            )
            response = await call(request, timeout=TIMEOUT)
        pid = server.pid
    assert list(response.outputs["y"].float_val) == [2.0, 3.0]
    assert pid is not None
    assert _reaped(pid)


async def test_stop_reports_a_clean_exit(models_dir: Path) -> None:
    server = ModelServerProcess(
        model_base_path=models_dir / "saved_model_half_plus_two_cpu", startup_timeout=TIMEOUT
    )
    await server.astart()
    assert await server.astop() == 0


def test_start_failure_raises_with_stderr_and_leaves_no_child(tmp_path: Path) -> None:
    server = ModelServerProcess(
        model_config_file=tmp_path / "missing.config", startup_timeout=TIMEOUT
    )
    with pytest.raises(ServerProcessError, match="tfs-async serve:"):
        server.start()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.grpc_target


def test_double_start_is_refused(models_dir: Path) -> None:
    with ModelServerProcess(
        model_base_path=models_dir / "saved_model_half_plus_two_cpu", startup_timeout=TIMEOUT
    ) as server:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
        assert server.running


async def test_faults_cross_the_process_boundary(models_dir: Path) -> None:
    server = ModelServerProcess(
        model_name="hpt",
        model_base_path=models_dir / "saved_model_half_plus_two_cpu",
        faults=[{"method": "predict", "error_rate": 1.0, "code": "ABORTED", "times": 1}],
        startup_timeout=TIMEOUT,
    )
    async with (
        server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
    ):
        statuses = []
        for _ in range(2):
            url = f"{server.rest_url}/v1/models/hpt:predict"
            async with session.post(url, data=b'{"inputs": [1.0]}') as resp:
                statuses.append((resp.status, json.loads(await resp.read())))
    assert statuses == [(409, {"error": "injected fault"}), (200, {"outputs": [2.5]})]


def _ipv6_loopback_available() -> bool:
    """True when this machine can bind a socket on ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_ipv6_addresses_are_bracketed(models_dir: Path) -> None:
    server = ModelServerProcess(
        host="::1",
        model_name="hpt",
        model_base_path=models_dir / "saved_model_half_plus_two_cpu",
        startup_timeout=TIMEOUT,
    )
    if not _ipv6_loopback_available():
        # No IPv6 loopback here: check the URL building on the real object, unstarted.
        server.grpc_port, server.rest_port = 8500, 8501
        assert server.grpc_target == "[::1]:8500"
        assert server.rest_url == "http://[::1]:8501"
        return
    with server:
        assert server.grpc_target == f"[::1]:{server.grpc_port}"
        assert server.rest_url == f"http://[::1]:{server.rest_port}"

        async def predict() -> tuple[object, list[float]]:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as s,
                s.post(f"{server.rest_url}/v1/models/hpt:predict", data=b'{"inputs": [1.0]}') as r,
            ):
                rest = json.loads(await r.read())
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "hpt"
            request.inputs["x"].dtype = types_pb2.DT_FLOAT
            request.inputs["x"].tensor_shape.dim.add(size=1)
            request.inputs["x"].float_val.append(1.0)
            async with grpc.aio.insecure_channel(server.grpc_target) as channel:
                call = channel.unary_unary(
                    _methods.PREDICT,
                    request_serializer=predict_pb2.PredictRequest.SerializeToString,
                    response_deserializer=predict_pb2.PredictResponse.FromString,
                )
                reply = await call(request, timeout=TIMEOUT)
            return rest, list(reply.outputs["y"].float_val)

        assert asyncio.run(predict()) == ({"outputs": [2.5]}, [2.5])
