"""tfs_server_process: the server in a child process that a test kills and restarts."""

from __future__ import annotations

import os

import numpy as np
import pytest
from leaks import grpc_pollers, snapshot

from tfs_async import Client, ConnectionFailedError, UnavailableError
from tfs_async.pytest_plugin import ServerProcess

BEFORE = snapshot()
PIDS: list[int] = []
X = np.array([[2.0]], np.float32)


@pytest.mark.asyncio
async def test_kill_and_restart_on_the_same_ports(tfs_server_process: ServerProcess) -> None:
    first = tfs_server_process.pid
    assert first is not None
    targets = (f"grpc://{tfs_server_process.grpc_target}", tfs_server_process.rest_url)
    for target in targets:
        async with Client(target, timeout=30.0) as client:
            assert (await client.predict("half_plus_two", {"x": X})).output.tolist() == [[3.0]]
            tfs_server_process.kill()
            assert not tfs_server_process.running
            # Failing fast: by default a call waits for the server until its deadline.
            fast = client.with_options(max_retries=0, wait_for_ready=False)
            with pytest.raises((ConnectionFailedError, UnavailableError)):
                await fast.predict("half_plus_two", {"x": X})
            await tfs_server_process.arestart()
            assert tfs_server_process.pid not in (None, first)
            assert (tfs_server_process.grpc_target, tfs_server_process.rest_url) == (
                targets[0].removeprefix("grpc://"),
                targets[1],
            )
            await client.wait_until_available("half_plus_two", timeout=30.0)
            assert (await client.predict("half_plus_two", {"x": X})).output.tolist() == [[3.0]]
    pid = tfs_server_process.pid
    assert pid is not None
    PIDS.append(pid)


class TestFactoryOverride:
    @pytest.fixture
    def tfs_models(self) -> str:
        return "user_models:build"

    @pytest.mark.asyncio
    async def test_child_serves_the_factory(self, tfs_server_process: ServerProcess) -> None:
        async with Client(tfs_server_process.rest_url, timeout=30.0) as client:
            result = await client.predict("hpt", {"x": X})
        assert result.output.tolist() == [[3.0]]
        pid = tfs_server_process.pid
        assert pid is not None
        PIDS.append(pid)


def test_teardown_left_nothing_behind() -> None:
    assert len(PIDS) == 2
    for pid in PIDS:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    sockets, children, threads = snapshot()
    assert sockets == BEFORE[0], f"sockets left: {sockets} open, {BEFORE[0]} before"
    assert children == BEFORE[1], "child processes left"
    assert threads == BEFORE[2], f"threads left: {threads - BEFORE[2]}"
    assert grpc_pollers() <= 1
