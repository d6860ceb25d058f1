"""With TensorFlow: a version loads before AVAILABLE; TF1 models load as TF Serving loads them."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_serving  # noqa: F401  (the tier needs both packages)

from tests.support import reference as tfs_reference
from tests.support.interop_serving import HTTP_TIMEOUT, running
from tests.support.project_data import TF1_HALF_PLUS_THREE
from tfs_async._proto import get_model_status_pb2, model_pb2
from tfs_async.errors import StatusCode
from tfs_async.testing import ModelServer
from tfs_async.testing.reference_models import reference_functions
from tfs_async.testing.saved_model import SavedModel
from tfs_async.testing.tf_runtime import (
    SessionSignature,
    TensorFlowSignature,
    load_signature_functions,
)
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
    model = SavedModel("half_plus_three", TF1_HALF_PLUS_THREE)
    async with running(ModelServer([model])) as server:
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


async def test_the_asset_is_bound_and_the_main_op_run_at_load(tmp_path: Path) -> None:
    """The model's shift is read from assets/shift.txt by its main_op: edit it, the answers move."""
    base = tmp_path / "shifted"
    shutil.copytree(TF1_HALF_PLUS_THREE, base)
    (base / "00000123" / "assets" / "shift.txt").write_text("10\n")
    async with (
        running(ModelServer([SavedModel("shifted", base)])) as server,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
        http.post(
            f"{server.rest_url}/v1/models/shifted:predict", json={"instances": [1.0, 2.0, 5.0]}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        assert await response.json() == {"predictions": [10.5, 11.0, 12.5]}


def test_session_answers_equal_the_functions_served_without_tensorflow() -> None:
    session = load_signature_functions(TF1_HALF_PLUS_THREE / "00000123")
    python = reference_functions(TF1_HALF_PLUS_THREE)
    assert python is not None
    assert sorted(session) == sorted(python)
    x = np.array([-3.0, 0.0, 0.25, 1.0, 2.0, 5.0, 1e6], np.float32)
    np.testing.assert_array_equal(
        session["serving_default"]({"x": x})["y"], python["serving_default"]({"x": x})["y"]
    )
    examples = np.array(
        [
            tf.train.Example(
                features=tf.train.Features(
                    feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[v]))}
                )
            ).SerializeToString()
            for v in x.tolist()
        ],
        dtype=object,
    )
    key = "tensorflow/serving/regress"
    np.testing.assert_array_equal(
        session[key]({"inputs": examples})["outputs"],
        python[key]({"inputs": examples})["outputs"],
    )


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
