"""``python -m tfs_async.testing`` / ``tfs-async serve`` in a real subprocess."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tfs_async.testing import cli
from tfs_async.testing.cli import READY_PREFIX

TIMEOUT = 30.0  # child start-up imports grpc, aiohttp and numpy on a busy machine

FACTORY = """
from tfs_async.testing import PythonModel, signature

def build():
    sig = signature(
        lambda t: {"y": t["x"] * 10},
        inputs={"x": ("DT_FLOAT", [-1])},
        outputs={"y": ("DT_FLOAT", [-1])},
    )
    return [PythonModel("tenfold", {"serving_default": sig}, version=7)]
"""


async def _spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tfs_async.testing",
        "--port=0",
        "--rest_api_port=0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def _ready(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    assert line.startswith(READY_PREFIX), line
    ready: dict[str, Any] = json.loads(line[len(READY_PREFIX) :])
    return ready


async def _stop(proc: asyncio.subprocess.Process) -> tuple[int, bytes]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err


async def test_serves_a_saved_model_and_stops_on_sigterm(models_dir: Path) -> None:
    proc = await _spawn(
        "--model_name=hpt",
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        "--rest_api_timeout_in_ms=5000",
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            ready = await _ready(proc)
            assert ready["pid"] == proc.pid
            assert ready["host"] == "127.0.0.1"
            url = f"http://127.0.0.1:{ready['rest_port']}/v1/models/hpt:predict"
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, data=b'{"instances": [1.0, 2.0, 5.0]}') as resp,
            ):
                assert json.loads(await resp.read()) == {"predictions": [2.5, 3.0, 4.5]}
            code, err = await _stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, err.decode()
    assert b"Running gRPC ModelServer at 127.0.0.1:" in err


async def test_python_models_factory_and_sigint(tmp_path: Path) -> None:
    (tmp_path / "cli_factory_models.py").write_text(FACTORY)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = await _spawn("--python_models=cli_factory_models:build", env=env)
    try:
        async with asyncio.timeout(TIMEOUT):
            ready = await _ready(proc)
            url = f"http://127.0.0.1:{ready['rest_port']}/v1/models/tenfold"
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                body = json.loads(await resp.read())
            assert body["model_version_status"][0]["version"] == "7"
            proc.send_signal(signal.SIGINT)
            code, _ = await _stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0


async def test_disabled_rest_listener(models_dir: Path) -> None:
    proc = await _spawn(
        "--rest_api_port=-1",
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            ready = await _ready(proc)
            code, _ = await _stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert ready["rest_port"] is None
    assert isinstance(ready["grpc_port"], int)
    assert code == 0


async def test_start_failure_exits_non_zero_with_a_reason(tmp_path: Path) -> None:
    proc = await _spawn(f"--model_config_file={tmp_path / 'missing.config'}")
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 1
    assert out == b""
    assert b"tfs-async serve:" in err


def test_flags_use_tensorflow_model_server_names() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--port=9000",
            "--rest_api_port=9001",
            "--model_config_file=/m.config",
            "--model_config_file_poll_wait_seconds=5",
            "--rest_api_timeout_in_ms=100",
            "--enable_serialization_as_tensor_content=true",
            "--grpc_channel_arguments=grpc.max_concurrent_streams=10,a=b",
        ]
    )
    assert (args.port, args.rest_api_port) == (9000, 9001)
    assert args.model_config_file == "/m.config"
    assert args.model_config_file_poll_wait_seconds == 5
    assert args.rest_api_timeout_in_ms == 100
    assert args.enable_serialization_as_tensor_content is True
    assert args.host == "127.0.0.1"


def test_python_models_spec_errors() -> None:
    with pytest.raises(ValueError, match=r"package\.module:function"):
        cli.load_python_models("no_colon")
    with pytest.raises(TypeError, match="expected a ModelSource"):
        cli.load_python_models("os:getcwd")  # returns a str, not model sources
