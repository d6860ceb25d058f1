"""Per-caller deadlines and cancellation; bounded queues and requests in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.support.batching import (
    MODEL,
    Recorder,
    after_started,
    batch_tasks,
    hold_group,
    rows,
    target_of,
)
from tests.support.client import STEP, within
from tfs_async import (
    Batching,
    BatchQueueFullError,
    Client,
    DeadlineExceededError,
    ResourceExhaustedError,
)
from tfs_async.testing import ModelServer

HOLD = STEP * 10
SHORT = 0.05  # a caller's own deadline; the test waits for its failure, never for time


def client_of(server: ModelServer, protocol: str, batching: Batching, **kw: Any) -> Client:
    return Client(target_of(server, protocol), timeout=STEP, max_retries=0, batching=batching, **kw)


def gated(client: Client, caller: int, **kw: Any) -> asyncio.Task[Any]:
    return asyncio.create_task(
        client.predict(MODEL, {"x": rows(caller, 1)}, signature="gated", **kw)
    )


async def test_a_callers_deadline_applies_to_it_alone(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        patient = gated(client, 1)
        hurried = gated(client, 2, timeout=SHORT)
        also_patient = gated(client, 3)
        # Queued behind the held request, the hurried caller leaves at its own deadline.
        with pytest.raises(DeadlineExceededError, match="deadline") as caught:
            await hurried
        assert caught.value.model is not None
        assert not patient.done()
        assert not also_patient.done()
        rec.release()
        results = await asyncio.gather(first, patient, also_patient)
    assert rec.sizes["gated"] == [1, 2]  # the hurried caller's row was never sent
    np.testing.assert_array_equal(results[1].output, rows(1, 1) * 2)
    np.testing.assert_array_equal(results[2].output, rows(3, 1) * 2)
    assert not batch_tasks()


async def test_a_callers_deadline_applies_while_its_request_is_in_flight(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        tasks = [gated(client, 1), gated(client, 2, timeout=SHORT), gated(client, 3)]
        await after_started()
        rec.allow(0)  # the first answer comes; the three go as one request, held
        await first
        assert await rec.requests("gated", 2) == [1, 3]
        with pytest.raises(DeadlineExceededError):
            await tasks[1]
        assert not tasks[0].done()
        assert not tasks[2].done()
        rec.release()
        results = await asyncio.gather(tasks[0], tasks[2])
    for i, result in zip((1, 3), results, strict=True):
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)
    assert not batch_tasks()


async def test_a_cancelled_caller_leaves_its_batch_before_it_is_sent(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        tasks = [gated(client, i) for i in range(4)]
        await after_started()
        tasks[1].cancel()
        rec.release()
        results = await asyncio.gather(first, *tasks, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert rec.sizes["gated"] == [1, 3]  # the cancelled row was not sent
    for i in (0, 2, 3):
        result = results[i + 1]
        assert not isinstance(result, BaseException), result
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)
    assert not batch_tasks()


async def test_a_caller_cancelled_in_flight_does_not_hurt_the_others(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        tasks = [gated(client, i) for i in range(3)]
        await after_started()
        rec.allow(0)  # the held request answers; the three go as one, held
        await first
        await rec.requests("gated", 2)
        tasks[1].cancel()
        rec.release()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    for i in (0, 2):
        result = results[i]
        assert not isinstance(result, BaseException), result
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)
    assert rec.sizes["gated"] == [1, 3]
    assert not batch_tasks()


async def test_a_full_queue_fails_fast_when_told_to(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    batching = Batching(max_delay=HOLD, max_queue=2, when_full="raise")
    async with client_of(server, protocol, batching) as client:
        async with within(STEP):
            first = await hold_group(client, "gated", rec)
            queued = [gated(client, 1), gated(client, 2)]
            await after_started()
            with pytest.raises(BatchQueueFullError, match="max_queue=2") as caught:
                await client.predict(MODEL, {"x": rows(3, 1)}, signature="gated")
            assert isinstance(caught.value, ResourceExhaustedError)
            assert caught.value.model is not None
            rec.release()
            results = await asyncio.gather(first, *queued)
        stats = client.batching_stats()
    assert stats.rejected == 1
    assert rec.sizes["gated"] == [1, 2]
    np.testing.assert_array_equal(results[2].output, rows(2, 1) * 2)


async def test_a_full_queue_makes_callers_wait_in_order(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    batching = Batching(max_batch_size=2, max_delay=HOLD, max_queue=2, max_in_flight=1)
    async with client_of(server, protocol, batching) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        tasks = [gated(client, i) for i in range(7)]
        await after_started()
        stats = client.batching_stats()
        assert (stats.queued, stats.in_flight) == (2, 1)  # five callers wait for room
        rec.release()
        results = await asyncio.gather(first, *tasks)
    assert rec.sizes["gated"] == [1, 2, 2, 2, 1]  # in arrival order, never over the bounds
    for i, result in enumerate(results[1:]):
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)
    assert not batch_tasks()


async def test_a_deadline_also_bounds_the_wait_for_room(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    batching = Batching(max_delay=HOLD, max_queue=1, max_in_flight=1)
    async with client_of(server, protocol, batching) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        queued = gated(client, 1)
        await after_started()
        with pytest.raises(DeadlineExceededError, match="queue was full"):
            await client.predict(MODEL, {"x": rows(2, 1)}, signature="gated", timeout=SHORT)
        after = gated(client, 3)  # the place left by the hurried caller is not lost
        rec.release()
        results = await asyncio.gather(first, queued, after)
    assert rec.sizes["gated"] == [1, 1, 1]
    np.testing.assert_array_equal(results[2].output, rows(3, 1) * 2)
