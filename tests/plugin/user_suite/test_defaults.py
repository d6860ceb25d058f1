"""The fixtures with no override: half_plus_two, both protocols, faults, nothing left behind."""

from __future__ import annotations

import numpy as np
import pytest
from leaks import grpc_pollers, snapshot

from tfs_async import Client, GrpcTransport, HttpTransport, UnavailableError
from tfs_async.errors import StatusCode
from tfs_async.testing import Fault, ModelServer

BEFORE = snapshot()
SERVERS: list[ModelServer] = []
CLIENTS: list[Client] = []
X = np.array([[1.0], [2.0], [5.0]], np.float32)


@pytest.mark.asyncio
async def test_default_model_is_half_plus_two(
    tfs_client: Client, tfs_server: ModelServer, request: pytest.FixtureRequest
) -> None:
    expected = {"grpc": GrpcTransport, "http": HttpTransport}[request.node.callspec.id]
    assert isinstance(tfs_client.transport, expected)
    result = await tfs_client.predict("half_plus_two", {"x": X})
    assert result.output.tolist() == [[2.5], [3.0], [4.5]]
    assert [status.version for status in await tfs_client.status("half_plus_two")] == [123]
    regressed = await tfs_client.regress("half_plus_two", {"x": 2.0}, signature="regress_x_to_y2")
    assert regressed.values.tolist() == [4.0]
    SERVERS.append(tfs_server)
    CLIENTS.append(tfs_client)


@pytest.mark.asyncio
async def test_faults_reach_the_client(tfs_client: Client, tfs_server: ModelServer) -> None:
    assert tfs_server.faults is not None
    assert tfs_server.faults.rules == ()
    tfs_server.faults.add(Fault(method="predict", error_rate=1.0, times=1))
    with pytest.raises(UnavailableError) as caught:
        await tfs_client.with_options(max_retries=0).predict("half_plus_two", {"x": X})
    assert caught.value.code == StatusCode.UNAVAILABLE
    result = await tfs_client.predict("half_plus_two", {"x": X})  # the rule is spent
    assert result.output.tolist() == [[2.5], [3.0], [4.5]]
    SERVERS.append(tfs_server)


def test_each_test_had_its_own_server() -> None:
    assert len(SERVERS) == 4
    assert len({id(server) for server in SERVERS}) == 4
    assert not any(server.running for server in SERVERS)
    assert len(CLIENTS) == 2
    assert all(client.closed for client in CLIENTS)


def test_teardown_left_nothing_behind() -> None:
    sockets, children, threads = snapshot()
    assert sockets == BEFORE[0], f"sockets left: {sockets} open, {BEFORE[0]} before"
    assert children == BEFORE[1], "child processes left"
    assert threads == BEFORE[2], f"threads left: {threads - BEFORE[2]}"
    assert grpc_pollers() <= 1
