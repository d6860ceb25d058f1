"""Transparent batching: callers keep calling ``predict``; what the server receives changes.

Against the emulator over real sockets, both transports. The model records
dimension 0 of every request, so each test sees exactly how calls were grouped.
"""

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
from tfs_async import Batching, BatchingStats, Client
from tfs_async.testing import ModelServer

HOLD = STEP * 10  # a max_delay that never fires within a test


def client_of(server: ModelServer, protocol: str, batching: Batching | None, **kw: Any) -> Client:
    return Client(target_of(server, protocol), timeout=STEP, max_retries=0, batching=batching, **kw)


async def test_a_lone_call_is_sent_at_once_without_waiting_for_max_delay(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    # max_delay is 100 s: only the idle rule can answer within STEP.
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        result = await client.predict(MODEL, {"x": rows(7, 3)})
        again = await client.predict(MODEL, {"x": rows(8, 2)})
    stats = client.batching_stats()
    np.testing.assert_array_equal(result.output, rows(7, 3) * 2)
    np.testing.assert_array_equal(again.output, rows(8, 2) * 2)
    assert rec.sizes == {"serving_default": [3, 2]}
    assert stats.flushes == {"idle": 2}
    assert (stats.batches, stats.rows, stats.callers) == (2, 5, 2)
    assert (stats.queued, stats.in_flight) == (0, 0)


async def test_callers_queued_behind_a_busy_group_merge_and_get_their_own_rows(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    batching = Batching(max_batch_size=8, max_delay=HOLD)
    async with client_of(server, protocol, batching) as client:
        async with within(STEP):
            first = await hold_group(client, "gated", rec)
            counts = [1, 2, 3, 1, 2, 3, 1, 2]
            tasks = [
                asyncio.create_task(client.predict(MODEL, {"x": rows(i, n)}, signature="gated"))
                for i, n in enumerate(counts)
            ]
            # Greedy in arrival order: 1+2+3+1 = 7 (the next 2 would overflow), then 2+3+1+2 = 8.
            assert await rec.requests("gated", 3) == [1, 7, 8]
            assert client.batching_stats().in_flight == 3
            rec.release()
            results = await asyncio.gather(first, *tasks)
        stats = client.batching_stats()
    for i, (n, result) in enumerate(zip(counts, results[1:], strict=True)):
        # REST names a single output after its answer when no metadata is cached.
        assert list(result) == (["y"] if protocol == "grpc" else ["outputs"])
        np.testing.assert_array_equal(result.output, rows(i, n) * 2)
        assert result.output.dtype == np.float32
        assert result.model is not None
        assert result.model.name == MODEL
    assert stats.flushes == {"idle": 1, "size": 2}
    assert stats.batch_rows == {1: 1, 7: 1, 8: 1}
    assert (stats.batches, stats.rows, stats.callers) == (3, 16, 9)
    assert not batch_tasks()


async def test_a_partial_batch_goes_when_its_group_falls_idle(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client:
        async with within(STEP):
            first = await hold_group(client, "gated", rec)
            tasks = [
                asyncio.create_task(client.predict(MODEL, {"x": rows(i, 1)}, signature="gated"))
                for i in range(3)
            ]
            await after_started()
            assert client.batching_stats().queued == 3  # waiting: the group is busy
            rec.release()
            results = await asyncio.gather(first, *tasks)
        stats = client.batching_stats()
    assert rec.sizes == {"gated": [1, 3]}
    assert stats.flushes == {"idle": 2}
    assert stats.queue_delay_max > 0
    for i, result in enumerate(results[1:]):
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)


async def test_a_partial_batch_goes_after_max_delay_while_its_group_is_busy(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=0.01)) as client:
        async with within(STEP):
            first = await hold_group(client, "gated", rec)
            tasks = [
                asyncio.create_task(client.predict(MODEL, {"x": rows(i, 2)}, signature="gated"))
                for i in range(3)
            ]
            # The first request is still held: only max_delay can send the other three.
            assert await rec.requests("gated", 2) == [1, 6]
            rec.release()
            results = await asyncio.gather(first, *tasks)
        stats = client.batching_stats()
    assert stats.flushes == {"idle": 1, "delay": 1}
    for i, result in enumerate(results[1:]):
        np.testing.assert_array_equal(result.output, rows(i, 2) * 2)


@pytest.mark.parametrize("max_in_flight", [1, 2])
async def test_max_in_flight_bounds_the_requests_of_a_group(
    server: ModelServer, rec: Recorder, protocol: str, max_in_flight: int
) -> None:
    batching = Batching(max_batch_size=2, max_delay=HOLD, max_in_flight=max_in_flight)
    async with client_of(server, protocol, batching) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        tasks = [
            asyncio.create_task(client.predict(MODEL, {"x": rows(i, 1)}, signature="gated"))
            for i in range(6)
        ]
        await after_started()
        stats = client.batching_stats()
        assert stats.in_flight == max_in_flight
        assert stats.queued == 6 - 2 * (max_in_flight - 1)
        rec.release()
        results = await asyncio.gather(first, *tasks)
    assert sorted(rec.sizes["gated"]) == [1, 2, 2, 2]
    for i, result in enumerate(results[1:]):
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)


