"""Run with tfs_server_scope = session: one server and one client per protocol for all tests."""

from __future__ import annotations

import numpy as np
import pytest

from tfs_async import Client
from tfs_async.testing import ModelServer

SEEN: list[tuple[int, int]] = []
X = np.array([1.0], np.float32)


@pytest.mark.asyncio
async def test_first(tfs_client: Client, tfs_server: ModelServer) -> None:
    assert (await tfs_client.predict("half_plus_two", {"x": X})).output.tolist() == [2.5]
    SEEN.append((id(tfs_server), id(tfs_client)))


@pytest.mark.asyncio
async def test_second(tfs_client: Client, tfs_server: ModelServer) -> None:
    assert (await tfs_client.predict("half_plus_two", {"x": X})).output.tolist() == [2.5]
    SEEN.append((id(tfs_server), id(tfs_client)))


def test_one_server_and_one_client_per_protocol() -> None:
    assert len(SEEN) == 4
    assert len({server for server, _ in SEEN}) == 1
    assert len({client for _, client in SEEN}) == 2


@pytest.mark.asyncio(loop_scope="function")
async def test_in_a_narrower_loop(tfs_client: Client) -> None:
    raise AssertionError("must fail at setup: the shared server lives in another loop")
