"""Transport connections, through the Client: balancing, pool fairness, leaks, loops, forks."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from client_harness import listeners
from client_support import STEP, half_plus_two, within

from tfs_async.client import Client
from tfs_async.errors import DeadlineExceededError
from tfs_async.testing import ModelServer, ModelServerProcess, PythonModel, ServerCore, signature
from tfs_async.transport.grpc import GrpcTransport
from tfs_async.transport.http import HttpTransport


def whoami(replica: int) -> PythonModel:
    """A model answering which replica served the call."""
    return PythonModel(
        "whoami",
        {
            "serving_default": signature(
                lambda t: {"replica": np.full(t["x"].shape, replica, np.int64)},
                inputs={"x": ("DT_FLOAT", [-1])},
                outputs={"replica": ("DT_INT64", [-1])},
            )
        },
    )


@pytest_asyncio.fixture
async def replicas() -> AsyncIterator[list[ModelServer]]:
    async with AsyncExitStack() as stack:
        servers = []
        for i in range(3):
            async with within(STEP):
                servers.append(
                    await stack.enter_async_context(ModelServer([whoami(i)], rest_port=None))
                )
        yield servers


async def test_three_replicas_behind_one_grpc_target(replicas: list[ModelServer]) -> None:
    target = "ipv4:" + ",".join(s.grpc_target for s in replicas)
    async with Client(target, timeout=STEP) as client:
        await client.connect(timeout=STEP)
        answers = [
            int((await client.predict("whoami", {"x": np.zeros(1, np.float32)}))["replica"][0])
            for _ in range(30)
        ]
    counts = Counter(answers)
    assert set(counts) == {0, 1, 2}
    assert min(counts.values()) >= 5  # round robin, not one sticky replica


async def test_max_connection_age_replaces_channels(replicas: list[ModelServer]) -> None:
    transport = GrpcTransport(replicas[0].grpc_target, pool_size=2, max_connection_age=0.0)
    async with Client(transport, timeout=STEP) as client:
        first = list(transport._channels)
        await client.predict("whoami", {"x": np.zeros(1, np.float32)})
        await client.predict("whoami", {"x": np.zeros(1, np.float32)})
        assert not set(map(id, first)) & set(map(id, transport._channels))


def gated(
    order: list[int], gate: asyncio.Event, busy: asyncio.Event, busy_at: int = 2
) -> PythonModel:
    """Records each caller id and holds calls until ``gate``; ``busy``: ``busy_at`` held."""

    async def run(t: dict[str, Any]) -> dict[str, Any]:
        order.append(int(t["x"][0]))
        if len(order) >= busy_at:
            busy.set()
        await gate.wait()
        return {"y": t["x"]}

    return PythonModel(
        "gated",
        {
            "serving_default": signature(
                run, inputs={"x": ("DT_FLOAT", [-1])}, outputs={"y": ("DT_FLOAT", [-1])}
            )
        },
    )


async def test_http_pool_serves_callers_first_come_first_served() -> None:
    order: list[int] = []
    gate, busy = asyncio.Event(), asyncio.Event()
    async with ModelServer([gated(order, gate, busy)], grpc_port=None) as server:
        transport = HttpTransport(server.rest_url, pool_size=2)
        async with Client(transport, timeout=STEP) as client:
            await client.metadata("gated")
            gate.set()
            await client.predict("gated", {"x": np.array([-1.0], np.float32)})
            order.clear()
            gate.clear()

            async def call(i: int) -> None:
                await client.predict("gated", {"x": np.array([float(i)], np.float32)})

            async with within(STEP):
                tasks = [asyncio.create_task(call(i)) for i in range(40)]
                await busy.wait()  # both pooled connections are taken
                late = [asyncio.create_task(call(100 + i)) for i in range(10)]
                gate.set()
                await asyncio.gather(*tasks, *late)
    # Two connections may swap neighbours, never overtake by more than the pool.
    assert sorted(order) == sorted([*range(40), *range(100, 110)])
    for position, caller in enumerate(order):
        expected = position if caller < 100 else 40 + caller - 100
        assert abs(position - expected) <= 2, order


@pytest.fixture(scope="module")
def process_server(models_dir: Path) -> Iterator[ModelServerProcess]:
    """half_plus_two served from another process: this loop holds only the client's tasks."""
    with ModelServerProcess(
        model_name="half_plus_two",
        model_base_path=models_dir / "saved_model_half_plus_two_cpu",
        startup_timeout=STEP * 3,
    ) as srv:
        yield srv


def _targets(srv: ModelServerProcess) -> list[str]:
    return [f"grpc://{srv.grpc_target}", srv.rest_url]


