"""Ride-through: a call made while the server is down waits for it within its deadline and is
re-sent once it is back, for free; failures that may have reached the server follow the policy.

Against ``tfs-async serve`` in a child process, killed with SIGKILL and restarted on the
same ports (the ``tfs_server_process`` fixture).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.support.client import STEP, target_of, within
from tfs_async import (
    Client,
    ConnectionFailedError,
    DeadlineExceededError,
    NotSentError,
    UnavailableError,
)
from tfs_async.pytest_plugin import ServerProcess
from tfs_async.testing import Fault, ModelServer
from tfs_async.transport.base import Transport
from tfs_async.transport.grpc import GrpcTransport
from tfs_async.transport.http import HttpTransport

X = {"x": np.array([1.0, 5.0], np.float32)}
Y = [2.5, 4.5]


class WatchedGrpc(GrpcTransport):
    """The real gRPC transport, telling the test when a call starts waiting for the server."""

    waiting: asyncio.Event | None = None

    async def wait_for_server(self, timeout: float | None) -> bool:
        assert self.waiting is not None
        self.waiting.set()
        return await super().wait_for_server(timeout)


class WatchedHttp(HttpTransport):
    """The real HTTP transport, telling the test when a call starts waiting for the server."""

    waiting: asyncio.Event | None = None

    async def wait_for_server(self, timeout: float | None) -> bool:
        assert self.waiting is not None
        self.waiting.set()
        return await super().wait_for_server(timeout)


def target_of_process(server: ServerProcess, protocol: str) -> str:
    return f"grpc://{server.grpc_target}" if protocol == "grpc" else server.rest_url


def watched(server: ServerProcess, protocol: str) -> tuple[Transport, asyncio.Event]:
    waiting = asyncio.Event()
    transport: WatchedGrpc | WatchedHttp
    if protocol == "grpc":
        transport = WatchedGrpc(server.grpc_target)
    else:
        transport = WatchedHttp(server.rest_url)
    transport.waiting = waiting
    return transport, waiting


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_a_call_made_while_the_server_is_down_succeeds_once_it_is_back(
    tfs_server_process: ServerProcess, protocol: str
) -> None:
    target = target_of_process(tfs_server_process, protocol)
    async with Client(target, timeout=STEP) as first, within(STEP):
        warm = await first.predict("half_plus_two", X)
    tfs_server_process.kill()
    # A new client: no pooled connection that might carry the request to the dead server.
    transport, waiting = watched(tfs_server_process, protocol)
    async with Client(transport, timeout=60.0, max_retries=0) as client:
        tokens = client._shared.budget.tokens
        call = asyncio.create_task(client.predict("half_plus_two", X))
        async with within(STEP):
            await waiting.wait()  # the call found no server and waits for one
        assert not call.done()
        async with within(60):
            await tfs_server_process.arestart()
            result = await call
    assert warm.output.reshape(-1).tolist() == Y
    assert result.output.reshape(-1).tolist() == Y
    # Re-sent with max_retries=0 and no budget spent: the re-send was a requeue.
    assert client._shared.budget.tokens >= tokens


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_fail_fast_while_the_server_is_down(
    tfs_server_process: ServerProcess, protocol: str
) -> None:
    target = target_of_process(tfs_server_process, protocol)
    async with Client(target, timeout=30.0) as client:
        async with within(STEP):
            await client.predict("half_plus_two", X)
        tfs_server_process.kill()
        fast = client.with_options(wait_for_ready=False, max_retries=0)
        async with within(STEP):
            # gRPC may first see its broken connection; the next call finds no server.
            with pytest.raises(ConnectionFailedError):
                await fast.predict("half_plus_two", X)
            with pytest.raises(NotSentError) as info:
                await fast.predict("half_plus_two", X)
    assert info.value.attempts == 1


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_waiting_for_a_server_ends_at_the_deadline(
    tfs_server_process: ServerProcess, protocol: str
) -> None:
    target = target_of_process(tfs_server_process, protocol)
    async with Client(target, timeout=30.0) as client:
        async with within(STEP):
            await client.predict("half_plus_two", X)
        tfs_server_process.kill()
        async with within(STEP):
            with pytest.raises((ConnectionFailedError, DeadlineExceededError)):
                # The first call may see the connection drop (maybe sent: the policy's).
                await client.with_options(max_retries=0).predict("half_plus_two", X, timeout=1.0)
            with pytest.raises(DeadlineExceededError, match="no server could be reached") as info:
                await client.predict("half_plus_two", X, timeout=0.5)
    assert isinstance(info.value.__cause__, NotSentError)


async def test_a_dropped_connection_may_have_reached_the_server(
    server: ModelServer, protocol: str
) -> None:
    # The request was written: not a free re-send, the retry policy decides.
    assert server.faults is not None
    server.faults.add(Fault(method="predict", drop_rate=1.0))
    target = target_of(server, protocol)
    async with Client(target, timeout=STEP, max_retries=0) as client, within(STEP):
        with pytest.raises(UnavailableError) as info:
            await client.predict("double", {"x": np.array([1.0], np.float32)})
    assert not isinstance(info.value, NotSentError)
    assert info.value.attempts == 1
