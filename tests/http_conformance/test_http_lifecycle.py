"""Both HTTP transports' connection lifecycle: FIFO pool, deadlines, close, loops, forks."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from client_support import STEP, within
from raw_http import Request, response, scripted_server

from tfs_async.client import Client
from tfs_async.errors import DeadlineExceededError
from tfs_async.testing import ModelServerProcess
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


@pytest.fixture(scope="module")
def process_server(models_dir: Path) -> Iterator[ModelServerProcess]:
    """half_plus_two in another process, for tests that run their own event loops."""
    with ModelServerProcess(
        model_name="half_plus_two",
        model_base_path=models_dir / "saved_model_half_plus_two_cpu",
        startup_timeout=STEP * 3,
    ) as srv:
        yield srv


def test_one_client_in_two_event_loops(process_server: ModelServerProcess, http_kind: str) -> None:
    client = Client(process_server.rest_url, http_transport=http_kind, timeout=STEP)

    async def use() -> list[float]:
        result = await client.predict("half_plus_two", np.array([1.0], np.float32))
        return [float(v) for v in result["y"]]

    assert asyncio.run(use()) == [2.5]
    # A second loop: the first loop's connections were closed with it; no hang.
    assert asyncio.run(use()) == [2.5]
    asyncio.run(client.close())


def _predict_in_child(client: Client, answers: Any) -> None:
    async def use() -> float:
        result = await client.predict("half_plus_two", np.array([3.0], np.float32))
        await client.close()
        return float(result["y"][0])

    answers.put(asyncio.run(use()))


async def test_client_works_in_a_forked_child(
    process_server: ModelServerProcess, http_kind: str
) -> None:
    async with Client(process_server.rest_url, http_transport=http_kind, timeout=STEP) as client:
        await client.predict("half_plus_two", np.array([1.0], np.float32))
        context = multiprocessing.get_context("fork")
        answers = context.Queue()
        child = context.Process(target=_predict_in_child, args=(client, answers))
        child.start()
        try:
            answer = await asyncio.to_thread(answers.get, True, STEP)
            await asyncio.to_thread(child.join, STEP)
        finally:
            if child.is_alive():
                child.kill()
        assert answer == 3.5
        assert child.exitcode == 0
        again = await client.predict("half_plus_two", np.array([1.0], np.float32))
    assert float(again["y"][0]) == 2.5