async def test_a_call_larger_than_max_batch_size_goes_alone(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    batching = Batching(max_batch_size=4, max_delay=HOLD)
    async with client_of(server, protocol, batching) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        big = asyncio.create_task(client.predict(MODEL, {"x": rows(1, 9)}, signature="gated"))
        assert await rec.requests("gated", 2) == [1, 9]  # not queued behind the busy group
        rec.release()
        await first
        result = await big
    np.testing.assert_array_equal(result.output, rows(1, 9) * 2)


async def test_calls_that_cannot_merge_go_in_separate_requests(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        calls: list[dict[str, Any]] = [
            {"x": rows(0, 2)},  # (n, 3) float32
            {"x": rows(1, 1, cols=4)},  # other trailing shape
            {"x": rows(2, 3)},  # merges with the first
            {"x": rows(3, 1, cols=4)},  # merges with the second
        ]
        tasks = [asyncio.create_task(client.predict(MODEL, c, signature="gated")) for c in calls]
        # One group per trailing shape. The (n, 4) group was idle: its two calls (same
        # turn of the event loop) went at once; the (n, 3) ones wait for their busy group.
        assert await rec.requests("gated", 2) == [1, 2]
        rec.release()
        results = await asyncio.gather(first, *tasks)
    assert sorted(rec.sizes["gated"]) == [1, 2, 5]
    for i, (call, result) in enumerate(zip(calls, results[1:], strict=True)):
        np.testing.assert_array_equal(result.output, call["x"] * 2, err_msg=f"caller {i}")


async def test_other_versions_filters_and_options_do_not_merge(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client:
        tokened = client.with_options(metadata={"x-token": "a"})
        async with within(STEP):
            first = await hold_group(client, "gated", rec)
            tasks = [
                asyncio.create_task(client.predict(MODEL, {"x": rows(1, 1)}, signature="gated")),
                # Other call metadata (say, another user's token): never in the same request.
                asyncio.create_task(tokened.predict(MODEL, {"x": rows(2, 1)}, signature="gated")),
                asyncio.create_task(client.predict(MODEL, {"x": rows(3, 1)}, signature="gated")),
            ]
            await rec.requests("gated", 2)  # the tokened call's group was idle: sent at once
            rec.release()
            results = await asyncio.gather(first, *tasks)
    assert sorted(rec.sizes["gated"]) == [1, 1, 2]
    for i, result in zip((1, 2, 3), results[1:], strict=True):
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)


async def test_multi_input_and_single_unnamed_inputs_merge(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        await client.metadata(MODEL)  # cached: the unnamed calls below need no fetch
        first = await hold_group(client, "gated", rec)
        # A single unnamed array is named from the metadata, then merges like the rest.
        unnamed = [
            asyncio.create_task(client.predict(MODEL, rows(i, 1), signature="gated"))
            for i in range(3)
        ]
        await after_started()
        pairs = [
            {"a": np.array([1, 2], np.int64), "b": np.array([10, 20], np.int64)},
            {"b": np.array([5], np.int64), "a": np.array([7], np.int64)},  # other order
            {"a": np.array([3], np.int64), "b": np.array([4], np.int64)},
        ]
        paired = [asyncio.create_task(client.predict(MODEL, p, signature="pair")) for p in pairs]
        rec.release()
        results = await asyncio.gather(first, *unnamed)
        sums = await asyncio.gather(*paired)
    assert rec.sizes["gated"] == [1, 3]
    for i, result in enumerate(results[1:]):
        np.testing.assert_array_equal(result.output, rows(i, 1) * 2)
    assert rec.sizes["pair"] == [4]  # three callers, one request
    assert [s["sum"].tolist() for s in sums] == [[11, 22], [12], [7]]
    assert [s["diff"].tolist() for s in sums] == [[-9, -18], [2], [-1]]


async def test_string_inputs_of_any_length_merge(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client, within(STEP):
        await client.metadata(MODEL)  # cached: REST names the single output "s" too
        results = await asyncio.gather(
            client.predict(MODEL, {"s": np.array(["ab", "c"])}, signature="strings"),
            client.predict(MODEL, {"s": np.array(["longer text"])}, signature="strings"),
            client.predict(MODEL, {"s": np.array(["d"])}, signature="strings"),
        )
    assert rec.sizes["strings"] == [4]
    assert [list(r["s"]) for r in results] == [[b"ab", b"c"], [b"longer text"], [b"d"]]


async def test_outputs_without_a_batch_dimension_are_detected_and_not_batched_again(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching(max_delay=HOLD)) as client:
        async with within(STEP):
            one = [rows(i, 2) for i in range(4)]
            results = await asyncio.gather(
                *(client.predict(MODEL, {"x": x}, signature="total") for x in one)
            )
            later = await asyncio.gather(
                *(client.predict(MODEL, {"x": x}, signature="total") for x in one)
            )
        stats = client.batching_stats()
    # Each caller gets its own total, whatever path found out.
    assert [float(r.output) for r in results] == [float(x.sum()) for x in one]
    assert [float(r.output) for r in later] == [float(x.sum()) for x in one]
    # No metadata over either transport: the first merged answer (one scalar for 8
    # rows) tells; its callers are sent again alone, and every later call too.
    assert rec.sizes["total"] == [8] + [2] * 8
    assert stats.unbatchable == 1
    assert stats.flushes == {"idle": 1, "alone": 4}


async def test_batching_per_model_and_per_copy(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    off_for_rec = Batching(max_delay=HOLD, models={MODEL: None})
    async with client_of(server, protocol, off_for_rec) as client, within(STEP):
        first = await hold_group(client, "gated", rec)
        tasks = [
            asyncio.create_task(client.predict(MODEL, {"x": rows(i, 1)}, signature="gated"))
            for i in range(3)
        ]
        await rec.requests("gated", 4)  # each call alone: nothing merged
        batched = client.with_options(batching=Batching(max_delay=HOLD))
        more = [
            asyncio.create_task(batched.predict(MODEL, {"x": rows(i, 1)}, signature="gated"))
            for i in range(3)
        ]
        # The copy batches; its group was idle: the three calls go at once, together.
        await rec.requests("gated", 5)
        rec.release()
        await asyncio.gather(first, *tasks, *more)
    assert rec.sizes["gated"] == [1, 1, 1, 1, 3]


async def test_close_sends_what_is_queued_then_refuses(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    client = client_of(server, protocol, Batching(max_delay=HOLD))
    async with within(STEP):
        first = await hold_group(client, "gated", rec)
        tasks = [
            asyncio.create_task(client.predict(MODEL, {"x": rows(i, 2)}, signature="gated"))
            for i in range(5)
        ]
        await after_started()
        closing = asyncio.create_task(client.close())
        assert await rec.requests("gated", 2) == [1, 10]  # close flushed the queue
        assert not closing.done()  # and waits for the answers
        rec.release()
        results = await asyncio.gather(first, *tasks)
        await closing
    for i, result in enumerate(results[1:]):
        np.testing.assert_array_equal(result.output, rows(i, 2) * 2)
    assert client.batching_stats().flushes == {"idle": 1, "close": 1}
    with pytest.raises(RuntimeError, match="closed"):
        await client.predict(MODEL, {"x": rows(9, 1)})
    assert not batch_tasks()


def test_stats_are_plain_numbers() -> None:
    stats = BatchingStats(batches=4, rows=10, queue_delay_total=0.02)
    assert stats.mean_batch_rows == 2.5
    assert stats.mean_queue_delay == pytest.approx(0.005)
    assert BatchingStats().mean_batch_rows == 0.0
