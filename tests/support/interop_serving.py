"""Running the emulator in interop tests with every wait bounded (also on Python 3.10)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from tfs_async.testing import ModelServer

START_STOP_TIMEOUT = 60.0  # seconds; generous for 2 busy cores
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)


@asynccontextmanager
async def running(server: ModelServer) -> AsyncIterator[ModelServer]:
    """``server`` started and, whatever happens, stopped; both bounded in time."""
    await asyncio.wait_for(server.start(), START_STOP_TIMEOUT)
    try:
        yield server
    finally:
        await asyncio.wait_for(server.stop(), START_STOP_TIMEOUT)
