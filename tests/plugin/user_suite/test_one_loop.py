"""Run with every test and fixture in one session-wide event loop, function-scoped servers.

What teardown leaves in that loop stays visible to the next test: nothing may.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tfs_async import Client
from tfs_async.testing import ModelServer

LOOPS: set[asyncio.AbstractEventLoop] = set()
SERVERS: list[ModelServer] = []
CLIENTS: list[Client] = []


@pytest.mark.asyncio
@pytest.mark.parametrize("round_", [1, 2])
async def test_predict(tfs_client: Client, tfs_server: ModelServer, round_: int) -> None:
    result = await tfs_client.predict("half_plus_two", {"x": np.array([4.0], np.float32)})
    assert result.output.tolist() == [4.0]
    LOOPS.add(asyncio.get_running_loop())
    SERVERS.append(tfs_server)
    CLIENTS.append(tfs_client)


@pytest.mark.asyncio
async def test_teardown_left_no_task() -> None:
    assert {asyncio.get_running_loop()} == LOOPS
    assert len(set(map(id, SERVERS))) == len(SERVERS) == 4
    assert not any(server.running for server in SERVERS)
    assert all(client.closed for client in CLIENTS)
    left = asyncio.all_tasks() - {asyncio.current_task()}
    assert not left, f"tasks left: {left}"
