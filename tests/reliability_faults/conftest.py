"""Fixtures for the fault, malformed-answer, soak, hostile-input and security tests.

Everything runs over real sockets on 127.0.0.1: the emulator, a TCP fault proxy
in front of it, or small raw servers written in the tests themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import PROTOCOLS, STEP, within
from tfs_async.testing import FaultPlan, ModelServer, PythonModel, signature
from tfs_async.testing.half_plus_two import half_plus_two_model

#: Rows of the ``big`` model's answer: 256 Ki float32, 1 MiB, far more than any
#: connection preamble, so resetting after 64 KiB of the answer is mid-response.
BIG_ROWS = 256 * 1024


def big_model() -> PythonModel:
    """``big``: x (float32 [-1]) -> y, ``BIG_ROWS`` copies of x's first value."""
    return PythonModel(
        "big",
        {
            "serving_default": signature(
                lambda t: {"y": np.full(BIG_ROWS, t["x"][0], np.float32)},
                inputs={"x": ("DT_FLOAT", [-1])},
                outputs={"y": ("DT_FLOAT", [-1])},
            )
        },
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ModelServer]:
    """The emulator serving half_plus_two and big, with an empty fault plan."""
    async with within(STEP):
        srv = ModelServer([half_plus_two_model(), big_model()], faults=FaultPlan(seed=9))
        await srv.start()
    try:
        yield srv
    finally:
        async with within(STEP):
            await srv.stop()


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs once per transport."""
    return str(request.param)
