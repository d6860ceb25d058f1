"""Fixtures for the observability tests: the emulator's core behind recording listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.client import PROTOCOLS, STEP, double_model, half_plus_two, within
from tfs_async.testing import ServerCore


@pytest_asyncio.fixture
async def core(models_dir: Path) -> AsyncIterator[ServerCore]:
    """half_plus_two and double, served by the listeners each test opens."""
    core = ServerCore([half_plus_two(models_dir), double_model()])
    async with within(STEP):
        await core.start()
    yield core
    async with within(STEP):
        await core.stop()


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs once per transport."""
    return str(request.param)
