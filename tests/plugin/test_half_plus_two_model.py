"""The default model of the fixtures is TF Serving's half_plus_two, as TF Serving serves it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from tfs_async import Client
from tfs_async.testing import ModelServer, SavedModel
from tfs_async.testing.half_plus_two import half_plus_two_model

STEP = 30.0


@pytest_asyncio.fixture
async def server(models_dir: Path) -> AsyncIterator[ModelServer]:
    """The Python model as ``default`` beside the SavedModel it mirrors, as ``saved``."""
    saved = SavedModel("saved", models_dir / "saved_model_half_plus_two_cpu")
    server = ModelServer([half_plus_two_model("default"), saved])
    await asyncio.wait_for(server.start(), STEP)
    try:
        yield server
    finally:
        await asyncio.wait_for(server.stop(), STEP)


async def test_rest_metadata_is_tf_servings(server: ModelServer, models_dir: Path) -> None:
    # TF Serving's own expected GetModelMetadata answer for this model, served as "default".
    expected: Any = json.loads((models_dir / "half_plus_two_model_metadata.json").read_text())
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STEP)) as session,
        session.get(f"{server.rest_url}/v1/models/default/metadata") as response,
    ):
        assert response.status == 200
        assert await response.json() == expected


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_answers_as_the_saved_model_does(server: ModelServer, protocol: str) -> None:
    target = f"grpc://{server.grpc_target}" if protocol == "grpc" else server.rest_url
    async with Client(target, timeout=STEP) as client:
        mirrored = await client.metadata("default")
        saved = await client.metadata("saved")
        assert mirrored.signatures == saved.signatures
        for model in ("default", "saved"):
            # The known results listed with TF Serving's test data (tests/reference/models/NOTICE).
            x = np.array([2.0, 3.0, 4.0], np.float32)
            assert (await client.predict(model, {"x": x}))["y"].tolist() == [3.0, 3.5, 4.0]
            classified = await client.classify(model, {"x": 2.0}, signature="classify_x_to_y")
            assert classified.classes == [[("", 3.0)]]
            for signature, y in (("regress_x_to_y", 3.0), ("regress_x_to_y2", 4.0)):
                regressed = await client.regress(model, {"x": 2.0}, signature=signature)
                assert regressed.values.tolist() == [y]
            statuses = await client.status(model)
            assert [s.version for s in statuses] == [123]
