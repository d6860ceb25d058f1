"""Batching test fixtures: a recording model on the emulator over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.batching import Recorder
from tests.support.client import PROTOCOLS, STEP, within
from tfs_async.testing import FaultPlan, ModelServer


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs once per transport."""
    return str(request.param)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest_asyncio.fixture
async def server(rec: Recorder) -> AsyncIterator[ModelServer]:
    """An emulator serving the recording model, with an empty fault plan."""
    async with within(STEP):
        srv = ModelServer([rec.model()], faults=FaultPlan(seed=7))
        await srv.start()
    try:
        yield srv
    finally:
        rec.release()
        async with within(STEP):
            await srv.stop()
