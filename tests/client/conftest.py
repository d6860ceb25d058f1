"""Fixtures for the client tests: emulator servers on real sockets, one client per protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.client import (
    ODD_NAME,
    PROTOCOLS,
    STEP,
    double_model,
    half_plus_two,
    target_of,
    within,
)
from tfs_async.client import Client
from tfs_async.testing import FaultPlan, ModelServer


@pytest_asyncio.fixture
async def server(models_dir: Path) -> AsyncIterator[ModelServer]:
    """A running emulator: half_plus_two, double (versions 1, 2) and an oddly named model."""
    models = [half_plus_two(models_dir), double_model(), double_model(ODD_NAME, (1,))]
    async with within(STEP):
        srv = ModelServer(models, faults=FaultPlan(seed=1))
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


@pytest_asyncio.fixture
async def client(server: ModelServer, protocol: str) -> AsyncIterator[Client]:
    """A client of ``server`` over ``protocol``, without retries unless a test asks."""
    async with Client(target_of(server, protocol), timeout=STEP, max_retries=0) as c:
        yield c
