"""``--prefer_tflite_model`` without TensorFlow: the version ends with an error that says why.

Serving ``model.tflite`` needs TensorFlow's TF Lite interpreter (the interop
tier serves real TF Lite models: tests/interop/test_tflite.py). Where it is not
installed, the version must not pretend to be AVAILABLE: it ends, and both
transports' status answers say what to install.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc.aio
import pytest
from aiohttp import ClientSession, ClientTimeout

from tfs_async import _grpc_methods as methods
from tfs_async._proto import get_model_status_pb2
from tfs_async.errors import StatusCode
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel, tensorflow_available

from .conftest import STEP_TIMEOUT, unary

pytestmark = pytest.mark.skipif(
    tensorflow_available(), reason="TensorFlow is installed: the interop tier serves TF Lite"
)


async def test_the_version_ends_with_failed_precondition_naming_the_extra(tmp_path: Path) -> None:
    version = tmp_path / "lite" / "7"
    version.mkdir(parents=True)
    (version / "model.tflite").write_bytes(b"TFL3 is checked by the interpreter, not here")
    server = ModelServer([SavedModel("lite", version.parent, prefer_tflite_model=True)])
    await asyncio.wait_for(server.start(), STEP_TIMEOUT)
    try:
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            status_call = unary(
                channel, methods.GET_MODEL_STATUS, get_model_status_pb2.GetModelStatusResponse
            )
            reply = await status_call(
                get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "lite"}),
                timeout=STEP_TIMEOUT,
            )
        async with (
            ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as http,
            http.get(f"{server.rest_url}/v1/models/lite") as response,
        ):
            rest = json.loads(await response.read())
    finally:
        await asyncio.wait_for(server.stop(), STEP_TIMEOUT)
    (grpc_version,) = reply.model_version_status
    assert grpc_version.state == get_model_status_pb2.ModelVersionStatus.END
    assert grpc_version.status.error_code == StatusCode.FAILED_PRECONDITION
    assert "tfs-async[tensorflow]" in grpc_version.status.error_message
    (rest_version,) = rest["model_version_status"]
    assert rest_version["state"] == "END"
    assert rest_version["status"]["error_code"] == "FAILED_PRECONDITION"
    assert rest_version["status"]["error_message"] == grpc_version.status.error_message
