"""``predict_stream`` and ``predict_many``: one result per item, bounded read-ahead, clean exits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tests.support.batching import BAD, MODEL, Recorder, batch_tasks, rows, target_of
from tests.support.client import STEP, within
from tfs_async import Batching, Client, InvalidArgumentError, PredictResult
from tfs_async.batching import stream_calls
from tfs_async.testing import ModelServer


def client_of(server: ModelServer, protocol: str, batching: Batching | None = None) -> Client:
    return Client(target_of(server, protocol), timeout=STEP, max_retries=0, batching=batching)


class Source:
    """Items ``{"x": rows(i, 1)}`` counting how many were taken; item ``bad`` is refused."""

    def __init__(self, count: int, bad: frozenset[int] = frozenset()) -> None:
        self.count = count
        self.bad = bad
        self.taken = 0

    def item(self, i: int) -> dict[str, npt.NDArray[np.float32]]:
        x = rows(i, 1)
        if i in self.bad:
            x[0, 0] = BAD
        return {"x": x}

    def __iter__(self) -> Iterator[dict[str, npt.NDArray[np.float32]]]:
        for i in range(self.count):
            self.taken += 1
            yield self.item(i)

    async def aiter(self) -> AsyncIterator[dict[str, npt.NDArray[np.float32]]]:
        for i in range(self.count):
            self.taken += 1
            yield self.item(i)


def caller_of(result: PredictResult) -> int:
    return int(result.output[0, 0]) // 2000


async def collect(stream: AsyncIterator[PredictResult], got: list[int]) -> None:
    async for result in stream:
        got.append(caller_of(result))


@pytest.mark.parametrize("batching", [Batching(), None], ids=["batched", "plain"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_ordered_stream_yields_every_result_in_input_order_reading_ahead_boundedly(
    server: ModelServer, rec: Recorder, protocol: str, batching: Batching | None, kind: str
) -> None:
    source = Source(300)
    items: Any = iter(source) if kind == "sync" else source.aiter()
    seen = 0
    async with client_of(server, protocol, batching) as client, within(STEP):
        async for result in client.predict_stream(MODEL, items, max_in_flight=32):
            np.testing.assert_array_equal(result.output, rows(seen, 1) * 2)
            seen += 1
            assert source.taken - seen <= 32  # never more than max_in_flight ahead
    assert seen == source.taken == 300
    if batching is not None:
        assert len(rec.sizes["serving_default"]) < 300  # merged
    else:
        assert rec.sizes["serving_default"] == [1] * 300
    assert not batch_tasks()


async def test_unordered_stream_yields_each_result_once(server: ModelServer, protocol: str) -> None:
    source = Source(200)
    async with client_of(server, protocol, Batching()) as client, within(STEP):
        results = [
            r async for r in client.predict_stream(MODEL, source, ordered=False, max_in_flight=16)
        ]
    assert sorted(caller_of(r) for r in results) == list(range(200))


@pytest.mark.parametrize("ordered", [True, False])
async def test_on_error_return_yields_errors_in_place(
    server: ModelServer, protocol: str, ordered: bool
) -> None:
    source = Source(40, bad=frozenset({5, 22}))
    unreadable = ValueError("line 41 is not JSON")
    items = [*source, unreadable]  # an item that is an exception is its own outcome
    async with client_of(server, protocol, Batching()) as client, within(STEP):
        outcomes = [
            o
            async for o in client.predict_stream(
                MODEL, items, signature="picky", ordered=ordered, on_error="return"
            )
        ]
    assert len(outcomes) == 41
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert unreadable in errors
    refused = [e for e in errors if isinstance(e, InvalidArgumentError)]
    assert len(refused) == 2
    good = [o for o in outcomes if not isinstance(o, Exception)]
    assert sorted(caller_of(r) for r in good) == sorted(set(range(40)) - {5, 22})
    if ordered:
        assert isinstance(outcomes[5], InvalidArgumentError)
        assert isinstance(outcomes[22], InvalidArgumentError)
        assert outcomes[40] is unreadable
        assert [caller_of(o) for o in outcomes[:5] if not isinstance(o, Exception)] == [
            0,
            1,
            2,
            3,
            4,
        ]


async def test_on_error_raise_ends_the_stream_and_cancels_the_rest(
    server: ModelServer, protocol: str
) -> None:
    source = Source(10_000, bad=frozenset({3}))
    got: list[int] = []
    async with client_of(server, protocol, Batching()) as client, within(STEP):
        stream = client.predict_stream(MODEL, source, signature="picky", max_in_flight=8)
        with pytest.raises(InvalidArgumentError):
            await collect(stream, got)
    assert got == [0, 1, 2]
    assert source.taken <= 3 + 8 + 1
    assert not batch_tasks()


async def test_leaving_the_loop_cancels_every_call_still_running(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching()) as client, within(STEP):
        await client.metadata(MODEL)
        stream = client.predict_stream(
            MODEL, ({"x": rows(i, 1)} for i in range(10**9)), signature="gated"
        )
        async with contextlib.aclosing(stream) as results:
            rec.allow(0)  # only the first request is answered
            async for result in results:
                np.testing.assert_array_equal(result.output, rows(0, 1) * 2)
                break
        # Closed: every call was cancelled, and so were the requests the server still
        # holds (they would wait for the gate forever).
        assert not {t for t in batch_tasks() if t.get_name().startswith("tfs_async.stream")}
        held = batch_tasks()
        if held:
            await asyncio.wait(held)  # ends only if they were cancelled
        assert not batch_tasks()
        rec.release()
    assert client.batching_stats().in_flight == 0


async def test_a_plain_break_cleans_up_when_the_generator_is_finalized(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching()) as client, within(STEP):
        await client.metadata(MODEL)
        stream = client.predict_stream(
            MODEL, ({"x": rows(i, 1)} for i in range(10**9)), signature="gated"
        )
        rec.allow(0)  # only the first request is answered: the others stay held
        async for _ in stream:
            break
        # The calls read ahead are still running (their requests, or the stream's tasks
        # for calls that could not be queued at once) until the generator is closed.
        left = batch_tasks()
        assert left
        del stream  # the event loop's async-generator finalizer closes it
        await asyncio.wait(left)  # ends only if they were cancelled
        rec.release()
    assert all(t.cancelled() or t.done() for t in left)
    assert not batch_tasks()


async def test_cancelling_the_consumer_cancels_every_call(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching()) as client, within(STEP):

        async def consume() -> None:
            async for _ in client.predict_stream(
                MODEL, ({"x": rows(i, 1)} for i in range(10**9)), signature="gated"
            ):
                pass

        consumer = asyncio.create_task(consume())
        await rec.requests("gated", 1)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert not batch_tasks()
        rec.release()


async def test_an_error_of_the_source_ends_the_stream_after_the_items_before_it(
    server: ModelServer, protocol: str
) -> None:
    def broken() -> Iterator[dict[str, npt.NDArray[np.float32]]]:
        yield {"x": rows(0, 1)}
        yield {"x": rows(1, 1)}
        raise OSError("disk went away")

    got: list[int] = []
    async with client_of(server, protocol, Batching()) as client, within(STEP):
        with pytest.raises(OSError, match="disk went away"):
            await collect(client.predict_stream(MODEL, broken()), got)
    assert got == [0, 1]
    assert not batch_tasks()


async def test_predict_many_returns_the_results_in_order(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    async with client_of(server, protocol, Batching()) as client, within(STEP):
        results = await client.predict_many(MODEL, [{"x": rows(i, 2)} for i in range(50)])
        outcomes = await client.predict_many(
            MODEL,
            [{"x": rows(0, 1)}, {"x": np.full((1, 3), BAD, np.float32)}],
            signature="picky",
            on_error="return",
        )
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.output, rows(i, 2) * 2)
    assert len(rec.sizes["serving_default"]) < 50
    assert not isinstance(outcomes[0], Exception)
    assert isinstance(outcomes[1], InvalidArgumentError)


async def test_bad_stream_settings_are_refused_at_once(server: ModelServer) -> None:
    async with client_of(server, "grpc") as client:
        with pytest.raises(ValueError, match="max_in_flight"):
            client.predict_stream(MODEL, [], max_in_flight=0)
        with pytest.raises(ValueError, match="on_error"):
            client.predict_stream(MODEL, [], on_error="ignore")  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="not both"):
            client.predict_stream(MODEL, [], version=1, label="stable")


async def _identity(item: int) -> int:
    return item


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("max_in_flight", [1, 2, 3, 8])
async def test_a_stream_ends_when_its_last_items_finish_at_once(
    ordered: bool, max_in_flight: int
) -> None:
    # Calls that finish in their first step, mixed with items that are errors: the
    # last results are ready before their tasks' callbacks have run. (A stream once
    # waited forever here.)
    for count in range(1, 12):
        items: list[int | Exception] = [ValueError(i) if i % 3 == 1 else i for i in range(count)]
        async with within(STEP):
            outcomes = [
                o
                async for o in stream_calls(
                    _identity,
                    items,
                    ordered=ordered,
                    max_in_flight=max_in_flight,
                    on_error="return",
                )
            ]
        assert len(outcomes) == count
        if ordered:
            assert [o if isinstance(o, int) else -1 for o in outcomes] == [
                -1 if i % 3 == 1 else i for i in range(count)
            ]
