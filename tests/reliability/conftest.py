"""Fixtures for the reliability tests: emulator servers on real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, double_model, within
from tfs_async.testing import FaultPlan, ModelServer, PythonModel, signature


def expand_model() -> PythonModel:
    """serving_default n (int64 [1]) -> y = n float32 zeros: a small request, a large answer."""
    return PythonModel(
        "expand",
        {
            "serving_default": signature(
                lambda t: {"y": np.zeros(int(t["n"][0]), np.float32)},
                inputs={"n": ("DT_INT64", [1])},
                outputs={"y": ("DT_FLOAT", [-1])},
            )
        },
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ModelServer]:
    """A running emulator serving "double" (versions 1, 2) and "expand"; ``faults.calls``
    counts the calls that reached it."""
    async with within(STEP):
        srv = ModelServer([double_model(), expand_model()], faults=FaultPlan(seed=0))
        await srv.start()
    try:
        yield srv
    finally:
        async with within(STEP):
            await srv.stop()


@pytest.fixture(params=["grpc", "http"])
def protocol(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs once per transport."""
    return str(request.param)