async def test_close_releases_everything(process_server: ModelServerProcess) -> None:
    before = asyncio.all_tasks()
    for target in _targets(process_server):
        client = Client(target, timeout=STEP, pool_size=3)
        await asyncio.gather(
            *(client.predict("half_plus_two", np.array([1.0], np.float32)) for _ in range(10))
        )
        transport = client.transport
        await client.close()
        await client.close()  # idempotent
        assert client.closed
        with pytest.raises(RuntimeError, match="closed"):
            await client.predict("half_plus_two", np.array([1.0], np.float32))
        if isinstance(transport, HttpTransport):
            assert transport._session is None
        else:
            assert isinstance(transport, GrpcTransport)
            assert transport._channels == []
    assert asyncio.all_tasks() <= before


def test_one_client_in_two_event_loops(process_server: ModelServerProcess) -> None:
    for target in _targets(process_server):
        client = Client(target, timeout=STEP)

        async def use(c: Client = client) -> list[float]:
            result = await c.predict("half_plus_two", np.array([1.0], np.float32))
            return [float(v) for v in result["y"]]

        assert asyncio.run(use()) == [2.5]
        # A second loop: the first loop's connections died with it; no hang.
        assert asyncio.run(use()) == [2.5]
        asyncio.run(client.close())


async def test_waiting_for_a_pooled_connection_counts_against_the_deadline() -> None:
    order: list[int] = []
    gate, busy = asyncio.Event(), asyncio.Event()
    async with ModelServer([gated(order, gate, busy, 1)], grpc_port=None) as server:
        transport = HttpTransport(server.rest_url, pool_size=1)
        async with Client(transport, timeout=STEP, max_retries=0) as client:
            await client.metadata("gated")
            holder = asyncio.create_task(
                client.predict("gated", {"x": np.array([1.0], np.float32)})
            )
            try:
                async with within(STEP):
                    await busy.wait()  # the only connection is taken
                started = time.monotonic()
                with pytest.raises(DeadlineExceededError, match="no free connection"):
                    await client.predict("gated", {"x": np.array([2.0], np.float32)}, timeout=0.3)
                assert time.monotonic() - started < 0.3 + 1.0
            finally:
                gate.set()
                async with within(STEP):
                    await holder


def _predict_in_child(client: Client, answers: Any) -> None:
    async def use() -> float:
        result = await client.predict("half_plus_two", np.array([3.0], np.float32))
        await client.close()
        return float(result["y"][0])

    answers.put(asyncio.run(use()))


async def test_http_client_works_in_a_forked_child(process_server: ModelServerProcess) -> None:
    async with Client(process_server.rest_url, timeout=STEP) as client:
        await client.predict("half_plus_two", np.array([1.0], np.float32))
        context = multiprocessing.get_context("fork")
        answers = context.Queue()
        child = context.Process(target=_predict_in_child, args=(client, answers))
        child.start()
        try:
            # The child's own loop and connections; the parent's stay usable.
            answer = await asyncio.to_thread(answers.get, True, STEP)
            await asyncio.to_thread(child.join, STEP)
        finally:
            if child.is_alive():
                child.kill()
        assert answer == 3.5
        assert child.exitcode == 0
        again = await client.predict("half_plus_two", np.array([1.0], np.float32))
    assert float(again["y"][0]) == 2.5


async def test_grpc_pool_spreads_calls_over_separate_connections(models_dir: Path) -> None:
    core = ServerCore([half_plus_two(models_dir)])
    async with within(STEP):
        await core.start()
    try:
        async with listeners(core) as where:
            target = f"grpc://127.0.0.1:{where.grpc_port}"
            async with Client(target, timeout=STEP, pool_size=3) as client:
                for _ in range(12):
                    await client.predict("half_plus_two", {"x": np.array([1.0], np.float32)})
    finally:
        async with within(STEP):
            await core.stop()
    # One TCP connection (client port) per pooled channel, used round robin.
    assert len(where.peers) == 12
    assert len(set(where.peers)) == 3
    assert Counter(where.peers).most_common(1)[0][1] == 4


async def test_recreating_clients_leaks_no_threads_or_tasks(
    process_server: ModelServerProcess,
) -> None:
    async def use_once(target: str) -> None:
        async with Client(target, timeout=STEP) as client:
            await client.predict("half_plus_two", np.array([1.0], np.float32))

    def threads() -> int:
        # The loop's default executor (DNS lookups run there) grows its bounded pool
        # whenever no worker happens to be idle yet: that is not a leak. grpc.aio runs
        # its poller thread while any of its objects is alive: collect the dead ones
        # first, so that the count does not depend on when the garbage collector ran.
        gc.collect()
        return sum(not t.name.startswith("asyncio_") for t in threading.enumerate())

    for target in _targets(process_server):  # warm up: grpc starts its threads once
        await use_once(target)
    before, tasks = threads(), asyncio.all_tasks()
    for _ in range(10):
        for target in _targets(process_server):
            await use_once(target)
    assert threads() <= before
    assert asyncio.all_tasks() <= tasks
