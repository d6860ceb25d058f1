"""With TensorFlow: a version loads before AVAILABLE; TF1 models load as TF Serving loads them."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
import pytest
import tensorflow as tf
import tensorflow_serving  # noqa: F401  (the tier needs both packages)
import tfs_reference
from interop_serving import HTTP_TIMEOUT

from tfs_async._proto import get_model_status_pb2, model_pb2
from tfs_async.errors import StatusCode
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel
from tfs_async.testing.tf_runtime import SessionSignature, TensorFlowSignature
from tfs_async.types import VersionState

pytestmark = pytest.mark.interop

MODELS = tfs_reference.models_dir()
STEP = 120.0  # a TensorFlow import and load on a loaded machine


async def test_tensorflow_loads_the_version_before_it_is_available() -> None:
    model = SavedModel("hpt", MODELS / "saved_model_half_plus_two_tf2_cpu")
    async with ModelServer([model]) as server:
        loaded = server.core.resolve(model_pb2.ModelSpec(name="hpt"))
        # The TF function exists once AVAILABLE: nothing is left to load on the first request.
        assert isinstance(loaded.functions["serving_default"].function, TensorFlowSignature)


async def test_half_plus_three_is_loaded_into_a_session_and_serves() -> None:
    assert tf.__version__
    model = SavedModel("half_plus_three", MODELS / "saved_model_half_plus_three")
    async with ModelServer([model]) as server:
        loaded = server.core.resolve(model_pb2.ModelSpec(name="half_plus_three"))
        assert isinstance(loaded.functions["serving_default"].function, SessionSignature)
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
            http.post(
                f"{server.rest_url}/v1/models/half_plus_three:predict",
                json={"instances": [1.0, 2.0, 5.0]},
            ) as response,
        ):
            assert await response.json() == {"predictions": [3.5, 4.0, 5.5]}
        body = {
            "signature_name": "tensorflow/serving/regress",
            "examples": [{"x": 1.0}, {"x": 2.0}],
        }
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
            http.post(f"{server.rest_url}/v1/models/half_plus_three:regress", json=body) as reply,
        ):
            assert await reply.json() == {"results": [3.5, 4.0]}


async def test_unloadable_variables_end_the_version_with_tensorflows_error(tmp_path: Path) -> None:
    base = tmp_path / "broken"
    shutil.copytree(MODELS / "saved_model_half_plus_two_cpu", base)
    for data in (base / "00000123" / "variables").glob("variables.data-*"):
        data.write_bytes(b"")
    server = ModelServer([SavedModel("broken", base)])
    await asyncio.wait_for(server.start(), STEP)
    try:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "broken"
        status = (await server.core.get_model_status(request)).model_version_status[0]
        assert VersionState(status.state) == VersionState.END
        assert StatusCode(status.status.error_code) != StatusCode.OK
        assert status.status.error_message
    finally:
        await asyncio.wait_for(server.stop(), STEP)
