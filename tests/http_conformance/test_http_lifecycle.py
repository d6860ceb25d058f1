"""Both HTTP transports' connection lifecycle: FIFO pool, deadlines, close, two event loops."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.client import STEP, within
from tests.support.raw_http import Request, answer_with, response, scripted_server
from tfs_async.client import Client
from tfs_async.errors import DeadlineExceededError
from tfs_async.transport import CallOptions
from tfs_async.transport.http import HttpTransport
from tfs_async.types import ModelSpec

MakeTransport = Callable[..., HttpTransport]
OPTIONS = CallOptions(timeout=STEP)


def gated_answer(
    gate: asyncio.Event, order: list[int], held: asyncio.Condition
) -> Callable[[Request, asyncio.StreamWriter], Any]:
    """Record each request's caller (the model name ``m<i>``), answer once ``gate`` is set."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        async with held:
            order.append(int(request.path.split("/")[3][1:]))
            held.notify_all()
        async with within(STEP):
            await gate.wait()
        writer.write(response())
        return True

    return answer


async def test_pool_serves_callers_first_come_first_served(make_transport: MakeTransport) -> None:
    order: list[int] = []
    gate, held = asyncio.Event(), asyncio.Condition()
    async with scripted_server(gated_answer(gate, order, held)) as (url, seen):
        transport = make_transport(url, pool_size=2)

        async def call(i: int) -> None:
            await transport.get_model_status(ModelSpec(f"m{i}"), OPTIONS)

        try:
            async with within(STEP):
                tasks = [asyncio.create_task(call(i)) for i in range(40)]
                async with held:
                    await held.wait_for(lambda: len(order) == 2)  # both connections taken
                late = [asyncio.create_task(call(100 + i)) for i in range(10)]
                gate.set()
                await asyncio.gather(*tasks, *late)
        finally:
            await transport.aclose()
    assert sorted(order) == sorted([*range(40), *range(100, 110)])
    for position, caller in enumerate(order):
        expected = position if caller < 100 else 40 + caller - 100
        assert abs(position - expected) <= 2, order
    assert seen.opened == 2


async def test_waiting_for_a_connection_counts_against_the_deadline(
    make_transport: MakeTransport,
) -> None:
    order: list[int] = []
    gate, held = asyncio.Event(), asyncio.Condition()
    async with scripted_server(gated_answer(gate, order, held)) as (url, _):
        transport = make_transport(url, pool_size=1)
        holder = asyncio.create_task(transport.get_model_status(ModelSpec("m1"), OPTIONS))
        try:
            async with within(STEP), held:
                await held.wait_for(lambda: len(order) == 1)
            with pytest.raises(DeadlineExceededError, match="no free connection"):
                async with within(STEP):
                    await transport.get_model_status(ModelSpec("m2"), CallOptions(timeout=0.3))
        finally:
            gate.set()
            async with within(STEP):
                await holder
            await transport.aclose()


async def test_close_releases_every_connection(make_transport: MakeTransport) -> None:
    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(response())
        return True

    before = asyncio.all_tasks()
    async with scripted_server(answer) as (url, seen):
        transport = make_transport(url, pool_size=3)
        async with within(STEP):
            await asyncio.gather(
                *(transport.get_model_status(ModelSpec("m"), OPTIONS) for _ in range(9))
            )
        await transport.aclose()
        await transport.aclose()  # idempotent
        async with within(STEP), seen.changed:
            await seen.changed.wait_for(lambda: seen.closed == seen.opened)
        with pytest.raises(RuntimeError, match="closed"):
            await transport.get_model_status(ModelSpec("m"), OPTIONS)
    assert 1 <= seen.opened <= 3
    assert asyncio.all_tasks() <= before


@pytest.fixture
def thread_server() -> Iterator[str]:
    """A scripted server on its own event loop in a thread, for tests that run their own loops."""
    ready: queue.Queue[str] = queue.Queue()
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        done = asyncio.Event()
        stop.append((asyncio.get_running_loop(), done))
        async with scripted_server(answer_with(response())) as (url, _):
            ready.put(url)
            async with within(STEP * 6):
                await done.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="scripted-server")
    thread.start()
    try:
        yield ready.get(timeout=STEP)
    finally:
        loop, done = stop[0]
        loop.call_soon_threadsafe(done.set)
        thread.join(STEP)


def test_one_client_in_two_event_loops(thread_server: str, http_kind: str) -> None:
    client = Client(thread_server, http_transport=http_kind, timeout=STEP)

    async def use() -> int:
        [status] = await client.status("m")
        return status.version

    assert asyncio.run(use()) == 3
    # A second loop: the first loop's connections were closed with it; no hang.
    assert asyncio.run(use()) == 3
    asyncio.run(client.close())
